// Batched lookups for the aggregations: names in chunks of 1000, chunks in parallel, and
// resources deleted since they were referenced skipped (not a failure of the aggregate).
#pragma once

#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "gateway/backends.h"
#include "gateway/call_context.h"

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

// Every registration matching `filter`, continuing from `first` (a page already fetched).
absl::Status ListAllRegistrations(const Backends& b, const Forwarded& from, const std::string& filter,
                                  pv1::ListRegistrationsResponse first, std::vector<pv1::Registration>* out);

// "2024-02-07" style sort key for an event.
std::string StartKey(const ev1::Event& e);

}  // namespace kp::gateway
