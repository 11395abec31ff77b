// GatewayService: see gateway_service.h.
#include "gateway/gateway_service.h"

#include <google/protobuf/descriptor.h>

#include "absl/strings/str_cat.h"
#include "common/metrics.h"
#include "common/status.h"
#include "common/utf8.h"
#include "gateway/portal_service.h"
#include "gateway/proxy.h"
#include "gateway/reflection.h"

namespace kp::gateway {
namespace {

constexpr char kPortalService[] = "khartoum.gateway.v1.PortalService";
// Reflection streams open at once: tools discovering the API need one or two each; each may hold
// a request of up to --max_message_bytes, and its answers count in the response budget.
constexpr CallSlots::Limits kReflectionLimits{
    .total = 64, .per_principal = 4, .per_connection = 4, .noun = "reflection streams open", .metric = "reflection"};

}  // namespace

GatewayService::GatewayService(Backends* backends, ResponseCache* cache, Bounds bounds)
    : backends_(backends), cache_(cache), bounds_(bounds), reflection_slots_(kReflectionLimits) {
  AddBackend(*backends_->organisations);
  AddBackend(*backends_->events);
  AddBackend(*backends_->participants);
  AddPortal("GetEventOverview", BuildEventOverview);
  AddPortal("ListEventSummaries", BuildEventSummaries);
  AddPortal("GetOrganisationProfile", BuildOrganisationProfile);
  AddPortal("GetParticipantProfile", BuildParticipantProfile);
  AddPortal("GetStatistics", BuildStatistics);
  AddPortal("Search", BuildSearch);
  services_.push_back(kPortalService);
  services_.push_back("grpc.health.v1.Health");
  services_.push_back("grpc.reflection.v1alpha.ServerReflection");
}

void GatewayService::AddBackend(Backend& backend) {
  const auto* service = google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(backend.service());
  services_.push_back(backend.service());
  for (int i = 0; i < service->method_count(); ++i) {
    const auto* method = service->method(i);
    const std::string path = absl::StrCat("/", service->full_name(), "/", method->name());
    if (IsCacheable(method->name())) {
      routes_[path] = [this, &backend, type = method->input_type()](UnaryCall* call, Forwarded from) {
        ForwardCached(call, backend, *cache_, bounds_.limiter, std::move(from), type);
      };
    } else {
      routes_[path] = [&backend](UnaryCall* call, Forwarded from) { Forward(call, backend, from); };
    }
  }
}

template <typename Request, typename Response>
void GatewayService::AddPortal(const char* method, Task<absl::Status> (*build)(const Backends&, const Forwarded&,
                                                                               const Request&, Response*)) {
  const std::string path = absl::StrCat("/", kPortalService, "/", method);
  routes_[path] = [this, build, path](UnaryCall* call, Forwarded from) {
    absl::StatusOr<std::string> canonical = CanonicalRequest(Request::descriptor(), ToString(call->request()));
    if (!canonical.ok()) {
      call->Reply(ToGrpcStatus(canonical.status()));
      return;
    }
    // The request as the loader needs it: parsed once here (it parsed above, so it parses again).
    auto request = std::make_shared<Request>();
    request->ParseFromString(*canonical);
    // Every aggregate reads all three backends: its entries depend on all three generations.
    ResponseCache::Request key{from.view, path, *std::move(canonical), {"organisations", "events", "participants"},
                               call->cancel_scope()};
    cache_->Serve(
        std::move(key),
        [this, call, build, request, from = std::move(from)](bool alone, std::function<void(Loaded)> done) {
          // What the aggregation works on lives until it has finished; the views the backends
          // applied are this load's own.
          struct State {
            Forwarded from;
            std::shared_ptr<Request> request;
            Response response;
          };
          auto state = std::make_shared<State>(State{from, request, {}});
          state->from.applied_views = std::make_shared<AppliedViews>(state->from.view);
          state->from.cancel = alone ? call->cancel_scope() : nullptr;
          Start(build(*backends_, state->from, *state->request, &state->response),
                [this, state, done = std::move(done)](absl::Status status) {
                  Loaded loaded{ToGrpcStatus(status), "", state->from.applied_views->Confirmed()};
                  if (status.ok()) {
                    loaded.body = state->response.SerializeAsString();
                    loaded.within_quota =
                        bounds_.limiter == nullptr || bounds_.limiter->AdmitCacheStore(state->from.principal, loaded.body.size());
                  }
                  done(std::move(loaded));
                });
        },
        [call](CacheOutcome outcome, const grpc::Status& status, const Body& body) {
          call->ReplyFromCache(outcome, status, body);
        });
  };
}

grpc::ServerGenericBidiReactor* GatewayService::CreateReactor(grpc::GenericCallbackServerContext* ctx) {
  const std::string& method = ctx->method();
  auto route = routes_.find(method);
  const bool reflection = route == routes_.end() && method == kReflectionMethod;
  if (route == routes_.end() && !reflection) {
    // (The message names no more than a bounded prefix of what the caller sent.)
    return new Refused(grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                                    absl::StrCat("the gateway serves no method ", utf8::Valid(absl::string_view(method).substr(0, 200)))));
  }
  // (Compressed requests never get here: gRPC refuses them, UNIMPLEMENTED "Compression algorithm
  // 'gzip' is disabled", as the server enables no algorithm but identity; see common/server.cc.)
  // The caller is admitted (credentials, rate limit) before its request is read: a request
  // body is never buffered for a caller who may not call (up to --max_message_bytes each).
  // Reflection too needs a valid token (any role): its streams hold requests and answers.
  absl::StatusOr<Forwarded> from = Admit(*ctx, bounds_.limiter);
  if (!from.ok()) {
    if (reflection) metrics::RecordEdgeRefusal("reflection_unauthenticated");
    return new Refused(ToGrpcStatus(from.status()));
  }
  // A reflection stream takes a slot of its own kind: tools exploring the API cannot take the
  // calls' slots, nor calls theirs.
  CallBounds bounds{reflection ? &reflection_slots_ : bounds_.slots, "", bounds_.reads, bounds_.responses,
                           bounds_.send};
  if (bounds.slots != nullptr) {
    bounds.connection = ctx->peer();
    if (absl::Status slot = bounds.slots->Acquire(from->principal.name, bounds.connection); !slot.ok()) {
      return new Refused(ToGrpcStatus(slot));
    }
  }
  if (reflection) return new ReflectionCall(ctx, &services_, from->principal.name, std::move(bounds));
  return new UnaryCall(ctx, &route->second, *std::move(from), std::move(bounds));
}

}  // namespace kp::gateway
