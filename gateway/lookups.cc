// Batched lookups: see lookups.h.
#include "gateway/lookups.h"

#include <iterator>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_format.h"
#include "common/status.h"

namespace kp::gateway {
namespace {

constexpr size_t kChunk = 1000;
// How many lookups one LookupAll may have in flight, splitting chunks to learn their missing
// names sooner (well under a backend's bulkhead).
constexpr size_t kMaxChunksInFlight = 16;

// One BatchGet per chunk, all in parallel. A chunk that names deleted resources is asked again
// without them: the backend lists the first missing ones, as many as fit in one error, and
// counts them all; while more are missing than it listed, the rest is asked in two halves (each
// listing its own), so that a chunk of a thousand deleted names takes a few rounds, not forty.
// Every round shrinks every chunk that goes on, so the lookup ends. A chunk whose resources are
// too large for one response is asked again in two halves.
template <typename Request, typename Response, typename Item, typename StartFn, typename ItemsFn>
Task<absl::Status> LookupAll(Backend& backend, const Forwarded& from, std::vector<std::string> names, StartFn start,
                             ItemsFn items, absl::flat_hash_map<std::string, Item>* out) {
  std::vector<std::vector<std::string>> chunks;
  absl::flat_hash_set<std::string> seen;
  for (auto& n : names) {
    if (out->contains(n) || !seen.insert(n).second) continue;
    if (chunks.empty() || chunks.back().size() == kChunk) chunks.emplace_back();
    chunks.back().push_back(std::move(n));
  }
  auto halves = [](std::vector<std::string>& chunk, std::vector<std::vector<std::string>>& into) {
    const auto half = chunk.begin() + static_cast<std::ptrdiff_t>(chunk.size() / 2);
    into.emplace_back(std::make_move_iterator(chunk.begin()), std::make_move_iterator(half));
    into.emplace_back(std::make_move_iterator(half), std::make_move_iterator(chunk.end()));
  };
  while (!chunks.empty()) {
    std::vector<Request> requests(chunks.size());
    std::vector<Response> responses(chunks.size());
    std::vector<grpc::Status> statuses(chunks.size());
    {
      Fanout fanout(from);
      for (size_t c = 0; c < chunks.size(); ++c) {
        for (const auto& n : chunks[c]) requests[c].add_names(n);
        fanout.Start(backend, &statuses[c], [&, c](grpc::ClientContext* ctx, Fanout::Done done) {
          start(ctx, &requests[c], &responses[c], std::move(done));
        });
      }
      co_await fanout;
    }
    std::vector<std::vector<std::string>> again;
    for (size_t c = 0; c < chunks.size(); ++c) {
      if (statuses[c].ok()) {
        for (const auto& item : items(responses[c])) (*out)[item.name()] = item;
        continue;
      }
      const absl::Status status = FromGrpcStatus(statuses[c]);
      if (absl::IsResourceExhausted(status) && chunks[c].size() > 1) {
        halves(chunks[c], again);
        continue;
      }
      const std::vector<std::string> missing = GetMissingNames(status);
      if (!absl::IsNotFound(status) || missing.empty()) co_return status;
      const absl::flat_hash_set<std::string> gone(missing.begin(), missing.end());
      std::vector<std::string> rest;
      for (auto& n : chunks[c]) {
        if (!gone.contains(n)) rest.push_back(std::move(n));
      }
      const size_t learned = chunks[c].size() - rest.size();
      if (learned == 0) co_return status;  // no progress: the backend's answer
      if (rest.empty()) continue;
      const bool more_missing = GetMissingCount(status) > learned;
      // Halves only while the next round stays within kMaxChunksInFlight, whatever the chunks
      // after this one add (at most two each).
      if (more_missing && rest.size() > 1 && again.size() + 2 * (chunks.size() - c) <= kMaxChunksInFlight) {
        halves(rest, again);
      } else {
        again.push_back(std::move(rest));
      }
    }
    chunks = std::move(again);
  }
  co_return absl::OkStatus();
}

// A List to its last page: `first` is the page `req` already fetched; `start(ctx, &req, &resp,
// done)` fetches another; `items(resp)` is the page's repeated field.
template <typename Request, typename Response, typename Item, typename StartFn, typename ItemsFn>
Task<absl::Status> ListRest(Backend& backend, const Forwarded& from, Request req, Response first, StartFn start,
                            ItemsFn items, std::vector<Item>* out) {
  Response page = std::move(first);
  while (true) {
    for (auto& item : *items(page)) out->push_back(std::move(item));
    if (page.next_page_token().empty()) co_return absl::OkStatus();
    req.set_page_token(page.next_page_token());
    Response next;
    grpc::Status status;
    {
      Fanout fanout(from);
      fanout.Start(backend, &status, [&](grpc::ClientContext* ctx, Fanout::Done done) { start(ctx, &req, &next, std::move(done)); });
      co_await fanout;
    }
    if (!status.ok()) co_return FromGrpcStatus(status);
    page = std::move(next);
  }
}

}  // namespace

Task<absl::Status> LookupOrganisations(const Backends& b, const Forwarded& from, std::vector<std::string> names,
                                       absl::flat_hash_map<std::string, ov1::Organisation>* out) {
  return LookupAll<ov1::BatchGetOrganisationsRequest, ov1::BatchGetOrganisationsResponse>(
      *b.organisations, from, std::move(names),
      [&b](grpc::ClientContext* ctx, const auto* req, auto* resp, Fanout::Done done) {
        b.organisations_api->async()->BatchGetOrganisations(ctx, req, resp, std::move(done));
      },
      [](const auto& resp) -> const auto& { return resp.organisations(); }, out);
}

Task<absl::Status> LookupEvents(const Backends& b, const Forwarded& from, std::vector<std::string> names,
                                absl::flat_hash_map<std::string, ev1::Event>* out) {
  return LookupAll<ev1::BatchGetEventsRequest, ev1::BatchGetEventsResponse>(
      *b.events, from, std::move(names),
      [&b](grpc::ClientContext* ctx, const auto* req, auto* resp, Fanout::Done done) {
        b.events_api->async()->BatchGetEvents(ctx, req, resp, std::move(done));
      },
      [](const auto& resp) -> const auto& { return resp.events(); }, out);
}

Task<absl::Status> LookupParticipants(const Backends& b, const Forwarded& from, std::vector<std::string> names,
                                      absl::flat_hash_map<std::string, pv1::Participant>* out) {
  return LookupAll<pv1::BatchGetParticipantsRequest, pv1::BatchGetParticipantsResponse>(
      *b.participants, from, std::move(names),
      [&b](grpc::ClientContext* ctx, const auto* req, auto* resp, Fanout::Done done) {
        b.participants_api->async()->BatchGetParticipants(ctx, req, resp, std::move(done));
      },
      [](const auto& resp) -> const auto& { return resp.participants(); }, out);
}

Task<absl::Status> ListAllRegistrations(const Backends& b, const Forwarded& from, pv1::ListRegistrationsRequest req,
                                        pv1::ListRegistrationsResponse first, std::vector<pv1::Registration>* out) {
  return ListRest(
      *b.participants, from, std::move(req), std::move(first),
      [&b](grpc::ClientContext* ctx, const auto* r, auto* resp, Fanout::Done done) {
        b.participants_api->async()->ListRegistrations(ctx, r, resp, std::move(done));
      },
      [](auto& resp) { return resp.mutable_registrations(); }, out);
}

Task<absl::Status> ListAllEvents(const Backends& b, const Forwarded& from, ev1::ListEventsRequest req,
                                 ev1::ListEventsResponse first, std::vector<ev1::Event>* out) {
  return ListRest(
      *b.events, from, std::move(req), std::move(first),
      [&b](grpc::ClientContext* ctx, const auto* r, auto* resp, Fanout::Done done) {
        b.events_api->async()->ListEvents(ctx, r, resp, std::move(done));
      },
      [](auto& resp) { return resp.mutable_events(); }, out);
}

void ForListing(ev1::Event* event) {
  event->clear_description();
  event->clear_summary();
}

void ForListing(ov1::Organisation* organisation) {
  organisation->clear_description();
  organisation->clear_external_ids();
}

absl::Status FitsOneResponse(const google::protobuf::Message& response, absl::string_view what,
                             absl::string_view instead) {
  const size_t bytes = response.ByteSizeLong();
  if (bytes <= kMaxResponseBytes) return absl::OkStatus();
  return absl::ResourceExhaustedError(absl::StrFormat(
      "%s would hold %.1f MiB, more than one response carries (%.1f MiB): %s", what, bytes / 1048576.0,
      kMaxResponseBytes / 1048576.0, instead));
}

std::string StartKey(const ev1::Event& e) {
  return absl::StrFormat("%04d-%02d-%02d", e.start_date().year(), e.start_date().month(), e.start_date().day());
}

}  // namespace kp::gateway
