// Forwarding of caller metadata and deadlines.
#include "gateway/call_context.h"

#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "common/auth/authenticator.h"
#include "common/status.h"

namespace kp::gateway {
namespace {

bool Forwardable(absl::string_view key) {
  return !(absl::StartsWith(key, ":") || absl::StartsWith(key, "grpc-") || key == "content-type" ||
           key == "te" || key == "user-agent" || key == "host" || key == "accept-encoding");
}

}  // namespace

void AppliedViews::Record(const grpc::ClientContext& backend) {
  const auto& trailers = backend.GetServerTrailingMetadata();
  auto it = trailers.find(kViewHeader);
  const bool same = it != trailers.end() && absl::string_view(it->second.data(), it->second.size()) == expected_;
  absl::MutexLock lock(&mu_);
  ++answers_;
  if (!same) mismatch_ = true;
}

void AppliedViews::NotAsked() {
  absl::MutexLock lock(&mu_);
  mismatch_ = true;
}

bool AppliedViews::Confirmed() const {
  absl::MutexLock lock(&mu_);
  return answers_ > 0 && !mismatch_;
}

absl::StatusOr<Forwarded> Admit(const grpc::ServerContextBase& ctx, RateLimiter* limiter) {
  absl::StatusOr<auth::Principal> principal = auth::CurrentAuthenticator().Authenticate(ctx);
  if (!principal.ok()) return principal.status();
  if (limiter != nullptr) RETURN_IF_ERROR(limiter->Admit(*principal));
  Forwarded f;
  f.principal = std::move(*principal);
  f.view = auth::View(f.principal);
  f.applied_views = std::make_shared<AppliedViews>(f.view);
  for (const auto& [key, value] : ctx.client_metadata()) {
    const absl::string_view k(key.data(), key.size());
    if (Forwardable(k)) f.metadata.emplace_back(std::string(k), std::string(value.data(), value.size()));
  }
  f.deadline = absl::FromChrono(ctx.deadline());
  return f;
}

}  // namespace kp::gateway
