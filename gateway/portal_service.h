// khartoum.gateway.v1.PortalService: aggregated reads, one coroutine per RPC
// (portal_aggregates.cc, portal_search.cc), served behind the cache by GatewayService. Independent
// backend calls run in parallel, lookups are batched (BatchGet*, Summarize*), never one call per
// row, and no thread waits while the backends work.
#pragma once

#include "absl/status/status.h"
#include "gateway/backends.h"
#include "gateway/call_context.h"
#include "gateway/task.h"
#include "khartoum/gateway/v1/portal.pb.h"

namespace kp::gateway {

namespace gv1 = khartoum::gateway::v1;

// Each fills `resp` from the backends, as `from` may see them. Every argument must outlive the task.
Task<absl::Status> BuildEventOverview(const Backends& b, const Forwarded& from, const gv1::GetEventOverviewRequest& req,
                                      gv1::GetEventOverviewResponse* resp);
Task<absl::Status> BuildEventSummaries(const Backends& b, const Forwarded& from,
                                       const gv1::ListEventSummariesRequest& req,
                                       gv1::ListEventSummariesResponse* resp);
Task<absl::Status> BuildOrganisationProfile(const Backends& b, const Forwarded& from,
                                            const gv1::GetOrganisationProfileRequest& req,
                                            gv1::GetOrganisationProfileResponse* resp);
Task<absl::Status> BuildParticipantProfile(const Backends& b, const Forwarded& from,
                                           const gv1::GetParticipantProfileRequest& req,
                                           gv1::GetParticipantProfileResponse* resp);
Task<absl::Status> BuildStatistics(const Backends& b, const Forwarded& from, const gv1::GetStatisticsRequest& req,
                                   gv1::GetStatisticsResponse* resp);
Task<absl::Status> BuildSearch(const Backends& b, const Forwarded& from, const gv1::SearchRequest& req,
                               gv1::SearchResponse* resp);

}  // namespace kp::gateway
