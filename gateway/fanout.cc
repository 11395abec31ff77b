// Fanout: see fanout.h.
#include "gateway/fanout.h"

#include "common/status.h"

namespace kp::gateway {

void Fanout::Start(Backend& backend, grpc::Status* status, const std::function<void(grpc::ClientContext*, Done)>& start) {
  absl::StatusOr<std::unique_ptr<Backend::Call>> call = backend.Begin(from_);
  if (!call.ok()) {
    if (from_.applied_views) from_.applied_views->NotAsked();
    *status = ToGrpcStatus(call.status());
    return;
  }
  calls_.push_back(*std::move(call));
  Backend::Call* c = calls_.back().get();
  pending_.fetch_add(1, std::memory_order_relaxed);
  if (from_.cancel) from_.cancel->Add(c->context());
  start(c->context(), [this, status, c](grpc::Status s) {
    if (from_.cancel) from_.cancel->Remove(c->context());
    if (from_.applied_views) from_.applied_views->Record(*c->context());
    *status = std::move(s);
    c->End();
    Completed();
  });
}

void Fanout::Completed() {
  if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) awaiter_.resume();
}

bool Fanout::await_suspend(std::coroutine_handle<> awaiter) noexcept {
  awaiter_ = awaiter;
  // Drop the awaiter's own count: if every call has completed already, go on without suspending.
  return pending_.fetch_sub(1, std::memory_order_acq_rel) != 1;
}

}  // namespace kp::gateway
