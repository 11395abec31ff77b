// PortalService handlers: each aggregation runs on the worker pool behind the cache.
#include "gateway/portal_service.h"

#include "common/status.h"

namespace kp::gateway {

template <typename Request, typename Response, typename Build>
grpc::ServerUnaryReactor* PortalService::Cached(grpc::CallbackServerContext* ctx, const char* method,
                                                const Request* req, Response* resp,
                                                std::vector<absl::string_view> services, Build build) {
  auto* reactor = ctx->DefaultReactor();
  absl::StatusOr<Forwarded> admitted = Admit(*ctx);
  if (!admitted.ok()) {
    reactor->Finish(ToGrpcStatus(admitted.status()));
    return reactor;
  }
  pool_->Schedule([=, this, services = std::move(services), from = std::move(*admitted)] {
    CacheOutcome outcome;
    Loaded loaded = cache_->GetOrLoad(from.view, method, req->SerializeAsString(), services, [&]() -> Loaded {
      Response built;
      const absl::Status status = build(*backends_, from, *req, &built);
      if (!status.ok()) return Loaded{ToGrpcStatus(status), ""};
      return Loaded{grpc::Status::OK, built.SerializeAsString()};
    }, &outcome);
    ctx->AddInitialMetadata("x-kp-cache", OutcomeName(outcome));
    if (loaded.status.ok() && !resp->ParseFromString(loaded.body)) {
      loaded.status = grpc::Status(grpc::StatusCode::INTERNAL, "cached response does not parse");
    }
    reactor->Finish(loaded.status);
  });
  return reactor;
}

namespace {
constexpr absl::string_view kOrganisations = "organisations";
constexpr absl::string_view kEvents = "events";
constexpr absl::string_view kParticipants = "participants";
}  // namespace

grpc::ServerUnaryReactor* PortalService::GetEventOverview(grpc::CallbackServerContext* ctx,
    const gv1::GetEventOverviewRequest* req, gv1::GetEventOverviewResponse* resp) {
  return Cached(ctx, "/khartoum.gateway.v1.PortalService/GetEventOverview", req, resp,
                {kOrganisations, kEvents, kParticipants}, BuildEventOverview);
}

grpc::ServerUnaryReactor* PortalService::ListEventSummaries(grpc::CallbackServerContext* ctx,
    const gv1::ListEventSummariesRequest* req, gv1::ListEventSummariesResponse* resp) {
  return Cached(ctx, "/khartoum.gateway.v1.PortalService/ListEventSummaries", req, resp,
                {kOrganisations, kEvents, kParticipants}, BuildEventSummaries);
}

grpc::ServerUnaryReactor* PortalService::GetOrganisationProfile(grpc::CallbackServerContext* ctx,
    const gv1::GetOrganisationProfileRequest* req, gv1::GetOrganisationProfileResponse* resp) {
  return Cached(ctx, "/khartoum.gateway.v1.PortalService/GetOrganisationProfile", req, resp,
                {kOrganisations, kEvents, kParticipants}, BuildOrganisationProfile);
}

grpc::ServerUnaryReactor* PortalService::GetParticipantProfile(grpc::CallbackServerContext* ctx,
    const gv1::GetParticipantProfileRequest* req, gv1::GetParticipantProfileResponse* resp) {
  return Cached(ctx, "/khartoum.gateway.v1.PortalService/GetParticipantProfile", req, resp,
                {kOrganisations, kEvents, kParticipants}, BuildParticipantProfile);
}

grpc::ServerUnaryReactor* PortalService::GetStatistics(grpc::CallbackServerContext* ctx,
    const gv1::GetStatisticsRequest* req, gv1::GetStatisticsResponse* resp) {
  return Cached(ctx, "/khartoum.gateway.v1.PortalService/GetStatistics", req, resp,
                {kOrganisations, kEvents, kParticipants}, BuildStatistics);
}

grpc::ServerUnaryReactor* PortalService::Search(grpc::CallbackServerContext* ctx,
    const gv1::SearchRequest* req, gv1::SearchResponse* resp) {
  return Cached(ctx, "/khartoum.gateway.v1.PortalService/Search", req, resp,
                {kOrganisations, kEvents, kParticipants}, BuildSearch);
}

}  // namespace kp::gateway
