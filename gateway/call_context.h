// What the gateway carries from an incoming call to the calls it makes: the caller's metadata
// (credentials, request id, trace context), its remaining deadline, and its cache view.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <grpcpp/client_context.h>
#include <grpcpp/server_context.h>
#include <grpcpp/support/server_callback.h>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/auth/principal.h"

namespace kp::gateway {

struct Forwarded {
  std::vector<std::pair<std::string, std::string>> metadata;  // credentials included
  absl::Time deadline = absl::InfiniteFuture();
  auth::Principal principal;
  // What the caller may see, part of every cache key: public (readers), org:<organisation>
  // (registrars), full (editors, admins). The backends re-check the forwarded credentials and
  // redact their answers accordingly, so an entry holds exactly what its view may see.
  std::string view;
};

// Authenticates the caller (UNAUTHENTICATED before anything else, cache included) and
// captures its forwardable metadata (everything but transport and gRPC headers).
absl::StatusOr<Forwarded> Admit(const grpc::ServerContextBase& ctx);

// Admit, or finish the call with the authentication error and return nothing.
std::optional<Forwarded> AdmitOrFinish(const grpc::ServerContextBase& ctx, grpc::ServerUnaryReactor* reactor);

// A client context for a backend call on behalf of `from`: its metadata, and the earlier of its
// deadline and now + `timeout`.
std::unique_ptr<grpc::ClientContext> BackendContext(const Forwarded& from, absl::Duration timeout);

}  // namespace kp::gateway
