// PortalService: aggregated reads. Independent backend calls run in parallel, lookups are
// batched (BatchGet*, Summarize*), never one call per row; every response is cached.
#pragma once

#include "common/worker_pool.h"
#include "gateway/backends.h"
#include "gateway/call_context.h"
#include "gateway/response_cache.h"
#include "khartoum/gateway/v1/portal.grpc.pb.h"

namespace kp::gateway {

namespace gv1 = khartoum::gateway::v1;

class PortalService final : public gv1::PortalService::CallbackService {
 public:
  PortalService(const Backends* backends, ResponseCache* cache, WorkerPool* pool)
      : backends_(backends), cache_(cache), pool_(pool) {}

  grpc::ServerUnaryReactor* GetEventOverview(grpc::CallbackServerContext* ctx,
      const gv1::GetEventOverviewRequest* req, gv1::GetEventOverviewResponse* resp) override;
  grpc::ServerUnaryReactor* ListEventSummaries(grpc::CallbackServerContext* ctx,
      const gv1::ListEventSummariesRequest* req, gv1::ListEventSummariesResponse* resp) override;
  grpc::ServerUnaryReactor* GetOrganisationProfile(grpc::CallbackServerContext* ctx,
      const gv1::GetOrganisationProfileRequest* req, gv1::GetOrganisationProfileResponse* resp) override;
  grpc::ServerUnaryReactor* GetParticipantProfile(grpc::CallbackServerContext* ctx,
      const gv1::GetParticipantProfileRequest* req, gv1::GetParticipantProfileResponse* resp) override;
  grpc::ServerUnaryReactor* GetStatistics(grpc::CallbackServerContext* ctx,
      const gv1::GetStatisticsRequest* req, gv1::GetStatisticsResponse* resp) override;
  grpc::ServerUnaryReactor* Search(grpc::CallbackServerContext* ctx,
      const gv1::SearchRequest* req, gv1::SearchResponse* resp) override;

 private:
  // Runs `build` on the worker pool through the cache; `services` are the backends read.
  template <typename Request, typename Response, typename Build>
  grpc::ServerUnaryReactor* Cached(grpc::CallbackServerContext* ctx, const char* method, const Request* req,
                                   Response* resp, std::vector<absl::string_view> services, Build build);

  const Backends* backends_;
  ResponseCache* cache_;
  WorkerPool* pool_;
};

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

}  // namespace kp::gateway
