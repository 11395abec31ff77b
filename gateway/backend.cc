// Backend: see backend.h.
#include "gateway/backend.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/trace.h"

namespace kp::gateway {

Backend::Backend(std::string name, std::string service, std::shared_ptr<grpc::Channel> channel, BackendOptions options)
    : name_(std::move(name)),
      service_(std::move(service)),
      channel_(std::move(channel)),
      generic_(channel_),
      options_(options),
      metrics_(name_) {}

absl::StatusOr<std::unique_ptr<Backend::Call>> Backend::Begin(const Forwarded& from) {
  const absl::Time now = absl::Now();
  const absl::Time deadline = std::min(from.deadline - options_.deadline_margin, now + options_.timeout);
  if (deadline <= now) {
    return absl::DeadlineExceededError(absl::StrCat("the call's deadline leaves no time to ask the ", name_, " service"));
  }
  if (in_flight_.fetch_add(1, std::memory_order_relaxed) >= options_.max_in_flight) {
    in_flight_.fetch_sub(1, std::memory_order_relaxed);
    metrics_.Refused();
    return absl::UnavailableError(absl::StrCat("the ", name_, " service has ", options_.max_in_flight,
                                               " calls in flight from this gateway (its limit, "
                                               "--backend_max_in_flight); retry shortly"));
  }
  metrics_.Started();
  auto ctx = std::make_unique<grpc::ClientContext>();
  for (const auto& [k, v] : from.metadata) {
    // The trace goes on with the gateway's own span as the backend call's parent.
    ctx->AddMetadata(k, k == trace::kHeader ? trace::Child(v) : v);
  }
  ctx->set_deadline(absl::ToChronoTime(deadline));
  return std::make_unique<Call>(this, std::move(ctx));
}

void Backend::Call::End() {
  backend_->in_flight_.fetch_sub(1, std::memory_order_relaxed);
  backend_->metrics_.Ended(absl::ToDoubleSeconds(absl::Now() - start_));
}

}  // namespace kp::gateway
