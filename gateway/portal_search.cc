// Search: free text over events, organisations and participants. Each backend ranks its own
// hits (FTS5 bm25); the gateway interleaves them by rank, round robin. The page token keeps,
// per source, the backend's page token and how far into that page the merge got; it is signed
// and bound to the query like every page token.
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/ascii.h"
#include "common/resource/page_token.h"
#include "common/status.h"
#include "gateway/fanout.h"
#include "gateway/lookups.h"
#include "gateway/portal_service.h"

namespace kp::gateway {
namespace {

constexpr int kSources = 3;  // events, organisations, participants
constexpr int kDefaultPageSize = 20;
constexpr int kMaxPageSize = 100;

struct Cursor {
  std::string token;  // the backend's page token for the page being consumed
  int64_t offset = 0;  // hits of that page already returned
  bool done = false;
};

std::string Fingerprint(const std::string& query) {
  return resource::PageTokenCodec::QueryFingerprint({"portal-search", query});
}

absl::Status DecodeCursors(const std::string& token, const std::string& query, Cursor (&cursors)[kSources]) {
  if (token.empty()) return absl::OkStatus();
  ASSIGN_OR_RETURN(auto values, resource::DefaultPageTokenCodec().Decode(token, Fingerprint(query)));
  if (values.size() != 3 * kSources) return InvalidField("page_token", "is not a token returned by this search");
  for (int i = 0; i < kSources; ++i) {
    const auto* t = std::get_if<std::string>(&values[3 * i]);
    const auto* o = std::get_if<int64_t>(&values[3 * i + 1]);
    const auto* d = std::get_if<int64_t>(&values[3 * i + 2]);
    // An offset lies within one backend page (at most 1000 rows).
    if (!t || !o || !d || *o < 0 || *o > 1000) {
      return InvalidField("page_token", "is not a token returned by this search");
    }
    cursors[i] = {*t, *o, *d != 0};
  }
  return absl::OkStatus();
}

std::string EncodeCursors(const std::string& query, const Cursor (&cursors)[kSources]) {
  std::vector<storage::SqlValue> values;
  for (const auto& c : cursors) {
    values.emplace_back(c.token);
    values.emplace_back(c.offset);
    values.emplace_back(static_cast<int64_t>(c.done));
  }
  return resource::DefaultPageTokenCodec().Encode(Fingerprint(query), values);
}

}  // namespace

Task<absl::Status> BuildSearch(const Backends& b, const Forwarded& from, const gv1::SearchRequest& req,
                               gv1::SearchResponse* resp) {
  FieldViolations v;
  if (absl::StripAsciiWhitespace(req.query()).empty()) v.Add("query", "is required");
  if (req.query().size() > 256) v.Add("query", "must be at most 256 characters");
  if (req.page_size() < 0) v.Add("page_size", "must not be negative");
  CO_RETURN_IF_ERROR(v.ToStatus());
  const int page_size = req.page_size() == 0 ? kDefaultPageSize : std::min(req.page_size(), kMaxPageSize);
  Cursor cursors[kSources];
  CO_RETURN_IF_ERROR(DecodeCursors(req.page_token(), req.query(), cursors));

  // Each source's page from its cursor, all three in parallel; enough to fill this page even
  // if the other sources have nothing.
  // Capped at the backends' maximum page: a page consumed to its end always continues from
  // its next_page_token, so a smaller fetch costs a round trip, never a hit.
  const int fetch = static_cast<int>(std::min<int64_t>(
      1000, page_size + std::max({cursors[0].offset, cursors[1].offset, cursors[2].offset})));
  ev1::ListEventsRequest events_req;
  ov1::ListOrganisationsRequest orgs_req;
  pv1::ListParticipantsRequest people_req;
  events_req.set_search(req.query());
  orgs_req.set_search(req.query());
  people_req.set_search(req.query());
  events_req.set_page_size(fetch);
  orgs_req.set_page_size(fetch);
  people_req.set_page_size(fetch);
  // Participants only for callers allowed to see them: registrars their own organisation's,
  // editors and admins all; readers none.
  if (from.principal.role == auth::Role::kReader) cursors[2].done = true;
  if (from.principal.role == auth::Role::kRegistrar) {
    people_req.set_filter(absl::StrCat("organisation = \"", from.principal.organisation, "\""));
  }
  events_req.set_page_token(cursors[0].token);
  orgs_req.set_page_token(cursors[1].token);
  people_req.set_page_token(cursors[2].token);
  ev1::ListEventsResponse events;
  ov1::ListOrganisationsResponse orgs;
  pv1::ListParticipantsResponse people;
  grpc::Status statuses[kSources];
  {
    Fanout fanout(from);
    if (!cursors[0].done) {
      fanout.Start(*b.events, &statuses[0],
                   [&](auto* ctx, auto done) { b.events_api->async()->ListEvents(ctx, &events_req, &events, done); });
    }
    if (!cursors[1].done) {
      fanout.Start(*b.organisations, &statuses[1], [&](auto* ctx, auto done) {
        b.organisations_api->async()->ListOrganisations(ctx, &orgs_req, &orgs, done);
      });
    }
    if (!cursors[2].done) {
      fanout.Start(*b.participants, &statuses[2], [&](auto* ctx, auto done) {
        b.participants_api->async()->ListParticipants(ctx, &people_req, &people, done);
      });
    }
    co_await fanout;
  }
  for (const auto& s : statuses) CO_RETURN_IF_ERROR(FromGrpcStatus(s));

  const int sizes[kSources] = {events.events_size(), orgs.organisations_size(), people.participants_size()};
  const std::string* next_tokens[kSources] = {&events.next_page_token(), &orgs.next_page_token(),
                                              &people.next_page_token()};
  int64_t position[kSources];
  for (int i = 0; i < kSources; ++i) position[i] = cursors[i].done ? sizes[i] : cursors[i].offset;
  auto add_hit = [&](int source, int index) {
    auto* hit = resp->add_hits();
    if (source == 0) {
      const auto& e = events.events(index);
      hit->set_name(e.name());
      hit->set_title(e.title());
      *hit->mutable_event() = e;
      ForListing(hit->mutable_event());
    } else if (source == 1) {
      const auto& o = orgs.organisations(index);
      hit->set_name(o.name());
      hit->set_title(o.acronym().empty() ? o.display_name() : absl::StrCat(o.display_name(), " (", o.acronym(), ")"));
      *hit->mutable_organisation() = o;
      ForListing(hit->mutable_organisation());
    } else {
      const auto& p = people.participants(index);
      hit->set_name(p.name());
      hit->set_title(absl::StrCat(p.given_name(), " ", p.family_name()));
      *hit->mutable_participant() = p;
    }
  };
  // Round robin by rank: the best of each source, then the second of each, ... A page stops
  // early (the cursors say where) rather than pass kMaxPageBytes.
  size_t bytes = 0;
  auto full = [&] { return resp->hits_size() >= page_size || bytes > kMaxPageBytes; };
  while (!full()) {
    bool any = false;
    for (int i = 0; i < kSources && !full(); ++i) {
      if (position[i] < sizes[i]) {
        add_hit(i, static_cast<int>(position[i]++));
        bytes += resp->hits(resp->hits_size() - 1).ByteSizeLong();
        any = true;
      }
    }
    if (!any) break;
  }
  bool more = false;
  for (int i = 0; i < kSources; ++i) {
    if (cursors[i].done) continue;
    if (position[i] < sizes[i]) {
      cursors[i].offset = position[i];  // same backend page, further in
    } else if (next_tokens[i]->empty()) {
      cursors[i] = {"", 0, true};
    } else {
      cursors[i] = {*next_tokens[i], 0, false};
    }
    more = more || !cursors[i].done;
  }
  if (more) resp->set_next_page_token(EncodeCursors(req.query(), cursors));
  co_return absl::OkStatus();
}

}  // namespace kp::gateway
