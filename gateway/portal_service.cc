// PortalService: raw handlers over the typed aggregations, behind the cache.
#include "gateway/portal_service.h"

#include <grpcpp/impl/codegen/server_callback_handlers.h>
#include <grpcpp/impl/rpc_service_method.h>

#include "absl/strings/str_cat.h"
#include "gateway/proxy.h"

namespace kp::gateway {

PortalService::PortalService(const Backends* backends, ResponseCache* cache, WorkerPool* pool, RateLimiter* limiter)
    : backends_(backends), cache_(cache), pool_(pool), limiter_(limiter) {
  Add("GetEventOverview", BuildEventOverview);
  Add("ListEventSummaries", BuildEventSummaries);
  Add("GetOrganisationProfile", BuildOrganisationProfile);
  Add("GetParticipantProfile", BuildParticipantProfile);
  Add("GetStatistics", BuildStatistics);
  Add("Search", BuildSearch);
}

template <typename Request, typename Response>
void PortalService::Add(const char* method,
                        absl::Status (*build)(const Backends&, const Forwarded&, const Request&, Response*)) {
  paths_.push_back(absl::StrCat("/khartoum.gateway.v1.PortalService/", method));
  builders_.push_back([this, build](const Forwarded& from, const std::string& bytes) -> Loaded {
    Request req;
    if (!req.ParseFromString(bytes)) return Loaded{grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "the request does not parse"), ""};
    Response built;
    const absl::Status status = build(*backends_, from, req, &built);
    const bool confirmed = from.applied_views && from.applied_views->Confirmed();
    if (!status.ok()) return Loaded{ToGrpcStatus(status), "", confirmed};
    Loaded loaded{grpc::Status::OK, built.SerializeAsString(), confirmed};
    loaded.within_quota = limiter_ == nullptr || limiter_->AdmitCacheStore(from.principal, loaded.body.size());
    return loaded;
  });
  const std::string& path = paths_.back();
  const Builder& builder = builders_.back();
  AddMethod(new grpc::internal::RpcServiceMethod(path.c_str(), grpc::internal::RpcMethod::NORMAL_RPC, nullptr));
  MarkMethodRawCallback(static_cast<int>(paths_.size()) - 1,
                        new grpc::internal::CallbackUnaryHandler<grpc::ByteBuffer, grpc::ByteBuffer>(
                            [this, &path, &builder](grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* req,
                                                    grpc::ByteBuffer* resp) {
                              return Handle(ctx, req, resp, path, Request::descriptor(), builder);
                            }));
}

grpc::ServerUnaryReactor* PortalService::Handle(grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* request,
                                                grpc::ByteBuffer* response, const std::string& path,
                                                const google::protobuf::Descriptor* type, const Builder& build) {
  auto* reactor = ctx->DefaultReactor();
  std::optional<Forwarded> admitted = AdmitOrFinish(*ctx, request, limiter_, reactor);
  if (!admitted) return reactor;
  absl::StatusOr<std::string> canonical = CanonicalRequest(type, ToString(*request));
  if (!canonical.ok()) {
    reactor->Finish(ToGrpcStatus(canonical.status()));
    return reactor;
  }
  // Every aggregate reads all three backends: its entries depend on all three generations.
  ServeCached(*cache_, *pool_, ctx, reactor, response, admitted->view, path, *std::move(canonical),
              {"organisations", "events", "participants"},
              [&build, from = *admitted](const std::string& bytes) { return build(from, bytes); });
  return reactor;
}

}  // namespace kp::gateway
