// The RPC boundary helper: runs a handler on the worker pool (never on gRPC's callback
// threads) and converts its absl::Status to the wire once.
#pragma once

#include <string>
#include <utility>

#include <grpcpp/server_context.h>
#include <grpcpp/support/server_callback.h>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/call_log.h"
#include "common/status.h"
#include "common/worker_pool.h"

namespace kp {

// What a handler knows about its call: deadline (to bound outbound calls) and request id.
struct CallInfo {
  absl::Time deadline = absl::InfiniteFuture();
  std::string request_id;
};

inline CallInfo CallInfoFrom(const grpc::CallbackServerContext& ctx) {
  CallInfo info;
  info.deadline = absl::FromChrono(ctx.deadline());
  const auto& md = ctx.client_metadata();
  if (auto it = md.find(kRequestIdHeader); it != md.end()) {
    info.request_id.assign(it->second.data(), it->second.size());
  }
  return info;
}

// `fn(const CallInfo&) -> absl::Status` runs on `pool`; its status finishes the call.
template <typename Fn>
grpc::ServerUnaryReactor* Serve(grpc::CallbackServerContext* ctx, WorkerPool& pool, Fn fn) {
  auto* reactor = ctx->DefaultReactor();
  pool.Schedule([ctx, reactor, fn = std::move(fn)]() mutable {
    if (ctx->IsCancelled()) {
      reactor->Finish(grpc::Status(grpc::StatusCode::CANCELLED, "call cancelled by the client"));
      return;
    }
    const CallInfo call = CallInfoFrom(*ctx);
    if (call.deadline <= absl::Now()) {
      reactor->Finish(grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED,
                                   "deadline expired before the call was processed"));
      return;
    }
    reactor->Finish(ToGrpcStatus(fn(call)));
  });
  return reactor;
}

}  // namespace kp
