// Security against the real binaries (authentication required, Redis, gateway): every RPC ×
// every role and bad credentials, registrar scoping, personal data masking (cache included),
// the audit log, key revocation by reloading, and TLS.
#include <signal.h>

#include <fstream>
#include <functional>
#include <map>

#include <grpcpp/create_channel.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/auth/keys.h"
#include "khartoum/gateway/v1/portal.grpc.pb.h"
#include "tests/integration/harness.h"

namespace kp::testing {
namespace {

namespace ov1 = khartoum::organisations::v1;
namespace ev1 = khartoum::events::v1;
namespace pv1 = khartoum::participants::v1;
namespace gv1 = khartoum::gateway::v1;

// Principals of the matrix; "none" sends no token, "wrong" an unknown one.
const std::vector<std::string> kPrincipals = {"admin", "editor", "reader", "registrar", "none", "wrong",
                                              "expired", "revoked"};
std::map<std::string, std::string> g_tokens;
std::unique_ptr<TempDir> g_keys_dir;
std::string g_keys_path;
std::unique_ptr<Suite> g_suite;

std::string KeysLine(const std::string& token, const std::string& rest) {
  return absl::StrCat(auth::Sha256Hex(token), " ", rest, "\n");
}

void WriteKeys(bool include_revoked) {
  std::ofstream out(g_keys_path + ".tmp");
  out << "# test keys\n"
      << KeysLine(g_tokens["admin"], "test-admin admin")
      << KeysLine(g_tokens["editor"], "test-editor editor")
      << KeysLine(g_tokens["reader"], "test-reader reader")
      << KeysLine(g_tokens["registrar"], "test-registrar-a registrar organisations/sec-org-a")
      << KeysLine(g_tokens["registrar-b"], "test-registrar-b registrar organisations/sec-org-b")
      << KeysLine(g_tokens["expired"], "test-expired editor expires=2020-01-01T00:00:00Z");
  if (include_revoked) out << KeysLine(g_tokens["revoked"], "test-revoked editor");
  out.close();
  std::rename((g_keys_path + ".tmp").c_str(), g_keys_path.c_str());
}

class SecurityEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    for (const char* p : {"admin", "editor", "reader", "registrar", "registrar-b", "expired", "revoked"}) {
      g_tokens[p] = absl::StrCat("kp_test_", p, "_", UniqueId("t"));
    }
    g_tokens["wrong"] = "kp_not_a_known_token";
    g_keys_dir = std::make_unique<TempDir>();
    g_keys_path = g_keys_dir->path() + "/keys.txt";
    WriteKeys(/*include_revoked=*/true);
    g_suite = Suite::Start({.with_redis = true, .with_gateway = true, .keys_file = g_keys_path});
    ASSERT_NE(g_suite, nullptr);
  }
  void TearDown() override { g_suite.reset(); }
};
[[maybe_unused]] auto* const kEnv = ::testing::AddGlobalTestEnvironment(new SecurityEnvironment());

std::unique_ptr<grpc::ClientContext> As(const std::string& who) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  if (who != "none") ctx->AddMetadata("authorization", absl::StrCat("Bearer ", g_tokens.at(who)));
  return ctx;
}

// Stubs for one endpoint: the gateway or the backends directly.
struct Endpoint {
  std::string label;
  std::unique_ptr<ov1::OrganisationService::Stub> org;
  std::unique_ptr<ev1::EventService::Stub> ev;
  std::unique_ptr<pv1::ParticipantService::Stub> part;
  std::unique_ptr<gv1::PortalService::Stub> portal;  // gateway only
};

Endpoint Gateway() {
  auto ch = grpc::CreateChannel(g_suite->gateway().address(), grpc::InsecureChannelCredentials());
  return {"gateway", ov1::OrganisationService::NewStub(ch), ev1::EventService::NewStub(ch),
          pv1::ParticipantService::NewStub(ch), gv1::PortalService::NewStub(ch)};
}

Endpoint Direct() {
  auto c = [](ServiceProcess& p) { return grpc::CreateChannel(p.address(), grpc::InsecureChannelCredentials()); };
  return {"direct", ov1::OrganisationService::NewStub(c(g_suite->organisations())),
          ev1::EventService::NewStub(c(g_suite->events())), pv1::ParticipantService::NewStub(c(g_suite->participants())),
          nullptr};
}

// Fixtures created by the admin: organisations A (registrar A's) and B, an event, a
// participant in each, a registration of A's participant.
struct Fixtures {
  std::string org_a = "organisations/sec-org-a", org_b = "organisations/sec-org-b";
  std::string event, person_a, person_b, registration_a;
};

Fixtures& F() {
  static Fixtures* f = [] {
    auto* f = new Fixtures();
    Endpoint d = Direct();
    for (const char* id : {"sec-org-a", "sec-org-b"}) {
      ov1::CreateOrganisationRequest req;
      req.set_organisation_id(id);
      req.mutable_organisation()->set_display_name(id);
      ov1::CreateOrganisationResponse resp;
      EXPECT_TRUE(d.org->CreateOrganisation(As("admin").get(), req, &resp).ok());
    }
    ev1::CreateEventRequest ereq;
    auto* e = ereq.mutable_event();
    e->set_title("Security workshop");
    e->set_kind(ev1::EVENT_KIND_TRAINING);
    e->mutable_start_date()->set_year(2025);
    e->mutable_start_date()->set_month(1);
    e->mutable_start_date()->set_day(1);
    *e->mutable_end_date() = e->start_date();
    e->add_hosts(f->org_a);
    ev1::CreateEventResponse eresp;
    EXPECT_TRUE(d.ev->CreateEvent(As("admin").get(), ereq, &eresp).ok());
    f->event = eresp.event().name();
    for (auto [org, out] : {std::pair{f->org_a, &f->person_a}, std::pair{f->org_b, &f->person_b}}) {
      pv1::CreateParticipantRequest preq;
      preq.mutable_participant()->set_given_name("Secret");
      preq.mutable_participant()->set_family_name("Person");
      preq.mutable_participant()->set_organisation(org);
      preq.mutable_participant()->set_email("secret@example.org");
      preq.mutable_participant()->set_phone("+254 700 000 000");
      pv1::CreateParticipantResponse presp;
      EXPECT_TRUE(d.part->CreateParticipant(As("admin").get(), preq, &presp).ok());
      *out = presp.participant().name();
    }
    pv1::CreateRegistrationRequest rreq;
    rreq.mutable_registration()->set_event(f->event);
    rreq.mutable_registration()->set_participant(f->person_a);
    rreq.mutable_registration()->set_role(pv1::REGISTRATION_ROLE_DELEGATE);
    pv1::CreateRegistrationResponse rresp;
    EXPECT_TRUE(d.part->CreateRegistration(As("admin").get(), rreq, &rresp).ok());
    f->registration_a = rresp.registration().name();
    return f;
  }();
  return *f;
}

// A fresh participant of organisation A, created by the admin.
std::string NewPersonA(Endpoint& d) {
  pv1::CreateParticipantRequest req;
  req.mutable_participant()->set_given_name("Victim");
  req.mutable_participant()->set_family_name("Person");
  req.mutable_participant()->set_organisation(F().org_a);
  pv1::CreateParticipantResponse resp;
  EXPECT_TRUE(d.part->CreateParticipant(As("admin").get(), req, &resp).ok());
  return resp.participant().name();
}

enum class Needs { kAnyone, kEditor, kRegistrarOfA, kAdmin };

struct Case {
  std::string rpc;
  Needs needs;
  std::function<grpc::Status(Endpoint&, const std::string& who)> call;
};

std::vector<Case> Cases() {
  std::vector<Case> c;
  // OrganisationService
  c.push_back({"GetOrganisation", Needs::kAnyone, [](Endpoint& e, const std::string& w) {
    ov1::GetOrganisationRequest r; r.set_name(F().org_a); ov1::GetOrganisationResponse o;
    return e.org->GetOrganisation(As(w).get(), r, &o); }});
  c.push_back({"BatchGetOrganisations", Needs::kAnyone, [](Endpoint& e, const std::string& w) {
    ov1::BatchGetOrganisationsRequest r; r.add_names(F().org_a); ov1::BatchGetOrganisationsResponse o;
    return e.org->BatchGetOrganisations(As(w).get(), r, &o); }});
  c.push_back({"ListOrganisations", Needs::kAnyone, [](Endpoint& e, const std::string& w) {
    ov1::ListOrganisationsRequest r; ov1::ListOrganisationsResponse o;
    return e.org->ListOrganisations(As(w).get(), r, &o); }});
  c.push_back({"CreateOrganisation", Needs::kEditor, [](Endpoint& e, const std::string& w) {
    ov1::CreateOrganisationRequest r; r.mutable_organisation()->set_display_name("New"); ov1::CreateOrganisationResponse o;
    return e.org->CreateOrganisation(As(w).get(), r, &o); }});
  c.push_back({"BatchCreateOrganisations", Needs::kEditor, [](Endpoint& e, const std::string& w) {
    ov1::BatchCreateOrganisationsRequest r; r.add_requests()->mutable_organisation()->set_display_name("New");
    ov1::BatchCreateOrganisationsResponse o; return e.org->BatchCreateOrganisations(As(w).get(), r, &o); }});
  c.push_back({"UpdateOrganisation", Needs::kEditor, [](Endpoint& e, const std::string& w) {
    ov1::UpdateOrganisationRequest r; r.mutable_organisation()->set_name(F().org_b);
    r.mutable_organisation()->set_acronym("B"); r.mutable_update_mask()->add_paths("acronym");
    ov1::UpdateOrganisationResponse o; return e.org->UpdateOrganisation(As(w).get(), r, &o); }});
  c.push_back({"DeleteOrganisation", Needs::kAdmin, [](Endpoint& e, const std::string& w) {
    ov1::CreateOrganisationRequest cr; cr.mutable_organisation()->set_display_name("Victim");
    ov1::CreateOrganisationResponse victim; EXPECT_TRUE(e.org->CreateOrganisation(As("admin").get(), cr, &victim).ok());
    ov1::DeleteOrganisationRequest r; r.set_name(victim.organisation().name()); ov1::DeleteOrganisationResponse o;
    return e.org->DeleteOrganisation(As(w).get(), r, &o); }});
  c.push_back({"UndeleteOrganisation", Needs::kAdmin, [](Endpoint& e, const std::string& w) {
    ov1::CreateOrganisationRequest cr; cr.mutable_organisation()->set_display_name("Victim");
    ov1::CreateOrganisationResponse victim; EXPECT_TRUE(e.org->CreateOrganisation(As("admin").get(), cr, &victim).ok());
    ov1::DeleteOrganisationRequest d; d.set_name(victim.organisation().name()); ov1::DeleteOrganisationResponse dd;
    EXPECT_TRUE(e.org->DeleteOrganisation(As("admin").get(), d, &dd).ok());
    ov1::UndeleteOrganisationRequest r; r.set_name(victim.organisation().name()); ov1::UndeleteOrganisationResponse o;
    return e.org->UndeleteOrganisation(As(w).get(), r, &o); }});
  c.push_back({"Organisations.ListAuditEntries", Needs::kAdmin, [](Endpoint& e, const std::string& w) {
    ov1::ListAuditEntriesRequest r; ov1::ListAuditEntriesResponse o;
    return e.org->ListAuditEntries(As(w).get(), r, &o); }});
  // EventService
  c.push_back({"GetEvent", Needs::kAnyone, [](Endpoint& e, const std::string& w) {
    ev1::GetEventRequest r; r.set_name(F().event); ev1::GetEventResponse o; return e.ev->GetEvent(As(w).get(), r, &o); }});
  c.push_back({"BatchGetEvents", Needs::kAnyone, [](Endpoint& e, const std::string& w) {
    ev1::BatchGetEventsRequest r; r.add_names(F().event); ev1::BatchGetEventsResponse o;
    return e.ev->BatchGetEvents(As(w).get(), r, &o); }});
  c.push_back({"ListEvents", Needs::kAnyone, [](Endpoint& e, const std::string& w) {
    ev1::ListEventsRequest r; ev1::ListEventsResponse o; return e.ev->ListEvents(As(w).get(), r, &o); }});
  c.push_back({"SummarizeEvents", Needs::kAnyone, [](Endpoint& e, const std::string& w) {
    ev1::SummarizeEventsRequest r; ev1::SummarizeEventsResponse o; return e.ev->SummarizeEvents(As(w).get(), r, &o); }});
  c.push_back({"CreateEvent", Needs::kEditor, [](Endpoint& e, const std::string& w) {
    ev1::CreateEventRequest r; auto* x = r.mutable_event(); x->set_title("T"); x->set_kind(ev1::EVENT_KIND_OTHER);
    x->mutable_start_date()->set_year(2025); x->mutable_start_date()->set_month(2); x->mutable_start_date()->set_day(2);
    *x->mutable_end_date() = x->start_date(); x->add_hosts(F().org_a);
    ev1::CreateEventResponse o; return e.ev->CreateEvent(As(w).get(), r, &o); }});
  c.push_back({"BatchCreateEvents", Needs::kEditor, [](Endpoint& e, const std::string& w) {
    ev1::BatchCreateEventsRequest r; auto* x = r.add_requests()->mutable_event(); x->set_title("T");
    x->set_kind(ev1::EVENT_KIND_OTHER); x->mutable_start_date()->set_year(2025); x->mutable_start_date()->set_month(2);
    x->mutable_start_date()->set_day(2); *x->mutable_end_date() = x->start_date(); x->add_hosts(F().org_a);
    ev1::BatchCreateEventsResponse o; return e.ev->BatchCreateEvents(As(w).get(), r, &o); }});
  c.push_back({"UpdateEvent", Needs::kEditor, [](Endpoint& e, const std::string& w) {
    ev1::UpdateEventRequest r; r.mutable_event()->set_name(F().event); r.mutable_event()->set_summary("S");
    r.mutable_update_mask()->add_paths("summary"); ev1::UpdateEventResponse o; return e.ev->UpdateEvent(As(w).get(), r, &o); }});
  c.push_back({"DeleteEvent", Needs::kAdmin, [](Endpoint& e, const std::string& w) {
    ev1::DeleteEventRequest r; r.set_name("events/never-created-for-delete"); ev1::DeleteEventResponse o;
    return e.ev->DeleteEvent(As(w).get(), r, &o); }});
  c.push_back({"UndeleteEvent", Needs::kAdmin, [](Endpoint& e, const std::string& w) {
    ev1::UndeleteEventRequest r; r.set_name("events/never-created-for-undelete"); ev1::UndeleteEventResponse o;
    return e.ev->UndeleteEvent(As(w).get(), r, &o); }});
  c.push_back({"Events.ListAuditEntries", Needs::kAdmin, [](Endpoint& e, const std::string& w) {
    ev1::ListAuditEntriesRequest r; ev1::ListAuditEntriesResponse o; return e.ev->ListAuditEntries(As(w).get(), r, &o); }});
  // ParticipantService
  c.push_back({"GetParticipant", Needs::kAnyone, [](Endpoint& e, const std::string& w) {
    pv1::GetParticipantRequest r; r.set_name(F().person_a); pv1::GetParticipantResponse o;
    return e.part->GetParticipant(As(w).get(), r, &o); }});
  c.push_back({"BatchGetParticipants", Needs::kAnyone, [](Endpoint& e, const std::string& w) {
    pv1::BatchGetParticipantsRequest r; r.add_names(F().person_b); pv1::BatchGetParticipantsResponse o;
    return e.part->BatchGetParticipants(As(w).get(), r, &o); }});
  c.push_back({"ListParticipants", Needs::kAnyone, [](Endpoint& e, const std::string& w) {
    pv1::ListParticipantsRequest r; pv1::ListParticipantsResponse o; return e.part->ListParticipants(As(w).get(), r, &o); }});
  c.push_back({"CreateParticipant", Needs::kRegistrarOfA, [](Endpoint& e, const std::string& w) {
    pv1::CreateParticipantRequest r; r.mutable_participant()->set_given_name("N"); r.mutable_participant()->set_family_name("P");
    r.mutable_participant()->set_organisation(F().org_a); pv1::CreateParticipantResponse o;
    return e.part->CreateParticipant(As(w).get(), r, &o); }});
  c.push_back({"BatchCreateParticipants", Needs::kRegistrarOfA, [](Endpoint& e, const std::string& w) {
    pv1::BatchCreateParticipantsRequest r; auto* p = r.add_requests()->mutable_participant(); p->set_given_name("N");
    p->set_family_name("P"); p->set_organisation(F().org_a); pv1::BatchCreateParticipantsResponse o;
    return e.part->BatchCreateParticipants(As(w).get(), r, &o); }});
  c.push_back({"UpdateParticipant", Needs::kRegistrarOfA, [](Endpoint& e, const std::string& w) {
    pv1::UpdateParticipantRequest r; r.mutable_participant()->set_name(F().person_a);
    r.mutable_participant()->set_job_title("J"); r.mutable_update_mask()->add_paths("job_title");
    pv1::UpdateParticipantResponse o; return e.part->UpdateParticipant(As(w).get(), r, &o); }});
  c.push_back({"DeleteParticipant", Needs::kAdmin, [](Endpoint& e, const std::string& w) {
    pv1::DeleteParticipantRequest r; r.set_name(NewPersonA(e)); pv1::DeleteParticipantResponse o;
    return e.part->DeleteParticipant(As(w).get(), r, &o); }});
  c.push_back({"UndeleteParticipant", Needs::kAdmin, [](Endpoint& e, const std::string& w) {
    const std::string victim = NewPersonA(e);
    pv1::DeleteParticipantRequest d; d.set_name(victim); pv1::DeleteParticipantResponse dd;
    EXPECT_TRUE(e.part->DeleteParticipant(As("admin").get(), d, &dd).ok());
    pv1::UndeleteParticipantRequest r; r.set_name(victim); pv1::UndeleteParticipantResponse o;
    return e.part->UndeleteParticipant(As(w).get(), r, &o); }});
  c.push_back({"CreateRegistration", Needs::kRegistrarOfA, [](Endpoint& e, const std::string& w) {
    pv1::CreateRegistrationRequest r; r.mutable_registration()->set_event(F().event);
    r.mutable_registration()->set_participant(NewPersonA(e)); r.mutable_registration()->set_role(pv1::REGISTRATION_ROLE_EXPERT);
    pv1::CreateRegistrationResponse o; return e.part->CreateRegistration(As(w).get(), r, &o); }});
  c.push_back({"BatchCreateRegistrations", Needs::kRegistrarOfA, [](Endpoint& e, const std::string& w) {
    pv1::BatchCreateRegistrationsRequest r; auto* g = r.add_requests()->mutable_registration(); g->set_event(F().event);
    g->set_participant(NewPersonA(e)); g->set_role(pv1::REGISTRATION_ROLE_EXPERT);
    pv1::BatchCreateRegistrationsResponse o; return e.part->BatchCreateRegistrations(As(w).get(), r, &o); }});
  c.push_back({"GetRegistration", Needs::kAnyone, [](Endpoint& e, const std::string& w) {
    pv1::GetRegistrationRequest r; r.set_name(F().registration_a); pv1::GetRegistrationResponse o;
    return e.part->GetRegistration(As(w).get(), r, &o); }});
  c.push_back({"ListRegistrations", Needs::kAnyone, [](Endpoint& e, const std::string& w) {
    pv1::ListRegistrationsRequest r; pv1::ListRegistrationsResponse o; return e.part->ListRegistrations(As(w).get(), r, &o); }});
  c.push_back({"UpdateRegistration", Needs::kRegistrarOfA, [](Endpoint& e, const std::string& w) {
    pv1::UpdateRegistrationRequest r; r.mutable_registration()->set_name(F().registration_a);
    r.mutable_registration()->set_role(pv1::REGISTRATION_ROLE_SPEAKER); r.mutable_update_mask()->add_paths("role");
    pv1::UpdateRegistrationResponse o; return e.part->UpdateRegistration(As(w).get(), r, &o); }});
  c.push_back({"DeleteRegistration", Needs::kAdmin, [](Endpoint& e, const std::string& w) {
    pv1::DeleteRegistrationRequest r; r.set_name("registrations/never-created"); pv1::DeleteRegistrationResponse o;
    return e.part->DeleteRegistration(As(w).get(), r, &o); }});
  c.push_back({"SummarizeRegistrations", Needs::kAnyone, [](Endpoint& e, const std::string& w) {
    pv1::SummarizeRegistrationsRequest r; r.add_events(F().event); pv1::SummarizeRegistrationsResponse o;
    return e.part->SummarizeRegistrations(As(w).get(), r, &o); }});
  c.push_back({"SummarizeParticipation", Needs::kAnyone, [](Endpoint& e, const std::string& w) {
    pv1::SummarizeParticipationRequest r; pv1::SummarizeParticipationResponse o;
    return e.part->SummarizeParticipation(As(w).get(), r, &o); }});
  c.push_back({"Participants.ListAuditEntries", Needs::kAdmin, [](Endpoint& e, const std::string& w) {
    pv1::ListAuditEntriesRequest r; pv1::ListAuditEntriesResponse o; return e.part->ListAuditEntries(As(w).get(), r, &o); }});
  // PortalService (gateway only)
  c.push_back({"GetEventOverview", Needs::kAnyone, [](Endpoint& e, const std::string& w) {
    if (!e.portal) return grpc::Status(grpc::StatusCode::CANCELLED, "skip");
    gv1::GetEventOverviewRequest r; r.set_name(F().event); gv1::GetEventOverviewResponse o;
    return e.portal->GetEventOverview(As(w).get(), r, &o); }});
  c.push_back({"ListEventSummaries", Needs::kAnyone, [](Endpoint& e, const std::string& w) {
    if (!e.portal) return grpc::Status(grpc::StatusCode::CANCELLED, "skip");
    gv1::ListEventSummariesRequest r; gv1::ListEventSummariesResponse o; return e.portal->ListEventSummaries(As(w).get(), r, &o); }});
  c.push_back({"GetOrganisationProfile", Needs::kAnyone, [](Endpoint& e, const std::string& w) {
    if (!e.portal) return grpc::Status(grpc::StatusCode::CANCELLED, "skip");
    gv1::GetOrganisationProfileRequest r; r.set_name(F().org_a); gv1::GetOrganisationProfileResponse o;
    return e.portal->GetOrganisationProfile(As(w).get(), r, &o); }});
  c.push_back({"GetParticipantProfile", Needs::kAnyone, [](Endpoint& e, const std::string& w) {
    if (!e.portal) return grpc::Status(grpc::StatusCode::CANCELLED, "skip");
    gv1::GetParticipantProfileRequest r; r.set_name(F().person_a); gv1::GetParticipantProfileResponse o;
    return e.portal->GetParticipantProfile(As(w).get(), r, &o); }});
  c.push_back({"GetStatistics", Needs::kAnyone, [](Endpoint& e, const std::string& w) {
    if (!e.portal) return grpc::Status(grpc::StatusCode::CANCELLED, "skip");
    gv1::GetStatisticsRequest r; gv1::GetStatisticsResponse o; return e.portal->GetStatistics(As(w).get(), r, &o); }});
  c.push_back({"Search", Needs::kAnyone, [](Endpoint& e, const std::string& w) {
    if (!e.portal) return grpc::Status(grpc::StatusCode::CANCELLED, "skip");
    gv1::SearchRequest r; r.set_query("secret"); gv1::SearchResponse o; return e.portal->Search(As(w).get(), r, &o); }});
  return c;
}

std::vector<Endpoint> BothEndpoints() {
  std::vector<Endpoint> v;
  v.push_back(Direct());
  v.push_back(Gateway());
  return v;
}

bool Allowed(Needs needs, const std::string& who) {
  if (who == "admin") return true;
  if (who == "editor") return needs != Needs::kAdmin;
  if (who == "registrar") return needs == Needs::kAnyone || needs == Needs::kRegistrarOfA;
  if (who == "reader") return needs == Needs::kAnyone;
  return false;
}

// Removes the "revoked" token's line and waits (bounded) until both the gateway and a backend
// refuse it: the keys file is reloaded when it changes.
bool RevokeAndWait() {
  WriteKeys(/*include_revoked=*/false);
  Endpoint d = Direct();
  Endpoint g = Gateway();
  ov1::ListOrganisationsRequest r;
  ov1::ListOrganisationsResponse o;
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (absl::Now() < deadline) {
    if (d.org->ListOrganisations(As("revoked").get(), r, &o).error_code() == grpc::StatusCode::UNAUTHENTICATED &&
        g.org->ListOrganisations(As("revoked").get(), r, &o).error_code() == grpc::StatusCode::UNAUTHENTICATED) {
      return true;
    }
  }
  return false;
}

TEST(Security, RevokedTokenIsRefusedOnceTheKeysFileChanges) {
  WriteKeys(/*include_revoked=*/true);
  Endpoint d = Direct();
  ov1::ListOrganisationsRequest r;
  ov1::ListOrganisationsResponse o;
  // (Re-admitted by the rewrite above: wait until it works again, bounded.)
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (!d.org->ListOrganisations(As("revoked").get(), r, &o).ok() && absl::Now() < deadline) {
  }
  ASSERT_TRUE(d.org->ListOrganisations(As("revoked").get(), r, &o).ok());
  EXPECT_TRUE(RevokeAndWait());
}

TEST(Security, EveryRpcTimesEveryPrincipal) {
  F();
  ASSERT_TRUE(RevokeAndWait());
  for (auto& endpoint : BothEndpoints()) {
    for (const auto& c : Cases()) {
      for (const auto& who : kPrincipals) {
        const grpc::Status s = c.call(endpoint, who);
        if (s.error_code() == grpc::StatusCode::CANCELLED && s.error_message() == "skip") continue;
        const std::string where = absl::StrCat(endpoint.label, " ", c.rpc, " as ", who, ": ", s.error_code(), " ",
                                               s.error_message());
        const bool bad_credentials = who == "none" || who == "wrong" || who == "expired" || who == "revoked";
        if (bad_credentials) {
          EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED) << where;
        } else if (Allowed(c.needs, who)) {
          EXPECT_NE(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << where;
          EXPECT_NE(s.error_code(), grpc::StatusCode::UNAUTHENTICATED) << where;
        } else {
          EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << where;
          EXPECT_FALSE(s.error_message().empty()) << where;
        }
      }
    }
  }
}

TEST(Security, HealthNeedsNoToken) {
  for (ServiceProcess* p : {&g_suite->organisations(), &g_suite->gateway()}) {
    EXPECT_TRUE(WaitForServing(p->address(), absl::Seconds(2)).ok());
  }
}

TEST(Security, RegistrarCannotTouchAnotherOrganisationsParticipants) {
  F();
  for (auto& e : BothEndpoints()) {
    pv1::CreateParticipantRequest create;
    create.mutable_participant()->set_given_name("Not");
    create.mutable_participant()->set_family_name("Mine");
    create.mutable_participant()->set_organisation(F().org_b);
    pv1::CreateParticipantResponse created;
    EXPECT_EQ(e.part->CreateParticipant(As("registrar").get(), create, &created).error_code(),
              grpc::StatusCode::PERMISSION_DENIED) << e.label;

    pv1::UpdateParticipantRequest update;
    update.mutable_participant()->set_name(F().person_b);
    update.mutable_participant()->set_job_title("Hijacked");
    update.mutable_update_mask()->add_paths("job_title");
    pv1::UpdateParticipantResponse updated;
    EXPECT_EQ(e.part->UpdateParticipant(As("registrar").get(), update, &updated).error_code(),
              grpc::StatusCode::PERMISSION_DENIED) << e.label;
    // Moving one's own participant to another organisation is a write to B as well.
    update.mutable_participant()->set_name(F().person_a);
    update.mutable_participant()->set_organisation(F().org_b);
    update.mutable_update_mask()->add_paths("organisation");
    EXPECT_EQ(e.part->UpdateParticipant(As("registrar").get(), update, &updated).error_code(),
              grpc::StatusCode::PERMISSION_DENIED) << e.label;

    pv1::CreateRegistrationRequest reg;
    reg.mutable_registration()->set_event(F().event);
    reg.mutable_registration()->set_participant(F().person_b);
    reg.mutable_registration()->set_role(pv1::REGISTRATION_ROLE_DELEGATE);
    pv1::CreateRegistrationResponse registered;
    EXPECT_EQ(e.part->CreateRegistration(As("registrar").get(), reg, &registered).error_code(),
              grpc::StatusCode::PERMISSION_DENIED) << e.label;

    pv1::GetParticipantRequest get;
    get.set_name(F().person_b);
    pv1::GetParticipantResponse got;
    ASSERT_TRUE(e.part->GetParticipant(As("registrar").get(), get, &got).ok());
    EXPECT_EQ(got.participant().email(), "") << e.label;
    EXPECT_EQ(got.participant().phone(), "") << e.label;
    get.set_name(F().person_a);  // their own: visible
    ASSERT_TRUE(e.part->GetParticipant(As("registrar").get(), get, &got).ok());
    EXPECT_EQ(got.participant().email(), "secret@example.org") << e.label;
  }
  // Nothing of B changed.
  pv1::GetParticipantRequest get;
  get.set_name(F().person_b);
  pv1::GetParticipantResponse got;
  ASSERT_TRUE(Direct().part->GetParticipant(As("admin").get(), get, &got).ok());
  EXPECT_EQ(got.participant().job_title(), "");
}

std::string PersonalData(const pv1::Participant& p) { return p.email() + p.phone(); }

TEST(Security, PersonalDataNeverReachesAReaderCachedOrNot) {
  F();
  Endpoint g = Gateway();
  // An editor reads everything first, warming the cache with personal data...
  auto read_all = [&](const std::string& who, bool expect_personal) {
    pv1::GetParticipantRequest get;
    get.set_name(F().person_a);
    pv1::GetParticipantResponse got;
    ASSERT_TRUE(g.part->GetParticipant(As(who).get(), get, &got).ok());
    EXPECT_EQ(!PersonalData(got.participant()).empty(), expect_personal) << who << " Get";
    pv1::BatchGetParticipantsRequest batch;
    batch.add_names(F().person_a);
    batch.add_names(F().person_b);
    pv1::BatchGetParticipantsResponse batch_resp;
    ASSERT_TRUE(g.part->BatchGetParticipants(As(who).get(), batch, &batch_resp).ok());
    for (const auto& p : batch_resp.participants()) EXPECT_EQ(!PersonalData(p).empty(), expect_personal) << who << " BatchGet";
    pv1::ListParticipantsRequest list;
    list.set_filter(absl::StrCat("organisation = \"", F().org_a, "\""));
    pv1::ListParticipantsResponse list_resp;
    ASSERT_TRUE(g.part->ListParticipants(As(who).get(), list, &list_resp).ok());
    for (const auto& p : list_resp.participants()) {
      if (p.name() == F().person_a) {
        EXPECT_EQ(!PersonalData(p).empty(), expect_personal) << who << " List";
      }
    }
    gv1::GetEventOverviewRequest overview;
    overview.set_name(F().event);
    gv1::GetEventOverviewResponse overview_resp;
    ASSERT_TRUE(g.portal->GetEventOverview(As(who).get(), overview, &overview_resp).ok());
    ASSERT_GE(overview_resp.attendees_size(), 1);
    for (const auto& a : overview_resp.attendees()) {
      if (a.participant().name() == F().person_a) {
        EXPECT_EQ(!PersonalData(a.participant()).empty(), expect_personal) << who << " overview";
      }
    }
    gv1::GetParticipantProfileRequest profile;
    profile.set_name(F().person_a);
    gv1::GetParticipantProfileResponse profile_resp;
    ASSERT_TRUE(g.portal->GetParticipantProfile(As(who).get(), profile, &profile_resp).ok());
    EXPECT_EQ(!PersonalData(profile_resp.participant()).empty(), expect_personal) << who << " profile";
    gv1::SearchRequest search;
    search.set_query("Secret Person");
    gv1::SearchResponse search_resp;
    ASSERT_TRUE(g.portal->Search(As(who).get(), search, &search_resp).ok());
    int participants = 0;
    for (const auto& h : search_resp.hits()) {
      if (h.has_participant()) {
        ++participants;
        EXPECT_EQ(!PersonalData(h.participant()).empty(), expect_personal) << who << " search";
      }
    }
    if (who == "reader") EXPECT_EQ(participants, 0) << "readers get no participant hits";
    else EXPECT_GE(participants, 1) << who;
  };
  read_all("editor", true);
  read_all("editor", true);  // now from the cache
  // ...and a reader asking the very same questions gets none of it.
  read_all("reader", false);
  read_all("reader", false);
}

TEST(Security, AuditLogHasOneEntryPerWriteWithThePrincipal) {
  F();
  Endpoint d = Direct();
  pv1::CreateParticipantRequest create;
  create.mutable_participant()->set_given_name("Audited");
  create.mutable_participant()->set_family_name("Person");
  create.mutable_participant()->set_organisation(F().org_a);
  pv1::CreateParticipantResponse created;
  ASSERT_TRUE(d.part->CreateParticipant(As("registrar").get(), create, &created).ok());
  const std::string name = created.participant().name();
  pv1::UpdateParticipantRequest update;
  update.mutable_participant()->set_name(name);
  update.mutable_participant()->set_job_title("Inspector");
  update.mutable_update_mask()->add_paths("job_title");
  pv1::UpdateParticipantResponse updated;
  ASSERT_TRUE(Gateway().part->UpdateParticipant(As("editor").get(), update, &updated).ok());
  pv1::DeleteParticipantRequest del;
  del.set_name(name);
  pv1::DeleteParticipantResponse deleted;
  ASSERT_TRUE(d.part->DeleteParticipant(As("admin").get(), del, &deleted).ok());
  // A refused write leaves no entry.
  ASSERT_EQ(d.part->DeleteParticipant(As("editor").get(), del, &deleted).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);

  pv1::ListAuditEntriesRequest req;
  req.set_resource(name);
  pv1::ListAuditEntriesResponse resp;
  ASSERT_TRUE(d.part->ListAuditEntries(As("admin").get(), req, &resp).ok());
  ASSERT_EQ(resp.audit_entries_size(), 3);
  const auto& del_entry = resp.audit_entries(0);  // newest first
  const auto& upd_entry = resp.audit_entries(1);
  const auto& create_entry = resp.audit_entries(2);
  EXPECT_EQ(create_entry.principal(), "test-registrar-a");
  EXPECT_EQ(create_entry.role(), "registrar");
  EXPECT_EQ(create_entry.method(), "CreateParticipant");
  EXPECT_EQ(create_entry.old_etag(), "");
  EXPECT_EQ(create_entry.new_etag(), created.participant().etag());
  EXPECT_EQ(upd_entry.principal(), "test-editor");
  EXPECT_EQ(upd_entry.method(), "UpdateParticipant");
  EXPECT_EQ(upd_entry.old_etag(), created.participant().etag());
  EXPECT_EQ(upd_entry.new_etag(), updated.participant().etag());
  EXPECT_EQ(del_entry.principal(), "test-admin");
  EXPECT_EQ(del_entry.method(), "DeleteParticipant");
  EXPECT_EQ(del_entry.old_etag(), updated.participant().etag());
  EXPECT_LE(create_entry.time().seconds(), del_entry.time().seconds());
}

}  // namespace
}  // namespace kp::testing
