// PortalService: raw handlers over the typed aggregations, behind the cache.
#include "gateway/portal_service.h"

#include <grpcpp/impl/codegen/server_callback_handlers.h>
#include <grpcpp/impl/rpc_service_method.h>

#include "absl/strings/str_cat.h"
#include "gateway/proxy.h"

namespace kp::gateway {

PortalService::PortalService(const Backends* backends, ResponseCache* cache, WorkerPool* pool)
    : backends_(backends), cache_(cache), pool_(pool) {
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
    if (!status.ok()) return Loaded{ToGrpcStatus(status), ""};
    return Loaded{grpc::Status::OK, built.SerializeAsString()};
  });
  const std::string& path = paths_.back();
  const Builder& builder = builders_.back();
  AddMethod(new grpc::internal::RpcServiceMethod(path.c_str(), grpc::internal::RpcMethod::NORMAL_RPC, nullptr));
  MarkMethodRawCallback(static_cast<int>(paths_.size()) - 1,
                        new grpc::internal::CallbackUnaryHandler<grpc::ByteBuffer, grpc::ByteBuffer>(
                            [this, &path, &builder](grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* req,
                                                    grpc::ByteBuffer* resp) { return Handle(ctx, req, resp, path, builder); }));
}

grpc::ServerUnaryReactor* PortalService::Handle(grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* request,
                                                grpc::ByteBuffer* response, const std::string& path,
                                                const Builder& build) {
  auto* reactor = ctx->DefaultReactor();
  std::optional<Forwarded> admitted = AdmitOrFinish(*ctx, reactor);
  if (!admitted) return reactor;
  // Every aggregate reads all three backends: its entries depend on all three generations.
  static const std::vector<absl::string_view> kServices = {"organisations", "events", "participants"};
  // With few calls in flight a hit is answered here, on gRPC's thread (see LookUpInline);
  // otherwise, and for misses, on the worker pool.
  std::string bytes = ToString(*request);
  ResponseCache::Lookup lookup;
  if (LookUpInline()) lookup = cache_->Find(admitted->view, path, bytes, kServices);
  if (lookup.outcome == CacheOutcome::kHit) {
    ctx->AddInitialMetadata("x-kp-cache", OutcomeName(CacheOutcome::kHit));
    *response = SharedByteBuffer(std::move(lookup.body));
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
  pool_->Schedule([=, this, &build, from = std::move(*admitted), bytes = std::move(bytes),
                   lookup = std::move(lookup)] {
    ResponseCache::Lookup found = lookup.key.empty() ? cache_->Find(from.view, path, bytes, kServices) : lookup;
    if (found.outcome == CacheOutcome::kHit) {
      ctx->AddInitialMetadata("x-kp-cache", OutcomeName(CacheOutcome::kHit));
      *response = SharedByteBuffer(std::move(found.body));
      reactor->Finish(grpc::Status::OK);
      return;
    }
    CacheOutcome outcome;
    Loaded loaded = cache_->Load(found, kServices, [&] { return build(from, bytes); }, &outcome);
    ctx->AddInitialMetadata("x-kp-cache", OutcomeName(outcome));
    if (loaded.status.ok()) *response = ToByteBuffer(loaded.body);
    reactor->Finish(loaded.status);
  });
  return reactor;
}

}  // namespace kp::gateway
