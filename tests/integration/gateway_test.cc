// kp-gateway against real backends and a real redis-server: PortalService aggregates, the
// proxy (same results, errors, deadlines), and the cache (hits, read-after-write, single
// flight, Redis failures).
#include <signal.h>

#include <array>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <thread>

#include <grpcpp/create_channel.h>
#include <grpcpp/generic/generic_stub.h>
#include <gtest/gtest.h>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "common/cache/redis_client.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "khartoum/gateway/v1/portal.grpc.pb.h"
#include "tests/integration/test_util.h"

namespace kp::testing {
namespace {

namespace gv1 = khartoum::gateway::v1;

struct Gateway {
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<gv1::PortalService::Stub> portal;
  std::unique_ptr<ov1::OrganisationService::Stub> org;
  std::unique_ptr<ev1::EventService::Stub> ev;
  std::unique_ptr<pv1::ParticipantService::Stub> part;
  explicit Gateway(const std::string& address)
      : channel(grpc::CreateChannel(address, grpc::InsecureChannelCredentials())),
        portal(gv1::PortalService::NewStub(channel)),
        org(ov1::OrganisationService::NewStub(channel)),
        ev(ev1::EventService::NewStub(channel)),
        part(pv1::ParticipantService::NewStub(channel)) {}
};

Gateway& G() {
  static Gateway* g = new Gateway(S().gateway().address());
  return *g;
}



// A world for the portal: `orgs` organisations over `countries` countries, an event hosted by
// the first, co-hosted by the second, partnered by the third, and `attendees` registrations
// spread over the organisations round robin.
struct World {
  std::vector<ov1::Organisation> orgs;
  ev1::Event event;
  std::vector<pv1::Participant> people;
  std::vector<pv1::Registration> registrations;
};

World MakeWorld(int n_orgs, int n_countries, int attendees, int year = 2024) {
  EXPECT_GE(n_orgs, 3) << "host, co-host and partner are the first three organisations";
  static const char* kCountries[] = {"KE", "ET", "ER", "SD", "SS", "SO", "DJ", "UG", "EG", "DE", "FR", "IT",
                                     "NL", "BE", "SE", "NO"};
  World w;
  for (int i = 0; i < n_orgs; ++i) w.orgs.push_back(CreateOrganisation(UniqueId("worg"), kCountries[i % n_countries]));
  ev1::CreateEventRequest req;
  *req.mutable_event() = ValidEvent(w.orgs[0].name());
  req.mutable_event()->add_co_hosts(w.orgs[1].name());
  req.mutable_event()->add_partners(w.orgs[2].name());
  req.mutable_event()->mutable_start_date()->set_year(year);
  req.mutable_event()->mutable_end_date()->set_year(year);
  req.mutable_event()->set_title(absl::StrCat("World event ", UniqueId("w")));
  ev1::CreateEventResponse resp;
  EXPECT_TRUE(S().ev().CreateEvent(Ctx().get(), req, &resp).ok());
  w.event = resp.event();
  for (int j = 0; j < attendees; ++j) {
    const auto& org = w.orgs[j % n_orgs];
    w.people.push_back(CreateParticipant(UniqueId("wp"), org.name(), org.country_code(),
                                         j % 2 ? pv1::GENDER_MALE : pv1::GENDER_FEMALE));
    pv1::CreateRegistrationRequest reg;
    reg.mutable_registration()->set_event(w.event.name());
    reg.mutable_registration()->set_participant(w.people.back().name());
    reg.mutable_registration()->set_role(j < 10 ? pv1::REGISTRATION_ROLE_SPEAKER : pv1::REGISTRATION_ROLE_DELEGATE);
    pv1::CreateRegistrationResponse reg_resp;
    EXPECT_TRUE(S().part().CreateRegistration(Ctx().get(), reg, &reg_resp).ok());
    w.registrations.push_back(reg_resp.registration());
  }
  return w;
}

// ---------------------------------------------------------------------------------- portal

TEST(Portal, EventOverview_CountsAttendeesOrganisationsAndCountries) {
  const World w = MakeWorld(30, 12, 200);
  gv1::GetEventOverviewRequest req;
  req.set_name(w.event.name());
  gv1::GetEventOverviewResponse resp;
  grpc::Status s = G().portal->GetEventOverview(Ctx().get(), req, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(resp.event().name(), w.event.name());
  ASSERT_EQ(resp.hosts_size(), 1);
  EXPECT_EQ(resp.hosts(0).name(), w.orgs[0].name());
  ASSERT_EQ(resp.co_hosts_size(), 1);
  EXPECT_EQ(resp.co_hosts(0).display_name(), w.orgs[1].display_name());
  ASSERT_EQ(resp.partners_size(), 1);
  ASSERT_EQ(resp.attendees_size(), 200);
  for (int i = 0; i < 200; ++i) {
    EXPECT_EQ(resp.attendees(i).registration(), w.registrations[i].name());
    EXPECT_EQ(resp.attendees(i).participant().name(), w.people[i].name());
    EXPECT_EQ(resp.attendees(i).organisation_display_name(), w.orgs[i % 30].display_name());
  }
  EXPECT_EQ(resp.stats().total(), 200);
  EXPECT_EQ(resp.stats().organisation_count(), 30);
  EXPECT_EQ(resp.stats().country_count(), 12);
  EXPECT_EQ(resp.stats().by_role().at("REGISTRATION_ROLE_SPEAKER"), 10);
  EXPECT_EQ(resp.stats().by_gender().at("GENDER_FEMALE"), 100);

  // Cancelling one drops it from attendees and figures (and the cache follows the write).
  pv1::UpdateRegistrationRequest cancel;
  cancel.mutable_registration()->set_name(w.registrations[0].name());
  cancel.mutable_registration()->set_status(pv1::REGISTRATION_STATUS_CANCELLED);
  cancel.mutable_update_mask()->add_paths("status");
  pv1::UpdateRegistrationResponse cancelled;
  ASSERT_TRUE(S().part().UpdateRegistration(Ctx().get(), cancel, &cancelled).ok());
  ASSERT_TRUE(G().portal->GetEventOverview(Ctx().get(), req, &resp).ok());
  EXPECT_EQ(resp.attendees_size(), 199);
  EXPECT_EQ(resp.stats().total(), 199);
}

TEST(Portal, EventOverview_MissingEventIsNotFoundAndBadNameInvalid) {
  gv1::GetEventOverviewRequest req;
  req.set_name("events/never-held");
  gv1::GetEventOverviewResponse resp;
  EXPECT_EQ(G().portal->GetEventOverview(Ctx().get(), req, &resp).error_code(), grpc::StatusCode::NOT_FOUND);
  req.set_name("organisations/kenya");
  grpc::Status s = G().portal->GetEventOverview(Ctx().get(), req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ViolationFields(s), std::vector<std::string>{"name"});
}

TEST(Portal, ListEventSummaries_HostNamesAndLiveCounts) {
  const World w = MakeWorld(3, 3, 7);
  gv1::ListEventSummariesRequest req;
  req.set_filter(absl::StrCat("hosts:\"", w.orgs[0].name(), "\""));
  gv1::ListEventSummariesResponse resp;
  ASSERT_TRUE(G().portal->ListEventSummaries(Ctx().get(), req, &resp).ok());
  ASSERT_EQ(resp.event_summaries_size(), 1);
  EXPECT_EQ(resp.total_size(), 1);
  const auto& s = resp.event_summaries(0);
  EXPECT_EQ(s.event().name(), w.event.name());
  ASSERT_EQ(s.host_display_names_size(), 1);
  EXPECT_EQ(s.host_display_names(0), w.orgs[0].display_name());
  EXPECT_EQ(s.co_host_display_names(0), w.orgs[1].display_name());
  EXPECT_EQ(s.live_registration_count(), 7);
  req.set_filter("colour = \"red\"");
  EXPECT_EQ(G().portal->ListEventSummaries(Ctx().get(), req, &resp).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST(Portal, OrganisationAndParticipantProfiles) {
  const World w = MakeWorld(3, 3, 9);
  gv1::GetOrganisationProfileRequest req;
  req.set_name(w.orgs[0].name());
  gv1::GetOrganisationProfileResponse resp;
  ASSERT_TRUE(G().portal->GetOrganisationProfile(Ctx().get(), req, &resp).ok());
  EXPECT_EQ(resp.organisation().name(), w.orgs[0].name());
  ASSERT_EQ(resp.hosted_events_size(), 1);
  EXPECT_EQ(resp.hosted_events(0).name(), w.event.name());
  EXPECT_EQ(resp.co_hosted_events_size(), 0);
  EXPECT_EQ(resp.participant_count(), 3);
  ASSERT_EQ(resp.participant_events_size(), 1);
  EXPECT_EQ(resp.participant_events(0).name(), w.event.name());
  req.set_name(w.orgs[2].name());
  ASSERT_TRUE(G().portal->GetOrganisationProfile(Ctx().get(), req, &resp).ok());
  ASSERT_EQ(resp.partnered_events_size(), 1);
  EXPECT_EQ(resp.hosted_events_size(), 0);

  gv1::GetParticipantProfileRequest preq;
  preq.set_name(w.people[4].name());
  gv1::GetParticipantProfileResponse presp;
  ASSERT_TRUE(G().portal->GetParticipantProfile(Ctx().get(), preq, &presp).ok());
  EXPECT_EQ(presp.participant().name(), w.people[4].name());
  EXPECT_EQ(presp.organisation().name(), w.orgs[1].name());
  ASSERT_EQ(presp.registrations_size(), 1);
  EXPECT_EQ(presp.registrations(0).event_title(), w.event.title());
  EXPECT_EQ(presp.registrations(0).event_city(), "Nairobi");
  EXPECT_EQ(presp.registrations(0).event_start_date().year(), 2024);
  preq.set_name("participants/nobody");
  EXPECT_EQ(G().portal->GetParticipantProfile(Ctx().get(), preq, &presp).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST(Portal, Statistics_PerYearAndTopOrganisations) {
  // Years no other test uses, so the figures are exactly these.
  const World a = MakeWorld(4, 2, 6, 1991);  // 6 registrations
  const World b = MakeWorld(3, 2, 3, 1993);  // 3 registrations, one per organisation
  ev1::CreateEventRequest political;
  *political.mutable_event() = ValidEvent("");
  political.mutable_event()->set_kind(ev1::EVENT_KIND_MINISTERIAL_CONFERENCE);
  political.mutable_event()->mutable_start_date()->set_year(1991);
  political.mutable_event()->mutable_end_date()->set_year(1991);
  ev1::CreateEventResponse created;
  ASSERT_TRUE(S().ev().CreateEvent(Ctx().get(), political, &created).ok());

  gv1::GetStatisticsRequest req;
  req.set_start_year(1990);
  req.set_end_year(1994);
  gv1::GetStatisticsResponse resp;
  ASSERT_TRUE(G().portal->GetStatistics(Ctx().get(), req, &resp).ok());
  ASSERT_EQ(resp.years_size(), 2);
  EXPECT_EQ(resp.years(0).year(), 1991);
  EXPECT_EQ(resp.years(0).event_count(), 2);
  EXPECT_EQ(resp.years(0).events_by_level().at("EVENT_LEVEL_POLITICAL"), 1);
  EXPECT_EQ(resp.years(0).events_by_kind().at("EVENT_KIND_THEMATIC_WORKSHOP"), 1);
  EXPECT_EQ(resp.years(0).live_registrations(), 6);
  EXPECT_EQ(resp.years(1).year(), 1993);
  EXPECT_EQ(resp.years(1).live_registrations(), 3);
  EXPECT_EQ(resp.event_count(), 3);
  EXPECT_EQ(resp.live_registrations(), 9);
  EXPECT_EQ(resp.organisation_count(), 7);
  EXPECT_EQ(resp.country_count(), 2);
  ASSERT_EQ(resp.top_organisations_size(), 7);
  EXPECT_EQ(resp.top_organisations(0).registration_count(), 2);  // a.orgs[0] and a.orgs[1]: 2 each
  EXPECT_FALSE(resp.top_organisations(0).display_name().empty());
  req.set_end_year(1980);
  EXPECT_EQ(G().portal->GetStatistics(Ctx().get(), req, &resp).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST(Portal, Search_InterleavesSourcesAndPagesEachHitOnce) {
  const std::string word = "zanzibarite";
  for (int i = 0; i < 2; ++i) {
    ev1::CreateEventRequest e;
    *e.mutable_event() = ValidEvent("");
    e.mutable_event()->set_title(absl::StrCat("Workshop on ", word, " ", i));
    ev1::CreateEventResponse er;
    ASSERT_TRUE(S().ev().CreateEvent(Ctx().get(), e, &er).ok());
    ov1::CreateOrganisationRequest o;
    o.mutable_organisation()->set_display_name(absl::StrCat("Institute of ", word, " ", i));
    ov1::CreateOrganisationResponse orr;
    ASSERT_TRUE(S().org().CreateOrganisation(Ctx().get(), o, &orr).ok());
    pv1::CreateParticipantRequest p;
    p.mutable_participant()->set_given_name("Amal");
    p.mutable_participant()->set_family_name(absl::StrCat(word, i));
    p.mutable_participant()->set_organisation(orr.organisation().name());
    pv1::CreateParticipantResponse pr;
    ASSERT_TRUE(S().part().CreateParticipant(Ctx().get(), p, &pr).ok());
  }
  std::vector<std::string> seen;
  std::string token;
  int pages = 0;
  do {
    gv1::SearchRequest req;
    req.set_query(word);
    req.set_page_size(2);
    req.set_page_token(token);
    gv1::SearchResponse resp;
    grpc::Status s = G().portal->Search(Ctx().get(), req, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
    if (pages == 0) {
      ASSERT_EQ(resp.hits_size(), 2);
      EXPECT_TRUE(resp.hits(0).has_event());
      EXPECT_TRUE(resp.hits(1).has_organisation());
    }
    for (const auto& h : resp.hits()) seen.push_back(h.name());
    token = resp.next_page_token();
  } while (!token.empty() && ++pages < 10);
  EXPECT_EQ(seen.size(), 6u);
  EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()).size(), 6u);

  gv1::SearchRequest other;
  other.set_query("something else");
  other.set_page_token(token.empty() ? "garbage" : token);
  gv1::SearchResponse resp;
  EXPECT_EQ(G().portal->Search(Ctx().get(), other, &resp).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  other.set_query("");
  EXPECT_EQ(G().portal->Search(Ctx().get(), other, &resp).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

// ----------------------------------------------------------------------------------- proxy

TEST(Proxy, EveryBackendRpcWorksThroughTheGatewayWithTheSameResults) {
  ov1::CreateOrganisationRequest co;
  co.set_organisation_id(UniqueId("gw-org"));
  co.mutable_organisation()->set_display_name("Through the gateway");
  co.mutable_organisation()->set_kind(ov1::ORGANISATION_KIND_GOVERNMENT);
  co.mutable_organisation()->set_country_code("DJ");
  ov1::CreateOrganisationResponse org;
  ASSERT_TRUE(G().org->CreateOrganisation(Ctx().get(), co, &org).ok());
  ov1::GetOrganisationRequest go;
  go.set_name(org.organisation().name());
  ov1::GetOrganisationResponse via_gw, direct;
  ASSERT_TRUE(G().org->GetOrganisation(Ctx().get(), go, &via_gw).ok());
  ASSERT_TRUE(S().org().GetOrganisation(Ctx().get(), go, &direct).ok());
  EXPECT_EQ(via_gw.SerializeAsString(), direct.SerializeAsString());
  ov1::BatchGetOrganisationsRequest bo;
  bo.add_names(org.organisation().name());
  ov1::BatchGetOrganisationsResponse bor;
  ASSERT_TRUE(G().org->BatchGetOrganisations(Ctx().get(), bo, &bor).ok());
  ov1::ListOrganisationsRequest lo;
  lo.set_filter("country_code = \"DJ\"");
  ov1::ListOrganisationsResponse lor_gw, lor_direct;
  ASSERT_TRUE(G().org->ListOrganisations(Ctx().get(), lo, &lor_gw).ok());
  ASSERT_TRUE(S().org().ListOrganisations(Ctx().get(), lo, &lor_direct).ok());
  EXPECT_EQ(lor_gw.SerializeAsString(), lor_direct.SerializeAsString());
  ov1::UpdateOrganisationRequest uo;
  uo.mutable_organisation()->set_name(org.organisation().name());
  uo.mutable_organisation()->set_acronym("GW");
  uo.mutable_update_mask()->add_paths("acronym");
  ov1::UpdateOrganisationResponse uor;
  ASSERT_TRUE(G().org->UpdateOrganisation(Ctx().get(), uo, &uor).ok());
  ov1::DeleteOrganisationRequest dorq;
  dorq.set_name(org.organisation().name());
  ov1::DeleteOrganisationResponse dor;
  ASSERT_TRUE(G().org->DeleteOrganisation(Ctx().get(), dorq, &dor).ok());
  ov1::UndeleteOrganisationRequest udo;
  udo.set_name(org.organisation().name());
  ov1::UndeleteOrganisationResponse udor;
  ASSERT_TRUE(G().org->UndeleteOrganisation(Ctx().get(), udo, &udor).ok());

  ev1::CreateEventRequest ce;
  *ce.mutable_event() = ValidEvent(org.organisation().name());
  ce.mutable_event()->set_capacity(5);
  ev1::CreateEventResponse ev;
  ASSERT_TRUE(G().ev->CreateEvent(Ctx().get(), ce, &ev).ok());
  ev1::GetEventRequest ge;
  ge.set_name(ev.event().name());
  ev1::GetEventResponse ger;
  ASSERT_TRUE(G().ev->GetEvent(Ctx().get(), ge, &ger).ok());
  ev1::BatchGetEventsRequest be;
  be.add_names(ev.event().name());
  ev1::BatchGetEventsResponse ber;
  ASSERT_TRUE(G().ev->BatchGetEvents(Ctx().get(), be, &ber).ok());
  ev1::ListEventsRequest le;
  le.set_filter(absl::StrCat("hosts:\"", org.organisation().name(), "\""));
  ev1::ListEventsResponse ler;
  ASSERT_TRUE(G().ev->ListEvents(Ctx().get(), le, &ler).ok());
  EXPECT_EQ(ler.events_size(), 1);
  ev1::UpdateEventRequest ue;
  ue.mutable_event()->set_name(ev.event().name());
  ue.mutable_event()->set_summary("Updated via the gateway");
  ue.mutable_update_mask()->add_paths("summary");
  ev1::UpdateEventResponse uer;
  ASSERT_TRUE(G().ev->UpdateEvent(Ctx().get(), ue, &uer).ok());
  ev1::SummarizeEventsRequest se;
  ev1::SummarizeEventsResponse ser;
  ASSERT_TRUE(G().ev->SummarizeEvents(Ctx().get(), se, &ser).ok());

  pv1::CreateParticipantRequest cp;
  cp.mutable_participant()->set_given_name("Hiwot");
  cp.mutable_participant()->set_family_name("Gateway");
  cp.mutable_participant()->set_organisation(org.organisation().name());
  pv1::CreateParticipantResponse person;
  ASSERT_TRUE(G().part->CreateParticipant(Ctx().get(), cp, &person).ok());
  pv1::GetParticipantRequest gp;
  gp.set_name(person.participant().name());
  pv1::GetParticipantResponse gpr;
  ASSERT_TRUE(G().part->GetParticipant(Ctx().get(), gp, &gpr).ok());
  pv1::BatchGetParticipantsRequest bp;
  bp.add_names(person.participant().name());
  pv1::BatchGetParticipantsResponse bpr;
  ASSERT_TRUE(G().part->BatchGetParticipants(Ctx().get(), bp, &bpr).ok());
  pv1::ListParticipantsRequest lp;
  lp.set_filter(absl::StrCat("organisation = \"", org.organisation().name(), "\""));
  pv1::ListParticipantsResponse lpr;
  ASSERT_TRUE(G().part->ListParticipants(Ctx().get(), lp, &lpr).ok());
  EXPECT_EQ(lpr.participants_size(), 1);
  pv1::UpdateParticipantRequest up;
  up.mutable_participant()->set_name(person.participant().name());
  up.mutable_participant()->set_job_title("Analyst");
  up.mutable_update_mask()->add_paths("job_title");
  pv1::UpdateParticipantResponse upr;
  ASSERT_TRUE(G().part->UpdateParticipant(Ctx().get(), up, &upr).ok());
  pv1::CreateRegistrationRequest cr;
  cr.mutable_registration()->set_event(ev.event().name());
  cr.mutable_registration()->set_participant(person.participant().name());
  cr.mutable_registration()->set_role(pv1::REGISTRATION_ROLE_EXPERT);
  pv1::CreateRegistrationResponse reg;
  ASSERT_TRUE(G().part->CreateRegistration(Ctx().get(), cr, &reg).ok());
  pv1::GetRegistrationRequest gr;
  gr.set_name(reg.registration().name());
  pv1::GetRegistrationResponse grr;
  ASSERT_TRUE(G().part->GetRegistration(Ctx().get(), gr, &grr).ok());
  pv1::ListRegistrationsRequest lr;
  lr.set_filter(absl::StrCat("event = \"", ev.event().name(), "\""));
  pv1::ListRegistrationsResponse lrr;
  ASSERT_TRUE(G().part->ListRegistrations(Ctx().get(), lr, &lrr).ok());
  EXPECT_EQ(lrr.registrations_size(), 1);
  pv1::UpdateRegistrationRequest ur;
  ur.mutable_registration()->set_name(reg.registration().name());
  ur.mutable_registration()->set_status(pv1::REGISTRATION_STATUS_CONFIRMED);
  ur.mutable_update_mask()->add_paths("status");
  pv1::UpdateRegistrationResponse urr;
  ASSERT_TRUE(G().part->UpdateRegistration(Ctx().get(), ur, &urr).ok());
  pv1::SummarizeRegistrationsRequest sr;
  sr.add_events(ev.event().name());
  pv1::SummarizeRegistrationsResponse srr;
  ASSERT_TRUE(G().part->SummarizeRegistrations(Ctx().get(), sr, &srr).ok());
  EXPECT_EQ(srr.summaries(0).by_status().at("REGISTRATION_STATUS_CONFIRMED"), 1);
  pv1::SummarizeParticipationRequest sp;
  sp.add_events(ev.event().name());
  pv1::SummarizeParticipationResponse spr;
  ASSERT_TRUE(G().part->SummarizeParticipation(Ctx().get(), sp, &spr).ok());
  EXPECT_EQ(spr.live_registrations(), 1);
  pv1::DeleteRegistrationRequest dr;
  dr.set_name(reg.registration().name());
  pv1::DeleteRegistrationResponse drr;
  ASSERT_TRUE(G().part->DeleteRegistration(Ctx().get(), dr, &drr).ok());
  pv1::DeleteParticipantRequest dp;
  dp.set_name(person.participant().name());
  pv1::DeleteParticipantResponse dpr;
  ASSERT_TRUE(G().part->DeleteParticipant(Ctx().get(), dp, &dpr).ok());
  pv1::UndeleteParticipantRequest udp;
  udp.set_name(person.participant().name());
  pv1::UndeleteParticipantResponse udpr;
  ASSERT_TRUE(G().part->UndeleteParticipant(Ctx().get(), udp, &udpr).ok());
  ev1::DeleteEventRequest de;
  de.set_name(ev.event().name());
  ev1::DeleteEventResponse der;
  ASSERT_TRUE(G().ev->DeleteEvent(Ctx().get(), de, &der).ok());
  ev1::UndeleteEventRequest ude;
  ude.set_name(ev.event().name());
  ev1::UndeleteEventResponse uder;
  ASSERT_TRUE(G().ev->UndeleteEvent(Ctx().get(), ude, &uder).ok());
}

TEST(Proxy, ErrorsCarryTheSameCodeMessageAndDetails) {
  ov1::CreateOrganisationRequest bad;
  bad.set_organisation_id("Bad Id");
  bad.mutable_organisation()->set_kind(ov1::ORGANISATION_KIND_GOVERNMENT);
  ov1::CreateOrganisationResponse resp;
  grpc::Status via_gw = G().org->CreateOrganisation(Ctx().get(), bad, &resp);
  grpc::Status direct = S().org().CreateOrganisation(Ctx().get(), bad, &resp);
  EXPECT_EQ(via_gw.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(via_gw.error_code(), direct.error_code());
  EXPECT_EQ(via_gw.error_message(), direct.error_message());
  EXPECT_EQ(via_gw.error_details(), direct.error_details());
  EXPECT_EQ(ViolationFields(via_gw).size(), 3u);

  ev1::GetEventRequest missing;
  missing.set_name("events/not-here");
  ev1::GetEventResponse ev;
  via_gw = G().ev->GetEvent(Ctx().get(), missing, &ev);
  direct = S().ev().GetEvent(Ctx().get(), missing, &ev);
  EXPECT_EQ(via_gw.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(via_gw.error_message(), direct.error_message());

  ev1::CreateEventRequest orphan;
  *orphan.mutable_event() = ValidEvent("organisations/nobody-hosts");
  ev1::CreateEventResponse created;
  via_gw = G().ev->CreateEvent(Ctx().get(), orphan, &created);
  EXPECT_EQ(via_gw.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(ViolationFields(via_gw), std::vector<std::string>{"event.hosts[0]"});
}

TEST(Proxy, UnknownMethodsAreUnimplemented) {
  grpc::GenericStub stub(G().channel);
  for (const char* method : {"/khartoum.events.v1.EventService/Frobnicate", "/khartoum.unknown.v1.Nothing/Get"}) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    grpc::Slice empty("");
    grpc::ByteBuffer request(&empty, 1), response;  // an empty message
    grpc::Status status;
    absl::Notification done;
    stub.UnaryCall(&ctx, method, grpc::StubOptions(), &request, &response, [&](grpc::Status s) {
      status = s;
      done.Notify();
    });
    done.WaitForNotification();
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNIMPLEMENTED) << method;
  }
}

TEST(Proxy, CallerDeadlineIsForwardedToTheBackend) {
  const auto host = CreateOrganisation(UniqueId("dl"));
  const auto e = CreateEvent(UniqueId("dl"), {host.name()});
  // A backend that hangs: calls end at the caller's deadline, not the gateway's (10 s).
  S().events().Signal(SIGSTOP);
  absl::Cleanup resume = [] { S().events().Signal(SIGCONT); };
  for (bool write : {true, false}) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(300));
    const absl::Time start = absl::Now();
    grpc::Status s;
    if (write) {
      ev1::UpdateEventRequest req;
      req.mutable_event()->set_name(e.name());
      req.mutable_event()->set_summary("late");
      req.mutable_update_mask()->add_paths("summary");
      ev1::UpdateEventResponse resp;
      s = G().ev->UpdateEvent(&ctx, req, &resp);
    } else {
      ev1::GetEventRequest req;
      req.set_name(e.name());  // never read through the gateway: a cache miss
      ev1::GetEventResponse resp;
      s = G().ev->GetEvent(&ctx, req, &resp);
    }
    EXPECT_EQ(s.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << (write ? "write" : "read");
    EXPECT_LT(absl::Now() - start, absl::Seconds(3));
  }
}

TEST(Proxy, MetadataReachesTheBackend) {
  const std::string request_id = UniqueId("req-trace");
  grpc::ClientContext ctx;
  ctx.AddMetadata("x-request-id", request_id);
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  ov1::ListOrganisationsRequest req;
  req.set_filter(absl::StrCat("display_name = \"", request_id, "\""));
  ov1::ListOrganisationsResponse resp;
  ASSERT_TRUE(G().org->ListOrganisations(&ctx, req, &resp).ok());
  EXPECT_EQ(CountLines(S().organisations().log_path(), request_id), 1);
}

// The trace_id of the log line (in `path`) of the call with this request id and method.
std::string TraceIdOf(const std::string& path, const std::string& request_id, const std::string& method) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.find(absl::StrCat("\"request_id\":\"", request_id, "\"")) == std::string::npos) continue;
    if (line.find(method) == std::string::npos) continue;
    const auto at = line.find("\"trace_id\":\"");
    if (at != std::string::npos) return line.substr(at + 12, 32);
  }
  return "";
}

TEST(Trace, ContextIsReadOrStartedAndReachesEveryHopAndLogLine) {
  const auto host = CreateOrganisation(UniqueId("tr"));
  const std::string given = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  for (bool caller_sends : {true, false}) {
    const auto e = CreateEvent(UniqueId("tr"), {host.name()});  // never read yet: a cache miss
    const std::string request_id = UniqueId("trace-req");
    grpc::ClientContext ctx;
    ctx.AddMetadata("x-request-id", request_id);
    if (caller_sends) ctx.AddMetadata("traceparent", given);
    gv1::GetEventOverviewRequest req;
    req.set_name(e.name());
    gv1::GetEventOverviewResponse resp;
    ASSERT_TRUE(G().portal->GetEventOverview(&ctx, req, &resp).ok());
    const std::string at_gateway = TraceIdOf(S().gateway().log_path(), request_id, "GetEventOverview");
    const std::string at_events = TraceIdOf(S().events().log_path(), request_id, "/khartoum.events.v1.EventService/GetEvent");
    const std::string at_participants =
        TraceIdOf(S().participants().log_path(), request_id, "SummarizeRegistrations");
    ASSERT_EQ(at_gateway.size(), 32u) << "caller_sends=" << caller_sends;
    if (caller_sends) {
      EXPECT_EQ(at_gateway, "4bf92f3577b34da6a3ce929d0e0e4736");
    }
    EXPECT_EQ(at_events, at_gateway);
    EXPECT_EQ(at_participants, at_gateway);
  }
  // A backend passes it on to its peers (participants -> events on CreateRegistration).
  const auto e = CreateEvent(UniqueId("tr"), {host.name()});
  const auto person = CreateParticipant(UniqueId("tr"), host.name());
  const std::string request_id = UniqueId("trace-peer");
  grpc::ClientContext ctx;
  ctx.AddMetadata("x-request-id", request_id);
  ctx.AddMetadata("traceparent", given);
  pv1::CreateRegistrationRequest reg;
  reg.mutable_registration()->set_event(e.name());
  reg.mutable_registration()->set_participant(person.name());
  reg.mutable_registration()->set_role(pv1::REGISTRATION_ROLE_OBSERVER);
  pv1::CreateRegistrationResponse created;
  ASSERT_TRUE(S().part().CreateRegistration(&ctx, reg, &created).ok());
  EXPECT_EQ(TraceIdOf(S().events().log_path(), request_id, "/khartoum.events.v1.EventService/GetEvent"),
            "4bf92f3577b34da6a3ce929d0e0e4736");
}

TEST(Gateway, HealthReportsEveryServedService) {
  auto health = grpc::health::v1::Health::NewStub(G().channel);
  for (const char* service : {"", "khartoum.gateway.v1.PortalService", "khartoum.organisations.v1.OrganisationService",
                              "khartoum.events.v1.EventService", "khartoum.participants.v1.ParticipantService"}) {
    grpc::health::v1::HealthCheckRequest req;
    req.set_service(service);
    grpc::health::v1::HealthCheckResponse resp;
    ASSERT_TRUE(health->Check(Ctx().get(), req, &resp).ok()) << service;
    EXPECT_EQ(resp.status(), grpc::health::v1::HealthCheckResponse::SERVING) << service;
  }
}

}  // namespace
}  // namespace kp::testing
