// PortalService: aggregated reads, each on the worker pool behind the cache. Independent backend calls run in parallel, lookups are
// batched (BatchGet*, Summarize*), never one call per row; every response is cached.
#pragma once

#include "common/status.h"
#include "common/worker_pool.h"
#include "gateway/backends.h"
#include "gateway/call_context.h"
#include "gateway/response_cache.h"
#include "khartoum/gateway/v1/portal.grpc.pb.h"

namespace kp::gateway {

namespace gv1 = khartoum::gateway::v1;

// The aggregations themselves, one per RPC (portal_aggregates.cc, portal_search.cc).
absl::Status BuildEventOverview(const Backends& b, const Forwarded& from, const gv1::GetEventOverviewRequest& req,
                                gv1::GetEventOverviewResponse* resp);
absl::Status BuildEventSummaries(const Backends& b, const Forwarded& from, const gv1::ListEventSummariesRequest& req,
                                 gv1::ListEventSummariesResponse* resp);
absl::Status BuildOrganisationProfile(const Backends& b, const Forwarded& from,
                                      const gv1::GetOrganisationProfileRequest& req,
                                      gv1::GetOrganisationProfileResponse* resp);
absl::Status BuildParticipantProfile(const Backends& b, const Forwarded& from,
                                     const gv1::GetParticipantProfileRequest& req,
                                     gv1::GetParticipantProfileResponse* resp);
absl::Status BuildStatistics(const Backends& b, const Forwarded& from, const gv1::GetStatisticsRequest& req,
                             gv1::GetStatisticsResponse* resp);
absl::Status BuildSearch(const Backends& b, const Forwarded& from, const gv1::SearchRequest& req,
                         gv1::SearchResponse* resp);

class PortalService final : public gv1::PortalService::CallbackService {
 public:
  PortalService(const Backends* backends, ResponseCache* cache, WorkerPool* pool)
      : backends_(backends), cache_(cache), pool_(pool) {}

// Each RPC: its aggregation (Build<Name> below) on the worker pool, behind the cache.
#define KP_PORTAL_METHOD(Method, Build)                                                          \
  grpc::ServerUnaryReactor* Method(grpc::CallbackServerContext* ctx, const gv1::Method##Request* req, \
                                   gv1::Method##Response* resp) override {                       \
    return Cached(ctx, "/khartoum.gateway.v1.PortalService/" #Method, req, resp, Build);           \
  }
  KP_PORTAL_METHOD(GetEventOverview, BuildEventOverview)
  KP_PORTAL_METHOD(ListEventSummaries, BuildEventSummaries)
  KP_PORTAL_METHOD(GetOrganisationProfile, BuildOrganisationProfile)
  KP_PORTAL_METHOD(GetParticipantProfile, BuildParticipantProfile)
  KP_PORTAL_METHOD(GetStatistics, BuildStatistics)
  KP_PORTAL_METHOD(Search, BuildSearch)
#undef KP_PORTAL_METHOD

 private:
  // Runs `build` on the worker pool through the cache. Every aggregate reads all three
  // backends, so its entries depend on all three generations.
  template <typename Request, typename Response, typename Build>
  grpc::ServerUnaryReactor* Cached(grpc::CallbackServerContext* ctx, const char* method, const Request* req,
                                   Response* resp, Build build);

  const Backends* backends_;
  ResponseCache* cache_;
  WorkerPool* pool_;
};

template <typename Request, typename Response, typename Build>
grpc::ServerUnaryReactor* PortalService::Cached(grpc::CallbackServerContext* ctx, const char* method,
                                                const Request* req, Response* resp, Build build) {
  auto* reactor = ctx->DefaultReactor();
  std::optional<Forwarded> admitted = AdmitOrFinish(*ctx, reactor);
  if (!admitted) return reactor;
  pool_->Schedule([=, this, from = std::move(*admitted)] {
    static const std::vector<absl::string_view> kServices = {"organisations", "events", "participants"};
    CacheOutcome outcome;
    Loaded loaded = cache_->GetOrLoad(from.view, method, req->SerializeAsString(), kServices, [&]() -> Loaded {
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

}  // namespace kp::gateway
