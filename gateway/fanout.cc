// Fanout: see fanout.h.
#include "gateway/fanout.h"

namespace kp::gateway {

void Fanout::Start(grpc::Status* status, const std::function<void(grpc::ClientContext*, Done)>& start) {
  contexts_.push_back(BackendContext(from_, timeout_));
  {
    absl::MutexLock lock(&mu_);
    ++pending_;
  }
  grpc::ClientContext* ctx = contexts_.back().get();
  start(ctx, [this, status, ctx](grpc::Status s) {
    if (from_.applied_views) from_.applied_views->Record(*ctx);
    *status = std::move(s);
    absl::MutexLock lock(&mu_);
    --pending_;
  });
}

void Fanout::Wait() {
  absl::MutexLock lock(&mu_);
  auto all_done = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return pending_ == 0; };
  mu_.Await(absl::Condition(&all_done));
}

}  // namespace kp::gateway
