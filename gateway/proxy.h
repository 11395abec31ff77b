// The backend services on the gateway's port, unchanged: a call's request bytes go to the backend
// with the caller's metadata and deadline (less a margin), and its status, message, details and
// metadata come back as the backend sent them. Reads (Get*, BatchGet*, List*, Summarize*) go
// through the response cache. Asynchronous throughout: no thread waits for a backend.
#pragma once

#include <google/protobuf/descriptor.h>

#include "absl/strings/string_view.h"
#include "gateway/backend.h"
#include "gateway/call_context.h"
#include "gateway/rate_limiter.h"
#include "gateway/response_cache.h"
#include "gateway/unary_call.h"

namespace kp::gateway {

// Whether a backend method's answers may be cached (reads only; the audit log is for admins).
bool IsCacheable(absl::string_view method_name);

// Forwards `call` to `backend` as it is.
void Forward(UnaryCall* call, Backend& backend, const Forwarded& from);

// Serves a read of `backend` from `cache`, forwarding on a miss. `type` is the method's request
// type (for the cache key's canonical form).
void ForwardCached(UnaryCall* call, Backend& backend, ResponseCache& cache, RateLimiter* limiter, Forwarded from,
                   const google::protobuf::Descriptor* type);

}  // namespace kp::gateway
