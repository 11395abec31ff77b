// The portal aggregations (Search is in portal_search.cc). Each runs in phases: the calls of
// a phase are independent and run in parallel; a phase starts when what it needs is known.
#include <algorithm>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/resource/validation.h"
#include "common/status.h"
#include "gateway/fanout.h"
#include "gateway/lookups.h"
#include "gateway/portal_service.h"

namespace kp::gateway {
namespace {

absl::Status RequireName(const std::string& name, const char* collection) {
  FieldViolations v;
  if (name.empty()) v.Add("name", "is required");
  else resource::CheckResourceName(v, "name", collection, name);
  return v.ToStatus();
}

std::string Quoted(const std::string& s) { return absl::StrCat("\"", s, "\""); }

template <typename T>
void AddUnique(std::vector<std::string>& out, absl::flat_hash_set<std::string>& seen, const T& names) {
  for (const auto& n : names) {
    if (seen.insert(n).second) out.push_back(n);
  }
}

}  // namespace

Task<absl::Status> BuildEventOverview(const Backends& b, const Forwarded& from, const gv1::GetEventOverviewRequest& req,
                                gv1::GetEventOverviewResponse* resp) {
  CO_RETURN_IF_ERROR(RequireName(req.name(), "events"));
  // Phase 1: the event, its live registrations and their figures.
  ev1::GetEventRequest get_event;
  get_event.set_name(req.name());
  ev1::GetEventResponse event;
  const std::string filter = absl::StrCat("event = ", Quoted(req.name()), " AND status != CANCELLED");
  pv1::ListRegistrationsRequest list_regs;
  list_regs.set_filter(filter);
  list_regs.set_page_size(1000);
  pv1::ListRegistrationsResponse regs_page;
  pv1::SummarizeRegistrationsRequest summarize;
  summarize.add_events(req.name());
  pv1::SummarizeRegistrationsResponse summary;
  grpc::Status s_event, s_regs, s_summary;
  {
    Fanout fanout(from);
    fanout.Start(*b.events, &s_event, [&](auto* ctx, auto done) { b.events_api->async()->GetEvent(ctx, &get_event, &event, done); });
    fanout.Start(*b.participants, &s_regs, [&](auto* ctx, auto done) { b.participants_api->async()->ListRegistrations(ctx, &list_regs, &regs_page, done);
    });
    fanout.Start(*b.participants, &s_summary, [&](auto* ctx, auto done) { b.participants_api->async()->SummarizeRegistrations(ctx, &summarize, &summary, done);
    });
    co_await fanout;
  }
  for (const auto* s : {&s_event, &s_regs, &s_summary}) CO_RETURN_IF_ERROR(FromGrpcStatus(*s));
  std::vector<pv1::Registration> registrations;
  CO_RETURN_IF_ERROR(co_await ListAllRegistrations(b, from, list_regs, std::move(regs_page), &registrations));

  // Phase 2: the attendees, then every organisation named (event's and attendees') at once.
  std::vector<std::string> people;
  for (const auto& r : registrations) people.push_back(r.participant());
  absl::flat_hash_map<std::string, pv1::Participant> participants;
  CO_RETURN_IF_ERROR(co_await LookupParticipants(b, from, people, &participants));
  const ev1::Event& e = event.event();
  std::vector<std::string> org_names;
  absl::flat_hash_set<std::string> seen;
  AddUnique(org_names, seen, e.hosts());
  AddUnique(org_names, seen, e.co_hosts());
  AddUnique(org_names, seen, e.partners());
  for (const auto& [name, p] : participants) AddUnique(org_names, seen, std::vector<std::string>{p.organisation()});
  absl::flat_hash_map<std::string, ov1::Organisation> orgs;
  CO_RETURN_IF_ERROR(co_await LookupOrganisations(b, from, org_names, &orgs));

  *resp->mutable_event() = e;
  auto add_orgs = [&](const auto& names, auto* field) {
    for (const auto& n : names) {
      if (auto it = orgs.find(n); it != orgs.end()) *field->Add() = it->second;
    }
  };
  add_orgs(e.hosts(), resp->mutable_hosts());
  add_orgs(e.co_hosts(), resp->mutable_co_hosts());
  add_orgs(e.partners(), resp->mutable_partners());
  for (const auto& r : registrations) {
    auto it = participants.find(r.participant());
    if (it == participants.end()) continue;  // deleted since it registered
    auto* a = resp->add_attendees();
    *a->mutable_participant() = it->second;
    if (auto org = orgs.find(it->second.organisation()); org != orgs.end()) {
      a->set_organisation_display_name(org->second.display_name());
    }
    a->set_role(r.role());
    a->set_status(r.status());
    a->set_registration(r.name());
  }
  if (summary.summaries_size() > 0) *resp->mutable_stats() = summary.summaries(0);
  if (resp->ByteSizeLong() > kMaxResponseBytes) {
    // Up to 300 organisations of up to 70 KB each: when in full they would not fit, they come
    // as summaries (GetOrganisation has the rest) rather than not at all.
    for (auto* list : {resp->mutable_hosts(), resp->mutable_co_hosts(), resp->mutable_partners()}) {
      for (auto& o : *list) ForListing(&o);
    }
  }
  co_return FitsOneResponse(*resp, absl::StrCat("the overview of ", req.name(), " (", resp->attendees_size(), " attendees)"),
                            "list its registrations with ListRegistrations instead");
}

Task<absl::Status> BuildEventSummaries(const Backends& b, const Forwarded& from, const gv1::ListEventSummariesRequest& req,
                                 gv1::ListEventSummariesResponse* resp) {
  ev1::ListEventsRequest list;
  list.set_page_size(req.page_size());
  list.set_page_token(req.page_token());
  list.set_filter(req.filter());
  list.set_order_by(req.order_by());
  // Host names of every page tried (a shorter page needs no new ones).
  absl::flat_hash_map<std::string, ov1::Organisation> orgs;
  // A page stops before the summary that would take it past kMaxPageBytes (display names of up
  // to 200 hosts and co-hosts each make a summary far larger than its event). The page ends
  // where the backend's does, so a shorter one is asked for again with that many events: the
  // backend's next_page_token then continues right after them. Each try is shorter: it ends.
  while (true) {
    ev1::ListEventsResponse events;
    grpc::Status s_list;
    {
      Fanout fanout(from);
      fanout.Start(*b.events, &s_list, [&](auto* ctx, auto done) { b.events_api->async()->ListEvents(ctx, &list, &events, done); });
      co_await fanout;
    }
    CO_RETURN_IF_ERROR(FromGrpcStatus(s_list));

    // Phase 2, in parallel: registration counts and host names.
    pv1::SummarizeRegistrationsRequest summarize;
    std::vector<std::string> org_names;
    absl::flat_hash_set<std::string> seen;
    for (const auto& e : events.events()) {
      summarize.add_events(e.name());
      AddUnique(org_names, seen, e.hosts());
      AddUnique(org_names, seen, e.co_hosts());
    }
    pv1::SummarizeRegistrationsResponse summary;
    grpc::Status s_summary;
    absl::Status s_orgs;
    if (events.events_size() > 0) {
      Fanout fanout(from);
      fanout.Start(*b.participants, &s_summary, [&](auto* ctx, auto done) { b.participants_api->async()->SummarizeRegistrations(ctx, &summarize, &summary, done);
      });
      s_orgs = co_await LookupOrganisations(b, from, org_names, &orgs);
      co_await fanout;
    }
    CO_RETURN_IF_ERROR(FromGrpcStatus(s_summary));
    CO_RETURN_IF_ERROR(s_orgs);

    absl::flat_hash_map<std::string, int> counts;
    for (const auto& s : summary.summaries()) counts[s.event()] = s.total();
    gv1::ListEventSummariesResponse page;
    size_t bytes = 0;
    for (const auto& e : events.events()) {
      gv1::EventSummary out;
      *out.mutable_event() = e;
      ForListing(out.mutable_event());
      for (const auto& h : e.hosts()) {
        if (auto it = orgs.find(h); it != orgs.end()) out.add_host_display_names(it->second.display_name());
      }
      for (const auto& h : e.co_hosts()) {
        if (auto it = orgs.find(h); it != orgs.end()) out.add_co_host_display_names(it->second.display_name());
      }
      out.set_live_registration_count(counts[e.name()]);
      bytes += out.ByteSizeLong() + 8;  // with its tag and length
      if (page.event_summaries_size() > 0 && bytes > kMaxPageBytes) break;
      *page.add_event_summaries() = std::move(out);
    }
    if (page.event_summaries_size() < events.events_size()) {
      list.set_page_size(page.event_summaries_size());
      continue;
    }
    page.set_next_page_token(events.next_page_token());
    page.set_total_size(events.total_size());
    *resp = std::move(page);
    co_return absl::OkStatus();
  }
}

Task<absl::Status> BuildOrganisationProfile(const Backends& b, const Forwarded& from,
                                      const gv1::GetOrganisationProfileRequest& req,
                                      gv1::GetOrganisationProfileResponse* resp) {
  CO_RETURN_IF_ERROR(RequireName(req.name(), "organisations"));
  const std::string n = Quoted(req.name());
  ov1::GetOrganisationRequest get_org;
  get_org.set_name(req.name());
  ov1::GetOrganisationResponse org;
  ev1::ListEventsRequest list_events;
  list_events.set_filter(absl::StrCat("hosts:", n, " OR co_hosts:", n, " OR partners:", n));
  list_events.set_order_by("start_date");
  list_events.set_page_size(1000);
  ev1::ListEventsResponse events;
  pv1::ListParticipantsRequest count_people;
  count_people.set_filter(absl::StrCat("organisation = ", n));
  count_people.set_page_size(1);
  pv1::ListParticipantsResponse people;
  pv1::SummarizeParticipationRequest participation_req;
  participation_req.add_organisations(req.name());
  pv1::SummarizeParticipationResponse participation;
  grpc::Status s_org, s_events, s_people, s_participation;
  {
    Fanout fanout(from);
    fanout.Start(*b.organisations, &s_org, [&](auto* ctx, auto done) { b.organisations_api->async()->GetOrganisation(ctx, &get_org, &org, done); });
    fanout.Start(*b.events, &s_events, [&](auto* ctx, auto done) { b.events_api->async()->ListEvents(ctx, &list_events, &events, done); });
    fanout.Start(*b.participants, &s_people, [&](auto* ctx, auto done) { b.participants_api->async()->ListParticipants(ctx, &count_people, &people, done);
    });
    fanout.Start(*b.participants, &s_participation, [&](auto* ctx, auto done) { b.participants_api->async()->SummarizeParticipation(ctx, &participation_req, &participation, done);
    });
    co_await fanout;
  }
  for (const auto* s : {&s_org, &s_events, &s_people, &s_participation}) CO_RETURN_IF_ERROR(FromGrpcStatus(*s));

  *resp->mutable_organisation() = org.organisation();
  std::vector<ev1::Event> all_events;
  CO_RETURN_IF_ERROR(co_await ListAllEvents(b, from, list_events, std::move(events), &all_events));
  for (const auto& e : all_events) {
    auto has = [&](const auto& list) { return std::find(list.begin(), list.end(), req.name()) != list.end(); };
    if (has(e.hosts())) ForListing(&(*resp->add_hosted_events() = e));
    if (has(e.co_hosts())) ForListing(&(*resp->add_co_hosted_events() = e));
    if (has(e.partners())) ForListing(&(*resp->add_partnered_events() = e));
  }
  resp->set_participant_count(people.total_size());

  // Phase 2: the events its participants registered for.
  std::vector<std::string> event_names;
  for (const auto& [event, count] : participation.registrations_by_event()) event_names.push_back(event);
  absl::flat_hash_map<std::string, ev1::Event> attended;
  CO_RETURN_IF_ERROR(co_await LookupEvents(b, from, event_names, &attended));
  std::vector<const ev1::Event*> sorted;
  for (const auto& [name, e] : attended) sorted.push_back(&e);
  std::sort(sorted.begin(), sorted.end(), [](const ev1::Event* x, const ev1::Event* y) {
    return std::make_pair(StartKey(*x), x->name()) < std::make_pair(StartKey(*y), y->name());
  });
  for (const auto* e : sorted) ForListing(&(*resp->add_participant_events() = *e));
  co_return FitsOneResponse(
      *resp,
      absl::StrCat("the profile of ", req.name(), " (",
                   resp->hosted_events_size() + resp->co_hosted_events_size() + resp->partnered_events_size() +
                       resp->participant_events_size(),
                   " events)"),
      absl::StrCat("page its events with ListEventSummaries (filter hosts:", n, " OR co_hosts:", n, " OR partners:", n,
                   ")"));
}

Task<absl::Status> BuildParticipantProfile(const Backends& b, const Forwarded& from,
                                     const gv1::GetParticipantProfileRequest& req,
                                     gv1::GetParticipantProfileResponse* resp) {
  CO_RETURN_IF_ERROR(RequireName(req.name(), "participants"));
  pv1::GetParticipantRequest get_person;
  get_person.set_name(req.name());
  pv1::GetParticipantResponse person;
  const std::string filter = absl::StrCat("participant = ", Quoted(req.name()));
  pv1::ListRegistrationsRequest list_regs;
  list_regs.set_filter(filter);
  list_regs.set_page_size(1000);
  pv1::ListRegistrationsResponse regs_page;
  grpc::Status s_person, s_regs;
  {
    Fanout fanout(from);
    fanout.Start(*b.participants, &s_person, [&](auto* ctx, auto done) { b.participants_api->async()->GetParticipant(ctx, &get_person, &person, done);
    });
    fanout.Start(*b.participants, &s_regs, [&](auto* ctx, auto done) { b.participants_api->async()->ListRegistrations(ctx, &list_regs, &regs_page, done);
    });
    co_await fanout;
  }
  CO_RETURN_IF_ERROR(FromGrpcStatus(s_person));
  CO_RETURN_IF_ERROR(FromGrpcStatus(s_regs));
  std::vector<pv1::Registration> registrations;
  CO_RETURN_IF_ERROR(co_await ListAllRegistrations(b, from, list_regs, std::move(regs_page), &registrations));

  // Phase 2, in parallel: the organisation and the events.
  std::vector<std::string> event_names;
  for (const auto& r : registrations) event_names.push_back(r.event());
  ov1::GetOrganisationRequest get_org;
  get_org.set_name(person.participant().organisation());
  ov1::GetOrganisationResponse org;
  grpc::Status s_org;
  absl::flat_hash_map<std::string, ev1::Event> events;
  absl::Status s_events;
  {
    Fanout fanout(from);
    fanout.Start(*b.organisations, &s_org, [&](auto* ctx, auto done) { b.organisations_api->async()->GetOrganisation(ctx, &get_org, &org, done); });
    s_events = co_await LookupEvents(b, from, event_names, &events);  // while the organisation is fetched
    co_await fanout;
  }
  CO_RETURN_IF_ERROR(s_events);
  // An organisation deleted since leaves the field empty rather than failing the profile.
  if (!s_org.ok() && s_org.error_code() != grpc::StatusCode::NOT_FOUND) co_return FromGrpcStatus(s_org);

  *resp->mutable_participant() = person.participant();
  if (s_org.ok()) *resp->mutable_organisation() = org.organisation();
  std::vector<gv1::ParticipantRegistration> out;
  for (const auto& r : registrations) {
    gv1::ParticipantRegistration pr;
    *pr.mutable_registration() = r;
    if (auto it = events.find(r.event()); it != events.end()) {
      pr.set_event_title(it->second.title());
      *pr.mutable_event_start_date() = it->second.start_date();
      *pr.mutable_event_end_date() = it->second.end_date();
      pr.set_event_city(it->second.location().city());
    }
    out.push_back(std::move(pr));
  }
  std::stable_sort(out.begin(), out.end(), [](const auto& x, const auto& y) {
    auto key = [](const gv1::ParticipantRegistration& p) {
      return std::make_tuple(p.event_start_date().year(), p.event_start_date().month(), p.event_start_date().day());
    };
    return key(x) < key(y);
  });
  for (auto& pr : out) *resp->add_registrations() = std::move(pr);
  co_return FitsOneResponse(*resp,
                            absl::StrCat("the profile of ", req.name(), " (", resp->registrations_size(), " registrations)"),
                            absl::StrCat("page its registrations with ListRegistrations (filter ", filter, ")"));
}

Task<absl::Status> BuildStatistics(const Backends& b, const Forwarded& from, const gv1::GetStatisticsRequest& req,
                             gv1::GetStatisticsResponse* resp) {
  ev1::SummarizeEventsRequest summarize_events;
  summarize_events.set_start_year(req.start_year());
  summarize_events.set_end_year(req.end_year());
  summarize_events.set_include_event_names(true);
  ev1::SummarizeEventsResponse years;
  grpc::Status s_years;
  {
    Fanout fanout(from);
    fanout.Start(*b.events, &s_years, [&](auto* ctx, auto done) { b.events_api->async()->SummarizeEvents(ctx, &summarize_events, &years, done);
    });
    co_await fanout;
  }
  CO_RETURN_IF_ERROR(FromGrpcStatus(s_years));

  // Phase 2: participation across every event in range.
  pv1::SummarizeParticipationRequest participation_req;
  for (const auto& y : years.years()) {
    for (const auto& e : y.events()) participation_req.add_events(e);
  }
  participation_req.set_top_organisations(10);
  pv1::SummarizeParticipationResponse participation;
  if (participation_req.events_size() > 0) {
    grpc::Status s;
    {
      Fanout fanout(from);
      fanout.Start(*b.participants, &s, [&](auto* ctx, auto done) { b.participants_api->async()->SummarizeParticipation(ctx, &participation_req, &participation, done);
      });
      co_await fanout;
    }
    CO_RETURN_IF_ERROR(FromGrpcStatus(s));
  }

  // Phase 3: the top organisations' names.
  std::vector<std::string> top;
  for (const auto& t : participation.top_organisations()) top.push_back(t.organisation());
  absl::flat_hash_map<std::string, ov1::Organisation> orgs;
  CO_RETURN_IF_ERROR(co_await LookupOrganisations(b, from, top, &orgs));

  int event_count = 0;
  for (const auto& y : years.years()) {
    auto* out = resp->add_years();
    out->set_year(y.year());
    out->set_event_count(y.event_count());
    *out->mutable_events_by_kind() = y.by_kind();
    *out->mutable_events_by_level() = y.by_level();
    int live = 0;
    for (const auto& e : y.events()) {
      if (auto it = participation.registrations_by_event().find(e); it != participation.registrations_by_event().end()) {
        live += it->second;
      }
    }
    out->set_live_registrations(live);
    event_count += y.event_count();
  }
  resp->set_event_count(event_count);
  resp->set_live_registrations(participation.live_registrations());
  resp->set_country_count(participation.country_count());
  resp->set_organisation_count(participation.organisation_count());
  for (const auto& t : participation.top_organisations()) {
    auto* out = resp->add_top_organisations();
    out->set_organisation(t.organisation());
    out->set_registration_count(t.registration_count());
    if (auto it = orgs.find(t.organisation()); it != orgs.end()) out->set_display_name(it->second.display_name());
  }
  co_return absl::OkStatus();
}

}  // namespace kp::gateway
