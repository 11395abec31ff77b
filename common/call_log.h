// Server interceptor writing one JSON log line per call: method, code, latency, request id.
#pragma once

#include <memory>

#include <grpcpp/support/server_interceptor.h>

namespace kp {

inline constexpr char kRequestIdHeader[] = "x-request-id";

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> NewCallLogInterceptorFactory();

}  // namespace kp
