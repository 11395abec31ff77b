// SendDeadlines: see send_deadlines.h.
#include "gateway/send_deadlines.h"

#include "absl/time/clock.h"
#include "common/metrics.h"

namespace kp::gateway {

class SendDeadlines::Entry {
 public:
  grpc::ServerContextBase* ctx;
  absl::Time deadline;
  std::list<Entry*>::iterator position;
  bool waiting = true;  // in waiting_ (false once cancelled: its OnDone is still to come)
};

SendDeadlines::SendDeadlines(absl::Duration timeout) : timeout_(timeout), thread_([this] { Run(); }) {}

SendDeadlines::~SendDeadlines() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  thread_.join();
}

SendDeadlines::Entry* SendDeadlines::Start(grpc::ServerContextBase* ctx) {
  auto* entry = new Entry{ctx, absl::Now() + timeout_, {}};
  absl::MutexLock lock(&mu_);
  entry->position = waiting_.insert(waiting_.end(), entry);
  return entry;
}

void SendDeadlines::Done(Entry* entry) {
  if (entry == nullptr) return;
  if (cancelling_ == std::this_thread::get_id()) {
    // Inside TryCancel on the cancelling thread, which holds mu_ and has taken it off the list.
    delete entry;
    return;
  }
  absl::MutexLock lock(&mu_);
  if (entry->waiting) waiting_.erase(entry->position);
  delete entry;
}

long long SendDeadlines::cancelled() const {
  absl::MutexLock lock(&mu_);
  return cancelled_;
}

void SendDeadlines::Run() {
  absl::MutexLock lock(&mu_);
  while (!stop_) {
    const absl::Time now = absl::Now();
    if (waiting_.empty() || waiting_.front()->deadline > now) {
      const absl::Time next = waiting_.empty() ? now + timeout_ : waiting_.front()->deadline;
      // Woken early by a stop; new entries are never due before the front one.
      mu_.AwaitWithDeadline(absl::Condition(&stop_), next);
      continue;
    }
    Entry* entry = waiting_.front();
    waiting_.pop_front();
    entry->waiting = false;
    ++cancelled_;
    // Under mu_: the call cannot be Done (and its context gone) on another thread meanwhile.
    cancelling_ = std::this_thread::get_id();
    entry->ctx->TryCancel();
    cancelling_ = std::thread::id();
    metrics::RecordEdgeRefusal("send_timeout");
  }
}

}  // namespace kp::gateway
