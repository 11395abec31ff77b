// SendDeadlines: see send_deadlines.h.
#include "gateway/send_deadlines.h"

#include "common/metrics.h"

namespace kp::gateway {

class SendDeadlines::Entry {
 public:
  grpc::ServerContextBase* ctx;
  std::chrono::steady_clock::time_point deadline;
  std::list<Entry*>::iterator position;
  bool waiting = true;      // in waiting_
  bool cancelling = false;  // TryCancel on it is under way (outside mu_): its Done waits
};

SendDeadlines::SendDeadlines(absl::Duration timeout)
    : timeout_(absl::ToChronoNanoseconds(timeout)), thread_([this] { Run(); }) {}

SendDeadlines::~SendDeadlines() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  thread_.join();
}

SendDeadlines::Entry* SendDeadlines::Start(grpc::ServerContextBase* ctx) {
  auto* entry = new Entry{ctx, std::chrono::steady_clock::now() + timeout_, {}};
  absl::MutexLock lock(&mu_);
  entry->position = waiting_.insert(waiting_.end(), entry);
  return entry;
}

void SendDeadlines::Done(Entry* entry) {
  if (entry == nullptr) return;
  absl::MutexLock lock(&mu_);
  if (entry->cancelling && cancelling_thread_ != std::this_thread::get_id()) {
    // TryCancel is running on the context this call is about to give up: wait for it. (On the
    // cancelling thread itself, gRPC runs this inside TryCancel, which touches the context no more.)
    mu_.Await(absl::Condition(
        +[](Entry* e) { return !e->cancelling; }, entry));
  }
  if (entry->waiting) waiting_.erase(entry->position);
  if (entry->cancelling) {
    entry->ctx = nullptr;  // (inside TryCancel: Run deletes it when TryCancel returns)
    return;
  }
  delete entry;
}

void SendDeadlines::Run() {
  mu_.Lock();
  while (!stop_) {
    const auto now = std::chrono::steady_clock::now();
    if (waiting_.empty() || waiting_.front()->deadline > now) {
      // Woken early by a stop; new entries are never due before the front one.
      const auto wait = waiting_.empty() ? timeout_ : waiting_.front()->deadline - now;
      mu_.AwaitWithTimeout(absl::Condition(&stop_), absl::FromChrono(wait));
      continue;
    }
    Entry* entry = waiting_.front();
    waiting_.pop_front();
    entry->waiting = false;
    entry->cancelling = true;
    cancelling_thread_ = std::this_thread::get_id();
    // Outside mu_ (TryCancel runs interceptors and core cancellation; other calls' callbacks must
    // not wait for it): the call's Done waits for `cancelling` to clear, so its context lives.
    mu_.Unlock();
    entry->ctx->TryCancel();
    metrics::RecordEdgeRefusal("send_timeout");
    mu_.Lock();
    cancelling_thread_ = std::thread::id();
    entry->cancelling = false;
    // Done came inside TryCancel, on this thread: the entry is this loop's to free.
    if (entry->ctx == nullptr) delete entry;
  }
  mu_.Unlock();
}

}  // namespace kp::gateway
