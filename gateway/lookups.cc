// Batched lookups: see lookups.h.
#include "gateway/lookups.h"

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_format.h"
#include "common/status.h"
#include "gateway/fanout.h"

namespace kp::gateway {
namespace {

constexpr size_t kChunk = 1000;

// One BatchGet per chunk, all in parallel; chunks that name deleted resources are retried
// without them (the backend lists them in its RESOURCES_NOT_FOUND error info).
template <typename Request, typename Response, typename Item, typename Start, typename Items>
absl::Status LookupAll(const Backends& b, const Forwarded& from, const std::vector<std::string>& names,
                       Start start, Items items, absl::flat_hash_map<std::string, Item>* out) {
  std::vector<std::string> pending;
  absl::flat_hash_set<std::string> seen;
  for (const auto& n : names) {
    if (!out->contains(n) && seen.insert(n).second) pending.push_back(n);
  }
  for (int attempt = 0; attempt < 3 && !pending.empty(); ++attempt) {
    const size_t chunks = (pending.size() + kChunk - 1) / kChunk;
    std::vector<Request> requests(chunks);
    std::vector<Response> responses(chunks);
    std::vector<grpc::Status> statuses(chunks);
    {
      Fanout fanout(from, b.timeout);
      for (size_t c = 0; c < chunks; ++c) {
        for (size_t i = c * kChunk; i < std::min(pending.size(), (c + 1) * kChunk); ++i) requests[c].add_names(pending[i]);
        fanout.Start(&statuses[c], [&, c](grpc::ClientContext* ctx, Fanout::Done done) {
          start(ctx, &requests[c], &responses[c], std::move(done));
        });
      }
    }
    std::vector<std::string> retry;
    for (size_t c = 0; c < chunks; ++c) {
      if (statuses[c].ok()) {
        for (const auto& item : items(responses[c])) (*out)[item.name()] = item;
        continue;
      }
      const absl::Status status = FromGrpcStatus(statuses[c]);
      const std::vector<std::string> missing = GetMissingNames(status);
      if (!absl::IsNotFound(status) || missing.empty()) return status;
      const absl::flat_hash_set<std::string> gone(missing.begin(), missing.end());
      for (const auto& n : requests[c].names()) {
        if (!gone.contains(n)) retry.push_back(n);
      }
    }
    pending = std::move(retry);
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

std::string StartKey(const ev1::Event& e) {
  return absl::StrFormat("%04d-%02d-%02d", e.start_date().year(), e.start_date().month(), e.start_date().day());
}

}  // namespace kp::gateway
