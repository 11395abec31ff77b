// PortalService: aggregated reads, each on the worker pool behind the cache. Independent
// backend calls run in parallel, lookups are batched (BatchGet*, Summarize*), never one call
// per row; every response is cached.
#pragma once

#include <deque>
#include <functional>

#include <grpcpp/impl/service_type.h>
#include <grpcpp/support/byte_buffer.h>

#include "common/status.h"
#include "common/worker_pool.h"
#include "gateway/backends.h"
#include "gateway/call_context.h"
#include "gateway/response_cache.h"
#include "khartoum/gateway/v1/portal.pb.h"

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

// Served raw: a cached response goes out as the bytes stored, never parsed and re-serialized.
class PortalService final : public grpc::Service {
 public:
  PortalService(const Backends* backends, ResponseCache* cache, WorkerPool* pool, RateLimiter* limiter);

 private:
  using Builder = std::function<Loaded(const Forwarded& from, const std::string& request)>;
  // Registers `method` of khartoum.gateway.v1.PortalService, built by `build` on a miss.
  template <typename Request, typename Response>
  void Add(const char* method, absl::Status (*build)(const Backends&, const Forwarded&, const Request&, Response*));
  grpc::ServerUnaryReactor* Handle(grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* request,
                                   grpc::ByteBuffer* response, const std::string& path,
                                   const google::protobuf::Descriptor* type, const Builder& build);

  const Backends* backends_;
  ResponseCache* cache_;
  WorkerPool* pool_;
  RateLimiter* limiter_;
  std::deque<std::string> paths_;  // RpcServiceMethod keeps a pointer
  std::deque<Builder> builders_;
};

}  // namespace kp::gateway
