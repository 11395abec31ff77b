// Server interceptor writing one JSON log line per call (method, code, latency, request id)
// and counting calls in flight for graceful drain.
#pragma once

#include <cstdint>
#include <memory>

#include <grpcpp/support/server_interceptor.h>

namespace kp {

inline constexpr char kRequestIdHeader[] = "x-request-id";

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> NewCallLogInterceptorFactory();

// Calls (of every server in this process) that have started and not yet been destroyed.
int64_t InFlightCalls();

}  // namespace kp
