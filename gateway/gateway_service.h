// Every API of the gateway, on one generic callback service (grpc::CallbackGenericService):
// the three backend services forwarded (reads through the cache), PortalService's aggregations
// (behind the cache), and server reflection for all of them. A call is admitted (credentials,
// rate limit, the gateway's own limit on calls in flight) before any work; a method the gateway
// does not serve is UNIMPLEMENTED. Nothing here waits on a thread.
#pragma once

#include <atomic>
#include <string>
#include <vector>

#include <grpcpp/generic/async_generic_service.h>

#include "absl/container/flat_hash_map.h"
#include "gateway/backends.h"
#include "common/call_slots.h"
#include "gateway/rate_limiter.h"
#include "gateway/response_cache.h"
#include "gateway/send_deadlines.h"
#include "gateway/task.h"
#include "gateway/unary_call.h"

namespace kp::gateway {

class GatewayService final : public grpc::CallbackGenericService {
 public:
  // What bounds the calls (each may be null: no bound): `limiter` (rate limits), `slots` (calls in
  // progress, in all, per principal, per connection: beyond, a call is refused before its request
  // is read), `reads` (requests being read per principal), `responses` (bytes of responses not
  // yet sent), `send` (how long an answer may wait for its caller to read it).
  struct Bounds {
    RateLimiter* limiter = nullptr;
    CallSlots* slots = nullptr;
    ReadSlots* reads = nullptr;
    ResponseBudget* responses = nullptr;
    SendDeadlines* send = nullptr;
  };
  GatewayService(Backends* backends, ResponseCache* cache, Bounds bounds);

  // Full names of the services served (health and reflection included), for health and reflection.
  const std::vector<std::string>& services() const { return services_; }

  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext* ctx) override;

 private:
  // Routes every method of the backend service `backend` serves to it.
  void AddBackend(Backend& backend);
  template <typename Request, typename Response>
  void AddPortal(const char* method, Task<absl::Status> (*build)(const Backends&, const Forwarded&, const Request&,
                                                                 Response*));

  Backends* const backends_;
  ResponseCache* const cache_;
  const Bounds bounds_;
  CallSlots reflection_slots_;
  absl::flat_hash_map<std::string, UnaryCall::Handler> routes_;  // by "/pkg.Service/Method"
  std::vector<std::string> services_;
};

}  // namespace kp::gateway
