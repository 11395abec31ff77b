// Batched lookups: see lookups.h.
#include "gateway/lookups.h"

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_format.h"
#include "common/status.h"
#include "gateway/fanout.h"

namespace kp::gateway {
namespace {

constexpr size_t kChunk = 1000;

// One BatchGet per chunk, all in parallel. A chunk that names deleted resources is asked again
// without them (the backend lists them, a bounded number per error: a round that learns
// nothing new ends it); a chunk whose resources are too large for one response is asked again
// in two halves.
template <typename Request, typename Response, typename Item, typename Start, typename Items>
absl::Status LookupAll(const Backends& b, const Forwarded& from, const std::vector<std::string>& names,
                       Start start, Items items, absl::flat_hash_map<std::string, Item>* out) {
  std::vector<std::vector<std::string>> chunks;
  absl::flat_hash_set<std::string> seen;
  for (const auto& n : names) {
    if (out->contains(n) || !seen.insert(n).second) continue;
    if (chunks.empty() || chunks.back().size() == kChunk) chunks.emplace_back();
    chunks.back().push_back(n);
  }
  for (int round = 0; round < 64 && !chunks.empty(); ++round) {
    std::vector<Request> requests(chunks.size());
    std::vector<Response> responses(chunks.size());
    std::vector<grpc::Status> statuses(chunks.size());
    {
      Fanout fanout(from, b.timeout);
      for (size_t c = 0; c < chunks.size(); ++c) {
        for (const auto& n : chunks[c]) requests[c].add_names(n);
        fanout.Start(&statuses[c], [&, c](grpc::ClientContext* ctx, Fanout::Done done) {
          start(ctx, &requests[c], &responses[c], std::move(done));
        });
      }
    }
    std::vector<std::vector<std::string>> again;
    for (size_t c = 0; c < chunks.size(); ++c) {
      if (statuses[c].ok()) {
        for (const auto& item : items(responses[c])) (*out)[item.name()] = item;
        continue;
      }
      const absl::Status status = FromGrpcStatus(statuses[c]);
      if (absl::IsResourceExhausted(status) && chunks[c].size() > 1) {
        const auto half = chunks[c].begin() + chunks[c].size() / 2;
        again.emplace_back(chunks[c].begin(), half);
        again.emplace_back(half, chunks[c].end());
        continue;
      }
      const std::vector<std::string> missing = GetMissingNames(status);
      if (!absl::IsNotFound(status) || missing.empty()) return status;
      const absl::flat_hash_set<std::string> gone(missing.begin(), missing.end());
      std::vector<std::string> rest;
      for (const auto& n : chunks[c]) {
        if (!gone.contains(n)) rest.push_back(n);
      }
      if (rest.size() == chunks[c].size()) return status;  // no progress: the backend's answer
      if (!rest.empty()) again.push_back(std::move(rest));
    }
    chunks = std::move(again);
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status LookupOrganisations(const Backends& b, const Forwarded& from, const std::vector<std::string>& names,
                                 absl::flat_hash_map<std::string, ov1::Organisation>* out) {
  return LookupAll<ov1::BatchGetOrganisationsRequest, ov1::BatchGetOrganisationsResponse>(
      b, from, names,
      [&](grpc::ClientContext* ctx, const auto* req, auto* resp, Fanout::Done done) {
        b.organisations->async()->BatchGetOrganisations(ctx, req, resp, std::move(done));
      },
      [](const auto& resp) -> const auto& { return resp.organisations(); }, out);
}

absl::Status LookupEvents(const Backends& b, const Forwarded& from, const std::vector<std::string>& names,
                          absl::flat_hash_map<std::string, ev1::Event>* out) {
  return LookupAll<ev1::BatchGetEventsRequest, ev1::BatchGetEventsResponse>(
      b, from, names,
      [&](grpc::ClientContext* ctx, const auto* req, auto* resp, Fanout::Done done) {
        b.events->async()->BatchGetEvents(ctx, req, resp, std::move(done));
      },
      [](const auto& resp) -> const auto& { return resp.events(); }, out);
}

absl::Status LookupParticipants(const Backends& b, const Forwarded& from, const std::vector<std::string>& names,
                                absl::flat_hash_map<std::string, pv1::Participant>* out) {
  return LookupAll<pv1::BatchGetParticipantsRequest, pv1::BatchGetParticipantsResponse>(
      b, from, names,
      [&](grpc::ClientContext* ctx, const auto* req, auto* resp, Fanout::Done done) {
        b.participants->async()->BatchGetParticipants(ctx, req, resp, std::move(done));
      },
      [](const auto& resp) -> const auto& { return resp.participants(); }, out);
}

absl::Status ListAllRegistrations(const Backends& b, const Forwarded& from, const pv1::ListRegistrationsRequest& req,
                                  pv1::ListRegistrationsResponse first, std::vector<pv1::Registration>* out) {
  return ListRest(
      b, from, req, std::move(first),
      [&](grpc::ClientContext* ctx, const auto* r, auto* resp, Fanout::Done done) {
        b.participants->async()->ListRegistrations(ctx, r, resp, std::move(done));
      },
      [](auto& resp) { return resp.mutable_registrations(); }, out);
}

absl::Status ListAllEvents(const Backends& b, const Forwarded& from, const ev1::ListEventsRequest& req,
                           ev1::ListEventsResponse first, std::vector<ev1::Event>* out) {
  return ListRest(
      b, from, req, std::move(first),
      [&](grpc::ClientContext* ctx, const auto* r, auto* resp, Fanout::Done done) {
        b.events->async()->ListEvents(ctx, r, resp, std::move(done));
      },
      [](auto& resp) { return resp.mutable_events(); }, out);
}

void ForListing(ev1::Event* event) { event->clear_description(); }

std::string StartKey(const ev1::Event& e) {
  return absl::StrFormat("%04d-%02d-%02d", e.start_date().year(), e.start_date().month(), e.start_date().day());
}

}  // namespace kp::gateway
