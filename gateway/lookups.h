// Batched lookups for the aggregations: names in chunks of 1000, chunks in parallel, and
// resources deleted since they were referenced skipped (not a failure of the aggregate).
#pragma once

#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "gateway/backends.h"
#include "common/status.h"
#include "gateway/call_context.h"
#include "gateway/fanout.h"

namespace kp::gateway {

namespace ov1 = khartoum::organisations::v1;
namespace ev1 = khartoum::events::v1;
namespace pv1 = khartoum::participants::v1;

absl::Status LookupOrganisations(const Backends& b, const Forwarded& from, const std::vector<std::string>& names,
                                 absl::flat_hash_map<std::string, ov1::Organisation>* out);
absl::Status LookupEvents(const Backends& b, const Forwarded& from, const std::vector<std::string>& names,
                          absl::flat_hash_map<std::string, ev1::Event>* out);
absl::Status LookupParticipants(const Backends& b, const Forwarded& from, const std::vector<std::string>& names,
                                absl::flat_hash_map<std::string, pv1::Participant>* out);

// A List to its last page: `first` is the page `req` already fetched; `start(ctx, &req, &resp,
// done)` fetches another; `items(resp)` is the page's repeated field. Aggregates never stop at
// one page: a result that silently lost rows would be wrong, not just short.
template <typename Request, typename Response, typename Item, typename Start, typename Items>
absl::Status ListRest(const Backends& b, const Forwarded& from, Request req, Response first, Start start, Items items,
                      std::vector<Item>* out) {
  Response page = std::move(first);
  while (true) {
    for (auto& item : *items(page)) out->push_back(std::move(item));
    if (page.next_page_token().empty()) return absl::OkStatus();
    req.set_page_token(page.next_page_token());
    Response next;
    grpc::Status status;
    {
      Fanout fanout(from, b.timeout);
      fanout.Start(&status, [&](grpc::ClientContext* ctx, Fanout::Done done) { start(ctx, &req, &next, std::move(done)); });
    }
    if (!status.ok()) return FromGrpcStatus(status);
    page = std::move(next);
  }
}

// Every registration matching `req`'s filter, continuing from `first` (a page already fetched).
absl::Status ListAllRegistrations(const Backends& b, const Forwarded& from, const pv1::ListRegistrationsRequest& req,
                                  pv1::ListRegistrationsResponse first, std::vector<pv1::Registration>* out);
// Every event matching `req`, continuing from `first` (a page already fetched).
absl::Status ListAllEvents(const Backends& b, const Forwarded& from, const ev1::ListEventsRequest& req,
                           ev1::ListEventsResponse first, std::vector<ev1::Event>* out);

// An event as aggregates list it: without its description (up to 50,000 characters each; a
// list of hundreds would not fit in one response). GetEvent and GetEventOverview have it.
void ForListing(ev1::Event* event);

// "2024-02-07" style sort key for an event.
std::string StartKey(const ev1::Event& e);

}  // namespace kp::gateway
