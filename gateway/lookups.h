// Batched lookups for the aggregations: names in chunks of 1000, chunks in parallel, resources
// deleted since they were referenced skipped (not a failure of the aggregate), and Lists read
// to their last page. Coroutines: no thread waits while the backends work.
#pragma once

#include <string>
#include <vector>

#include <google/protobuf/message.h>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "gateway/backends.h"
#include "gateway/call_context.h"
#include "gateway/fanout.h"
#include "gateway/task.h"

namespace kp::gateway {

namespace ov1 = khartoum::organisations::v1;
namespace ev1 = khartoum::events::v1;
namespace pv1 = khartoum::participants::v1;

Task<absl::Status> LookupOrganisations(const Backends& b, const Forwarded& from, std::vector<std::string> names,
                                       absl::flat_hash_map<std::string, ov1::Organisation>* out);
Task<absl::Status> LookupEvents(const Backends& b, const Forwarded& from, std::vector<std::string> names,
                                absl::flat_hash_map<std::string, ev1::Event>* out);
Task<absl::Status> LookupParticipants(const Backends& b, const Forwarded& from, std::vector<std::string> names,
                                      absl::flat_hash_map<std::string, pv1::Participant>* out);

// Every registration matching `req`, continuing from `first` (a page already fetched). Aggregates
// never stop at one page: a result that silently lost rows would be wrong, not just short.
Task<absl::Status> ListAllRegistrations(const Backends& b, const Forwarded& from, pv1::ListRegistrationsRequest req,
                                        pv1::ListRegistrationsResponse first, std::vector<pv1::Registration>* out);
// Every event matching `req`, continuing from `first` (a page already fetched).
Task<absl::Status> ListAllEvents(const Backends& b, const Forwarded& from, ev1::ListEventsRequest req,
                                 ev1::ListEventsResponse first, std::vector<ev1::Event>* out);

// What one aggregate response may hold: what every client accepts in one message (gRPC's
// default, like the servers' --max_message_bytes, is 4 MiB) less room for what goes around it.
inline constexpr size_t kMaxResponseBytes = (4 << 20) - (64 << 10);
// What one page of a paged aggregate (ListEventSummaries, Search) holds at most, as one page of
// a backend's List: a page stops early, with a next_page_token, rather than pass it.
inline constexpr size_t kMaxPageBytes = 2 << 20;

// An event as aggregates list it: without its description and summary (up to 50,000 and 2,000
// characters; a list of thousands would not fit in one response). GetEvent and
// GetEventOverview have them.
void ForListing(ev1::Event* event);
// An organisation where an aggregate needs it as a summary: without its description and
// external ids (up to 10,000 characters and 32 ids of 200). GetOrganisation has them.
void ForListing(ov1::Organisation* organisation);

// OK, or RESOURCE_EXHAUSTED saying that `what` ("the profile of organisations/x") would not fit
// in one response, and `instead` (what to call instead): a clear refusal rather than a
// transport error, or a result with rows silently dropped.
absl::Status FitsOneResponse(const google::protobuf::Message& response, absl::string_view what,
                             absl::string_view instead);

// "2024-02-07" style sort key for an event.
std::string StartKey(const ev1::Event& e);

}  // namespace kp::gateway
