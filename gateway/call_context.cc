// Forwarding of caller metadata and deadlines.
#include "gateway/call_context.h"

#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "common/auth/authenticator.h"
#include "common/status.h"
#include "common/trace.h"

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

std::optional<Forwarded> AdmitOrFinish(const grpc::ServerContextBase& ctx, const grpc::ByteBuffer* request,
                                       RateLimiter* limiter, grpc::ServerUnaryReactor* reactor) {
  if (!request->Valid()) {
    // No message at all (bytes that do not parse are a message): the stream ended before one
    // came, so the caller has gone. Nothing to forward (an empty buffer must never be sent on).
    reactor->Finish(grpc::Status(grpc::StatusCode::CANCELLED, "the call ended before its request arrived"));
    return std::nullopt;
  }
  absl::StatusOr<Forwarded> admitted = Admit(ctx, limiter);
  if (admitted.ok()) return std::move(*admitted);
  reactor->Finish(ToGrpcStatus(admitted.status()));
  return std::nullopt;
}

std::unique_ptr<grpc::ClientContext> BackendContext(const Forwarded& from, absl::Duration timeout) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  for (const auto& [k, v] : from.metadata) {
    // The trace goes on with the gateway's own span as the backend call's parent.
    ctx->AddMetadata(k, k == trace::kHeader ? trace::Child(v) : v);
  }
  ctx->set_deadline(absl::ToChronoTime(std::min(from.deadline, absl::Now() + timeout)));
  return ctx;
}

}  // namespace kp::gateway
