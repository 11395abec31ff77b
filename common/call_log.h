// Server interceptor writing one JSON log line per call (method, code, latency, request id)
// and counting calls in flight for graceful drain.
#pragma once

#include <cstdint>
#include <memory>
#include <map>
#include <string>

#include <grpcpp/support/string_ref.h>

#include "absl/strings/string_view.h"

#include <grpcpp/support/server_interceptor.h>

namespace kp {

inline constexpr char kRequestIdHeader[] = "x-request-id";

// The caller's x-request-id if it is one (1 to 128 of letters, digits and ._:/+=-), else "":
// it goes into logs and the audit log, so nothing else from the caller is taken.
std::string RequestIdFrom(const std::multimap<grpc::string_ref, grpc::string_ref>& metadata);

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> NewCallLogInterceptorFactory();

// INVALID_ARGUMENT's message for request bytes that do not parse as `method`'s request type
// ("/pkg.Service/Method").
std::string UnparsedRequestMessage(absl::string_view method);

// Calls (of every server in this process) that have started and not yet been destroyed.
int64_t InFlightCalls();

}  // namespace kp
