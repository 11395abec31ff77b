// Forwarding of caller metadata and deadlines.
#include "gateway/call_context.h"

#include "absl/strings/match.h"
#include "absl/time/clock.h"

namespace kp::gateway {
namespace {

bool Forwardable(absl::string_view key) {
  return !(absl::StartsWith(key, ":") || absl::StartsWith(key, "grpc-") || key == "content-type" ||
           key == "te" || key == "user-agent" || key == "host" || key == "accept-encoding");
}

}  // namespace

Forwarded ForwardedFrom(const grpc::ServerContextBase& ctx) {
  Forwarded f;
  for (const auto& [key, value] : ctx.client_metadata()) {
    const absl::string_view k(key.data(), key.size());
    if (Forwardable(k)) f.metadata.emplace_back(std::string(k), std::string(value.data(), value.size()));
  }
  f.deadline = absl::FromChrono(ctx.deadline());
  return f;
}

std::unique_ptr<grpc::ClientContext> BackendContext(const Forwarded& from, absl::Duration timeout) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  for (const auto& [k, v] : from.metadata) ctx->AddMetadata(k, v);
  ctx->set_deadline(absl::ToChronoTime(std::min(from.deadline, absl::Now() + timeout)));
  return ctx;
}

}  // namespace kp::gateway
