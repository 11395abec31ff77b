// What the gateway carries from an incoming call to the calls it makes: the caller's metadata
// (credentials, request id, trace context), its remaining deadline, and its cache view.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <grpcpp/client_context.h>
#include <grpcpp/server_context.h>

#include "absl/time/time.h"

namespace kp::gateway {

struct Forwarded {
  std::vector<std::pair<std::string, std::string>> metadata;
  absl::Time deadline = absl::InfiniteFuture();
  // public / org:<organisation> / full. Without authentication every caller sees everything
  // the backends return, which is the full view; the security layer narrows it per principal.
  std::string view = "full";
};

// Captures the caller's forwardable metadata (everything but transport and gRPC headers).
Forwarded ForwardedFrom(const grpc::ServerContextBase& ctx);

// A client context for a backend call on behalf of `from`: its metadata, and the earlier of its
// deadline and now + `timeout`.
std::unique_ptr<grpc::ClientContext> BackendContext(const Forwarded& from, absl::Duration timeout);

}  // namespace kp::gateway
