// The RPC boundary helper: runs a handler on the worker pool (never on gRPC's callback
// threads) and converts its absl::Status to the wire once.
#pragma once

#include <string>
#include <utility>

#include <grpcpp/server_context.h>
#include <grpcpp/support/server_callback.h>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/auth/authenticator.h"
#include "common/call_log.h"
#include "common/current_call.h"
#include "common/status.h"
#include "common/worker_pool.h"

namespace kp {

// Trailing metadata: which view (public, org:<organisation>, full) a backend redacted for.
inline constexpr char kViewTrailer[] = "x-kp-view";

// What a handler knows about its call: who calls, which method, the deadline (to bound
// outbound calls) and the request id.
struct CallInfo {
  auth::Principal principal;
  std::string method;  // short name, e.g. "CreateEvent"
  absl::Time deadline = absl::InfiniteFuture();
  std::string request_id;
  // The caller's credentials, forwarded on calls to peers, which decide for themselves.
  std::string authorization;
  std::string traceparent;  // W3C trace context of this call
};

inline CallInfo CallInfoFrom(const grpc::CallbackServerContext& ctx) {
  CallInfo info;
  info.deadline = absl::FromChrono(ctx.deadline());
  const auto& md = ctx.client_metadata();
  info.request_id = RequestIdFrom(md);
  if (auto it = md.find("authorization"); it != md.end()) {
    info.authorization.assign(it->second.data(), it->second.size());
  }
  if (auto it = md.find("traceparent"); it != md.end()) {
    info.traceparent.assign(it->second.data(), it->second.size());
  }
  return info;
}

// Authenticates the caller (UNAUTHENTICATED ends the call at once), then runs
// `fn(const CallInfo&) -> absl::Status` on `pool`, in turn with other principals' calls
// (RESOURCE_EXHAUSTED if this principal already has its share waiting); its status finishes
// the call. While `fn` runs, the call is the thread's CurrentCall: database work stops once the
// caller has gone or the deadline has passed.
template <typename Fn>
grpc::ServerUnaryReactor* Serve(grpc::CallbackServerContext* ctx, WorkerPool& pool, const char* method, Fn fn) {
  auto* reactor = ctx->DefaultReactor();
  absl::StatusOr<auth::Principal> principal = auth::CurrentAuthenticator().Authenticate(*ctx);
  if (!principal.ok()) {
    reactor->Finish(ToGrpcStatus(principal.status()));
    return reactor;
  }
  // The view this call's answer is redacted for: the gateway caches it only under that view.
  ctx->AddTrailingMetadata(kViewTrailer, auth::View(*principal));
  // Fair shares are per principal; without authentication every caller is the same one.
  const std::string share = auth::CurrentAuthenticator().enabled() ? principal->name : std::string();
  absl::Status scheduled = pool.Schedule(share, [ctx, reactor, method, principal = std::move(*principal),
                                                 fn = std::move(fn)]() mutable {
    if (ctx->IsCancelled()) {
      reactor->Finish(grpc::Status(grpc::StatusCode::CANCELLED, "call cancelled by the client"));
      return;
    }
    CallInfo call = CallInfoFrom(*ctx);
    call.principal = std::move(principal);
    call.method = method;
    if (call.deadline <= absl::Now()) {
      reactor->Finish(grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED,
                                   "deadline expired before the call was processed"));
      return;
    }
    absl::Status status;
    {
      CurrentCall current(call.deadline, [ctx] { return ctx->IsCancelled(); });
      status = fn(call);
    }
    reactor->Finish(ToGrpcStatus(status));
  });
  if (!scheduled.ok()) reactor->Finish(ToGrpcStatus(scheduled));
  return reactor;
}

}  // namespace kp
