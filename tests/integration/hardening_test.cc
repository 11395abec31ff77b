// Hostile input against the real binaries (authentication required, Redis, gateway): page
// tokens signed with a known key but carrying garbage, request ids reused across principals and
// payloads, request bytes that do not parse, non-ASCII in filter errors, and aggregates larger
// than one backend page. Every answer is a clear error or a complete result; no process dies.
#include <iostream>
#include <set>
#include <thread>

#include <grpcpp/create_channel.h>
#include <grpcpp/generic/generic_stub.h>
#include <gtest/gtest.h>

#include <google/protobuf/descriptor.h>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "common/resource/page_token.h"
#include "common/utf8.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "khartoum/gateway/v1/portal.grpc.pb.h"
#include "tests/integration/keyed_suite.h"
#include "tests/integration/test_util.h"

namespace kp::testing {
namespace {

namespace gv1 = khartoum::gateway::v1;

constexpr char kPageTokenKey[] = "hardening-test-page-token-key";

std::unique_ptr<KeyedSuite> g_keyed;

class HardeningEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    g_keyed = KeyedSuite::Start(
        {.with_redis = true, .with_gateway = true, .extra_args = {absl::StrCat("--page_token_key=", kPageTokenKey)}},
        {{"admin", "h-admin admin"},
         {"editor", "h-editor editor"},
         {"reader", "h-reader reader"},
         {"registrar", "h-registrar registrar organisations/h-org-a"}});
    ASSERT_NE(g_keyed, nullptr);
  }
  void TearDown() override { g_keyed.reset(); }
};
[[maybe_unused]] auto* const kEnv = ::testing::AddGlobalTestEnvironment(new HardeningEnvironment());

KeyedSuite& K() { return *g_keyed; }

}  // namespace

Suite& S() { return K().suite(); }

namespace {

std::unique_ptr<grpc::ClientContext> As(const std::string& who) { return K().As(who); }

std::shared_ptr<grpc::Channel> Channel(ServiceProcess& p) {
  return grpc::CreateChannel(p.address(), grpc::InsecureChannelCredentials());
}

grpc::Status RawCall(const std::shared_ptr<grpc::Channel>& channel, const std::string& method, const std::string& bytes,
                     const std::string& who) {
  return kp::testing::RawCall(channel, method, bytes, As(who).get());
}

void ExpectEveryProcessServes() {
  Suite& s = K().suite();
  for (ServiceProcess* p : {&s.organisations(), &s.events(), &s.participants(), &s.gateway()}) {
    EXPECT_TRUE(WaitForServing(p->address(), absl::Seconds(5)).ok()) << p->address() << " is not serving";
  }
}

// --- Page tokens: the key is known (it leaked, or is the public default) ----------------------

// Signed payloads that carry what no server ever encodes.
std::vector<std::string> ForgedTokens(const std::string& fingerprint) {
  const resource::PageTokenCodec codec(kPageTokenKey);
  std::vector<std::string> tokens;
  for (const std::string& body : {std::string("\x01i") + "notanumber" + std::string(1, '\0'),
                                  std::string("\x01i") + "99999999999999999999999" + std::string(1, '\0'),
                                  std::string("\x01") + "d-1" + std::string(1, '\0'),
                                  std::string("\x02s\xff\xff\xff\x7f"), std::string("\xfe")}) {
    tokens.push_back(codec.Seal(fingerprint + body));
  }
  // Well formed, but of the wrong types or number for the query's sort keys.
  tokens.push_back(codec.Encode(fingerprint, {std::string("not-a-sequence")}));
  tokens.push_back(codec.Encode(fingerprint, {int64_t{1}, int64_t{2}, int64_t{3}}));
  tokens.push_back(codec.Encode(fingerprint, {2.5}));
  return tokens;
}

TEST(Hardening, SignedGarbagePageTokensAreInvalidArgumentEverywhere) {
  Suite& s = K().suite();
  struct Target {
    std::shared_ptr<grpc::Channel> channel;
    std::string method, collection;
  };
  std::vector<Target> targets;
  for (auto* via : {&s.gateway(), static_cast<ServiceProcess*>(nullptr)}) {
    auto ch = [&](ServiceProcess& backend) { return Channel(via ? *via : backend); };
    targets.push_back({ch(s.organisations()), "/khartoum.organisations.v1.OrganisationService/ListOrganisations", "organisations"});
    targets.push_back({ch(s.events()), "/khartoum.events.v1.EventService/ListEvents", "events"});
    targets.push_back({ch(s.participants()), "/khartoum.participants.v1.ParticipantService/ListParticipants", "participants"});
    targets.push_back({ch(s.participants()), "/khartoum.participants.v1.ParticipantService/ListRegistrations", "registrations"});
  }
  int calls = 0;
  for (const auto& t : targets) {
    for (const auto& token : ForgedTokens(resource::PageTokenCodec::QueryFingerprint({t.collection, "", "", "", "0"}))) {
      // ListXRequest: page_size = 1, page_token = 2 in every list request.
      khartoum::organisations::v1::ListOrganisationsRequest req;
      req.set_page_token(token);
      const grpc::Status st = RawCall(t.channel, t.method, req.SerializeAsString(), "reader");
      EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << t.method << ": " << st.error_message();
      EXPECT_EQ(ViolationFields(st), std::vector<std::string>{"page_token"}) << t.method;
      ++calls;
    }
  }
  // The audit log's tokens, and the portal's (whose cursor offsets must stay within a page).
  for (const auto& token : ForgedTokens(resource::PageTokenCodec::QueryFingerprint({"audit", "", ""}))) {
    khartoum::organisations::v1::ListAuditEntriesRequest req;
    req.set_page_token(token);
    const grpc::Status st = RawCall(Channel(s.gateway()), "/khartoum.organisations.v1.OrganisationService/ListAuditEntries",
                                    req.SerializeAsString(), "admin");
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
  }
  const std::string search_fp = resource::PageTokenCodec::QueryFingerprint({"portal-search", "migration"});
  std::vector<std::string> search_tokens = ForgedTokens(search_fp);
  const resource::PageTokenCodec codec(kPageTokenKey);
  for (int64_t offset : {int64_t{-1}, int64_t{1001}, std::numeric_limits<int64_t>::max()}) {
    search_tokens.push_back(codec.Encode(search_fp, {std::string(""), offset, int64_t{0}, std::string(""), int64_t{0},
                                                     int64_t{0}, std::string(""), int64_t{0}, int64_t{0}}));
  }
  for (const auto& token : search_tokens) {
    gv1::SearchRequest req;
    req.set_query("migration");
    req.set_page_token(token);
    const grpc::Status st =
        RawCall(Channel(s.gateway()), "/khartoum.gateway.v1.PortalService/Search", req.SerializeAsString(), "editor");
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
    ++calls;
  }
  EXPECT_GT(calls, 70);
  ExpectEveryProcessServes();
}

// --- Request ids (AIP-155) ---------------------------------------------------------------------

ov1::CreateOrganisationRequest NewOrganisation(const std::string& display_name, const std::string& request_id) {
  ov1::CreateOrganisationRequest req;
  req.mutable_organisation()->set_display_name(display_name);
  req.mutable_organisation()->set_kind(ov1::ORGANISATION_KIND_OTHER);
  req.set_request_id(request_id);
  return req;
}

TEST(Hardening, RequestIdIsScopedToThePrincipalAndBoundToThePayload) {
  auto gw = ov1::OrganisationService::NewStub(Channel(K().suite().gateway()));
  const std::string rid = UniqueId("rid");
  ov1::CreateOrganisationResponse first, retry, other_payload, other_principal;
  ASSERT_TRUE(gw->CreateOrganisation(As("editor").get(), NewOrganisation(rid + " A", rid), &first).ok());
  // A retry: the first result, nothing new.
  ASSERT_TRUE(gw->CreateOrganisation(As("editor").get(), NewOrganisation(rid + " A", rid), &retry).ok());
  EXPECT_EQ(retry.organisation().name(), first.organisation().name());
  EXPECT_EQ(retry.organisation().etag(), first.organisation().etag());
  // The same id with another payload: refused with a reason, nothing created.
  const grpc::Status reused = gw->CreateOrganisation(As("editor").get(), NewOrganisation(rid + " B", rid), &other_payload);
  EXPECT_EQ(reused.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << reused.error_message();
  EXPECT_EQ(ErrorInfoReason(reused), "REQUEST_ID_REUSED");
  EXPECT_EQ(ViolationFields(reused), std::vector<std::string>{"request_id"});
  ov1::ListOrganisationsRequest list;
  list.set_filter(absl::StrCat("display_name = \"", rid, " B\""));
  ov1::ListOrganisationsResponse listed;
  ASSERT_TRUE(gw->ListOrganisations(As("reader").get(), list, &listed).ok());
  EXPECT_EQ(listed.organisations_size(), 0);
  // Another principal with the same id: its own request, its own resource.
  ASSERT_TRUE(gw->CreateOrganisation(As("admin").get(), NewOrganisation(rid + " C", rid), &other_principal).ok());
  EXPECT_NE(other_principal.organisation().name(), first.organisation().name());
  EXPECT_EQ(other_principal.organisation().display_name(), rid + " C");
}

// The registrar's organisation (h-org-a) and another one (h-org-b), whichever test runs first.
void EnsureRegistrarOrganisations(Suite& s) {
  auto orgs = ov1::OrganisationService::NewStub(Channel(s.organisations()));
  for (const char* id : {"h-org-a", "h-org-b"}) {
    ov1::CreateOrganisationRequest req = NewOrganisation(id, "");
    req.set_organisation_id(id);
    ov1::CreateOrganisationResponse resp;
    const grpc::Status st = orgs->CreateOrganisation(As("admin").get(), req, &resp);
    ASSERT_TRUE(st.ok() || st.error_code() == grpc::StatusCode::ALREADY_EXISTS) << st.error_message();
  }
}

TEST(Hardening, ARegistrarReusingAnEditorsRequestIdGetsNothingOfTheEditors) {
  Suite& s = K().suite();
  ASSERT_NO_FATAL_FAILURE(EnsureRegistrarOrganisations(s));
  auto people = pv1::ParticipantService::NewStub(Channel(s.gateway()));
  const std::string rid = UniqueId("rid");
  auto person = [&](const std::string& org, const std::string& email) {
    pv1::CreateParticipantRequest req;
    req.mutable_participant()->set_given_name("Amina");
    req.mutable_participant()->set_family_name("Tesfaye");
    req.mutable_participant()->set_organisation(org);
    req.mutable_participant()->set_email(email);
    req.set_request_id(rid);
    return req;
  };
  pv1::CreateParticipantResponse editors, registrars;
  ASSERT_TRUE(people->CreateParticipant(As("editor").get(), person("organisations/h-org-b", "b@example.org"), &editors).ok());
  const grpc::Status st =
      people->CreateParticipant(As("registrar").get(), person("organisations/h-org-a", "a@example.org"), &registrars);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_NE(registrars.participant().name(), editors.participant().name());
  EXPECT_EQ(registrars.participant().organisation(), "organisations/h-org-a");
  EXPECT_EQ(registrars.participant().email(), "a@example.org");
}

// --- Request bytes that do not parse -----------------------------------------------------------

TEST(Hardening, UnparsableRequestBytesAreInvalidArgumentOnEveryMethodDirectlyAndThroughTheGateway) {
  Suite& s = K().suite();
  const std::pair<const char*, ServiceProcess*> services[] = {
      {"khartoum.organisations.v1.OrganisationService", &s.organisations()},
      {"khartoum.events.v1.EventService", &s.events()},
      {"khartoum.participants.v1.ParticipantService", &s.participants()},
      {"khartoum.gateway.v1.PortalService", nullptr}};
  // A truncated length-delimited field: no proto parser accepts it.
  const std::string garbage("\x0a\x7f" "abc", 5);
  int checked = 0;
  for (const auto& [name, backend] : services) {
    const auto* service = google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(name);
    ASSERT_NE(service, nullptr) << name;
    for (int i = 0; i < service->method_count(); ++i) {
      const auto* m = service->method(i);
      const std::string path = absl::StrCat("/", name, "/", m->name());
      std::vector<std::shared_ptr<grpc::Channel>> channels{Channel(s.gateway())};
      if (backend != nullptr) channels.push_back(Channel(*backend));
      for (const auto& ch : channels) {
        const grpc::Status st = RawCall(ch, path, garbage, "admin");
        EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << path << ": " << st.error_message();
        EXPECT_NE(st.error_message().find(m->input_type()->full_name()), std::string::npos) << path << ": " << st.error_message();
        ++checked;
      }
    }
  }
  EXPECT_GE(checked, 60);
  ExpectEveryProcessServes();
}

// --- Non-ASCII in error messages ---------------------------------------------------------------

TEST(Hardening, FilterErrorsQuoteWholeCharactersInValidUtf8) {
  auto gw = ev1::EventService::NewStub(Channel(K().suite().gateway()));
  ev1::ListEventsRequest req;
  req.set_filter("\xC3\xA9t\xC3\xA9 = \"x\"");  // été = "x"
  ev1::ListEventsResponse resp;
  const grpc::Status st = gw->ListEvents(As("reader").get(), req, &resp);
  ASSERT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(utf8::IsValid(st.error_message())) << absl::CEscape(st.error_message());
  EXPECT_NE(st.error_message().find("unexpected character '\xC3\xA9'"), std::string::npos) << st.error_message();
  google::rpc::Status rpc;
  ASSERT_TRUE(rpc.ParseFromString(st.error_details()));
  EXPECT_TRUE(utf8::IsValid(rpc.message()));
  for (const auto& any : rpc.details()) {
    google::rpc::BadRequest bad;
    if (!any.UnpackTo(&bad)) continue;
    for (const auto& v : bad.field_violations()) EXPECT_TRUE(utf8::IsValid(v.description())) << absl::CEscape(v.description());
  }
}

// --- Aggregates larger than one backend page ---------------------------------------------------

TEST(Hardening, OrganisationProfileListsEveryEventBeyondOneBackendPage) {
  Suite& s = K().suite();
  auto orgs = ov1::OrganisationService::NewStub(Channel(s.organisations()));
  const std::string id = UniqueId("h-partner");
  ov1::CreateOrganisationRequest org = NewOrganisation(id, "");
  org.set_organisation_id(id);
  ov1::CreateOrganisationResponse created;
  ASSERT_TRUE(orgs->CreateOrganisation(As("editor").get(), org, &created).ok());
  auto events = ev1::EventService::NewStub(Channel(s.events()));
  constexpr int kEvents = 1050;  // more than the 1000 rows one List page may hold
  for (int first = 0; first < kEvents; first += 1000) {
    ev1::BatchCreateEventsRequest batch;
    for (int i = first; i < std::min(kEvents, first + 1000); ++i) {
      auto* r = batch.add_requests();
      *r->mutable_event() = ValidEvent(created.organisation().name());
      r->mutable_event()->set_title(absl::StrCat("Partnered event ", i));
    }
    ev1::BatchCreateEventsResponse resp;
    const grpc::Status st = events->BatchCreateEvents(As("editor").get(), batch, &resp);
    ASSERT_TRUE(st.ok()) << st.error_message();
  }
  auto portal = gv1::PortalService::NewStub(Channel(s.gateway()));
  gv1::GetOrganisationProfileRequest req;
  req.set_name(created.organisation().name());
  gv1::GetOrganisationProfileResponse profile;
  auto ctx = K().As("reader", absl::Seconds(30));
  const grpc::Status st = portal->GetOrganisationProfile(ctx.get(), req, &profile);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(profile.hosted_events_size(), kEvents);
  // In start-date order, each once.
  absl::flat_hash_set<std::string> seen;
  for (const auto& e : profile.hosted_events()) EXPECT_TRUE(seen.insert(e.name()).second) << e.name();
}

// --- Errors too large for the trailers ----------------------------------------------------------

// Errors travel in trailers that clients cap (about 8 KiB): a large one must still arrive as
// itself, not as RESOURCE_EXHAUSTED "metadata size exceeds limit".
TEST(Hardening, LargeErrorsStayWithinWhatClientsAcceptAndKeepTheirCode) {
  Suite& s = K().suite();
  auto gw = ov1::OrganisationService::NewStub(Channel(s.gateway()));
  ov1::BatchGetOrganisationsRequest get;
  for (int i = 0; i < 300; ++i) get.add_names(absl::StrCat("organisations/missing-", i, "-", UniqueId("x")));
  ov1::BatchGetOrganisationsResponse got;
  const grpc::Status missing = gw->BatchGetOrganisations(As("reader").get(), get, &got);
  EXPECT_EQ(missing.error_code(), grpc::StatusCode::NOT_FOUND) << missing.error_message();
  EXPECT_EQ(ErrorInfoReason(missing), "RESOURCES_NOT_FOUND");
  EXPECT_NE(missing.error_message().find("and 290 more"), std::string::npos) << missing.error_message();

  // A create naming 300 organisations that do not exist: the peer check's error, bounded.
  auto events = ev1::EventService::NewStub(Channel(s.gateway()));
  ev1::CreateEventRequest create;
  *create.mutable_event() = ValidEvent("");
  for (int i = 0; i < 100; ++i) {
    create.mutable_event()->add_hosts(absl::StrCat("organisations/no-host-", i));
    create.mutable_event()->add_co_hosts(absl::StrCat("organisations/no-co-host-", i));
    create.mutable_event()->add_partners(absl::StrCat("organisations/no-partner-", i));
  }
  ev1::CreateEventResponse created;
  const grpc::Status precondition = events->CreateEvent(As("editor").get(), create, &created);
  EXPECT_EQ(precondition.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << precondition.error_message();
  EXPECT_FALSE(ViolationFields(precondition).empty());

  // A batch of 1000 invalid requests: INVALID_ARGUMENT, its first violations and a count.
  ov1::BatchCreateOrganisationsRequest batch;
  for (int i = 0; i < 1000; ++i) batch.add_requests()->mutable_organisation()->set_website_uri("not a uri");
  ov1::BatchCreateOrganisationsResponse batched;
  const grpc::Status invalid = gw->BatchCreateOrganisations(As("editor").get(), batch, &batched);
  EXPECT_EQ(invalid.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << invalid.error_message();
  const std::vector<std::string> fields = ViolationFields(invalid);
  EXPECT_GT(fields.size(), 10u);
  EXPECT_LT(fields.size(), 1000u);
  EXPECT_LE(invalid.error_message().size(), 1100u);
}

// The portal skips attendees deleted since they registered, however many: the backend's
// NOT_FOUND lists them a bounded number at a time and the gateway asks again without them.
TEST(Hardening, EventOverviewSkipsHundredsOfDeletedAttendees) {
  Suite& s = K().suite();
  auto orgs = ov1::OrganisationService::NewStub(Channel(s.organisations()));
  const std::string org_id = UniqueId("h-deleted-org");
  ov1::CreateOrganisationRequest org = NewOrganisation(org_id, "");
  org.set_organisation_id(org_id);
  ov1::CreateOrganisationResponse created_org;
  ASSERT_TRUE(orgs->CreateOrganisation(As("admin").get(), org, &created_org).ok());
  auto events = ev1::EventService::NewStub(Channel(s.events()));
  ev1::CreateEventRequest event_req;
  *event_req.mutable_event() = ValidEvent(created_org.organisation().name());
  ev1::CreateEventResponse event;
  ASSERT_TRUE(events->CreateEvent(As("admin").get(), event_req, &event).ok());
  auto people = pv1::ParticipantService::NewStub(Channel(s.participants()));
  constexpr int kPeople = 130, kDeleted = 120;
  pv1::BatchCreateParticipantsRequest batch;
  for (int i = 0; i < kPeople; ++i) {
    auto* p = batch.add_requests()->mutable_participant();
    p->set_given_name("Attendee");
    p->set_family_name(absl::StrCat(i));
    p->set_organisation(created_org.organisation().name());
  }
  pv1::BatchCreateParticipantsResponse persons;
  ASSERT_TRUE(people->BatchCreateParticipants(As("admin").get(), batch, &persons).ok());
  const pv1::BatchCreateRegistrationsRequest regs = DelegatesOf(event.event().name(), persons);
  pv1::BatchCreateRegistrationsResponse registered;
  const grpc::Status st = people->BatchCreateRegistrations(As("admin").get(), regs, &registered);
  ASSERT_TRUE(st.ok()) << st.error_message();
  for (int i = 0; i < kDeleted; ++i) {
    pv1::DeleteParticipantRequest del;
    del.set_name(persons.participants(i).name());
    pv1::DeleteParticipantResponse deleted;
    ASSERT_TRUE(people->DeleteParticipant(As("admin").get(), del, &deleted).ok());
  }
  auto portal = gv1::PortalService::NewStub(Channel(s.gateway()));
  gv1::GetEventOverviewRequest req;
  req.set_name(event.event().name());
  gv1::GetEventOverviewResponse overview;
  const grpc::Status ov = portal->GetEventOverview(As("reader").get(), req, &overview);
  ASSERT_TRUE(ov.ok()) << ov.error_message();
  EXPECT_EQ(overview.attendees_size(), kPeople - kDeleted);
}

// Events as large as the rules allow (50,000 characters of description, four bytes each): lists
// page by size as well as count, aggregates list them without their descriptions, and a
// BatchGet too large for one response says so instead of failing in transport.
TEST(Hardening, ResourcesAsLargeAsAllowedNeverMakeAResponseTooLargeToSend) {
  Suite& s = K().suite();
  auto orgs = ov1::OrganisationService::NewStub(Channel(s.organisations()));
  const std::string org_id = UniqueId("h-big-host");
  ov1::CreateOrganisationRequest org = NewOrganisation(org_id, "");
  org.set_organisation_id(org_id);
  ov1::CreateOrganisationResponse host;
  ASSERT_TRUE(orgs->CreateOrganisation(As("editor").get(), org, &host).ok());
  std::string description;
  for (int i = 0; i < 50000; ++i) description += "\xF0\x9F\x8C\x8D";  // U+1F30D, 4 bytes
  auto events = ev1::EventService::NewStub(Channel(s.events()));
  constexpr int kEvents = 25;  // 25 x 200 KB: more than a 4 MiB message
  std::vector<std::string> names;
  for (int i = 0; i < kEvents; ++i) {
    ev1::CreateEventRequest req;
    *req.mutable_event() = ValidEvent(host.organisation().name());
    req.mutable_event()->set_title(absl::StrCat("Large event ", i));
    req.mutable_event()->set_description(description);
    ev1::CreateEventResponse resp;
    auto ctx = K().As("editor", absl::Seconds(30));
    const grpc::Status st = events->CreateEvent(ctx.get(), req, &resp);
    ASSERT_TRUE(st.ok()) << st.error_message();
    names.push_back(resp.event().name());
  }
  auto gw = ev1::EventService::NewStub(Channel(s.gateway()));
  // Every page fits; together they hold every event once.
  ev1::ListEventsRequest list;
  list.set_filter(absl::StrCat("hosts:\"", host.organisation().name(), "\""));
  std::set<std::string> listed;
  int pages = 0;
  do {
    ev1::ListEventsResponse page;
    auto ctx = K().As("reader", absl::Seconds(30));
    const grpc::Status st = gw->ListEvents(ctx.get(), list, &page);
    ASSERT_TRUE(st.ok()) << st.error_message();
    for (const auto& e : page.events()) {
      EXPECT_EQ(e.description().size(), description.size());
      listed.insert(e.name());
    }
    list.set_page_token(page.next_page_token());
    ++pages;
  } while (!list.page_token().empty() && pages < 50);
  EXPECT_EQ(listed.size(), static_cast<size_t>(kEvents));
  EXPECT_GT(pages, 1);
  // Aggregates list them without descriptions.
  auto portal = gv1::PortalService::NewStub(Channel(s.gateway()));
  gv1::GetOrganisationProfileRequest profile_req;
  profile_req.set_name(host.organisation().name());
  gv1::GetOrganisationProfileResponse profile;
  auto ctx = K().As("reader", absl::Seconds(30));
  const grpc::Status st = portal->GetOrganisationProfile(ctx.get(), profile_req, &profile);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(profile.hosted_events_size(), kEvents);
  for (const auto& e : profile.hosted_events()) EXPECT_TRUE(e.description().empty());
  gv1::ListEventSummariesRequest summaries_req;
  summaries_req.set_filter(absl::StrCat("hosts:\"", host.organisation().name(), "\""));
  gv1::ListEventSummariesResponse summaries;
  auto ctx2 = K().As("reader", absl::Seconds(30));
  EXPECT_TRUE(portal->ListEventSummaries(ctx2.get(), summaries_req, &summaries).ok());
  // A BatchGet of all of them does not fit one response: a clear RESOURCE_EXHAUSTED.
  ev1::BatchGetEventsRequest batch;
  for (const auto& n : names) batch.add_names(n);
  ev1::BatchGetEventsResponse got;
  auto ctx3 = K().As("reader", absl::Seconds(30));
  const grpc::Status too_big = gw->BatchGetEvents(ctx3.get(), batch, &got);
  EXPECT_EQ(too_big.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(too_big.error_message().find("ask for fewer names"), std::string::npos) << too_big.error_message();
}

// A registrar registers its participant while an editor moves that participant to another
// organisation: the registration commits before the move, or is refused; never after it.
TEST(Hardening, ARegistrarCannotRegisterAParticipantMovedAwayMeanwhile) {
  Suite& s = K().suite();
  ASSERT_NO_FATAL_FAILURE(EnsureRegistrarOrganisations(s));
  auto events = ev1::EventService::NewStub(Channel(s.events()));
  ev1::CreateEventRequest event_req;
  *event_req.mutable_event() = ValidEvent("organisations/h-org-a");
  ev1::CreateEventResponse event;
  ASSERT_TRUE(events->CreateEvent(As("admin").get(), event_req, &event).ok());
  auto people = pv1::ParticipantService::NewStub(Channel(s.participants()));
  // The sequence of `resource`'s audit entry written by `method`, or -1.
  auto sequence = [&](const std::string& resource, const std::string& method) -> int64_t {
    pv1::ListAuditEntriesRequest req;
    req.set_resource(resource);
    pv1::ListAuditEntriesResponse resp;
    if (!people->ListAuditEntries(As("admin").get(), req, &resp).ok()) return -1;
    for (const auto& e : resp.audit_entries()) {
      if (e.method() == method) return e.sequence();
    }
    return -1;
  };
  int registered = 0, refused = 0;
  for (int trial = 0; trial < 40; ++trial) {
    pv1::CreateParticipantRequest person;
    person.mutable_participant()->set_given_name("Moving");
    person.mutable_participant()->set_family_name(absl::StrCat(trial));
    person.mutable_participant()->set_organisation("organisations/h-org-a");
    pv1::CreateParticipantResponse created;
    ASSERT_TRUE(people->CreateParticipant(As("admin").get(), person, &created).ok());
    const std::string name = created.participant().name();
    grpc::Status registration;
    pv1::CreateRegistrationResponse reg;
    std::thread registrar([&] {
      pv1::CreateRegistrationRequest req;
      req.mutable_registration()->set_event(event.event().name());
      req.mutable_registration()->set_participant(name);
      req.mutable_registration()->set_role(pv1::REGISTRATION_ROLE_DELEGATE);
      registration = people->CreateRegistration(As("registrar").get(), req, &reg);
    });
    pv1::UpdateParticipantRequest move;
    move.mutable_participant()->set_name(name);
    move.mutable_participant()->set_organisation("organisations/h-org-b");
    move.mutable_update_mask()->add_paths("organisation");
    pv1::UpdateParticipantResponse moved;
    ASSERT_TRUE(people->UpdateParticipant(As("editor").get(), move, &moved).ok());
    registrar.join();
    if (!registration.ok()) {
      EXPECT_EQ(registration.error_code(), grpc::StatusCode::PERMISSION_DENIED) << registration.error_message();
      ++refused;
      continue;
    }
    ++registered;
    EXPECT_LT(sequence(reg.registration().name(), "CreateRegistration"), sequence(name, "UpdateParticipant"))
        << "trial " << trial << ": the registration committed after the participant had left the organisation";
  }
  std::cout << registered << " registered before the move, " << refused << " refused after it\n";
}

// Method names come from callers, authenticated or not: metrics must not grow a series per name.
TEST(Hardening, BogusMethodNamesShareOneMetricsSeries) {
  Suite& s = K().suite();
  for (ServiceProcess* p : {&s.gateway(), &s.events()}) {
    const size_t before = Scrape(p->metrics_port()).size();
    auto ch = Channel(*p);
    for (int i = 0; i < 2000; ++i) {
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
      (void)kp::testing::RawCall(ch, absl::StrCat("/bogus.Service", i, "/Method", UniqueId("m")), "", &ctx);
    }
    const std::string after = Scrape(p->metrics_port());
    EXPECT_LT(after.size(), before + 20000) << p->log_path();
    EXPECT_GE(SumSamples(after, "kp_grpc_server_handled_total", "method=\"unknown\""), 2000) << p->log_path();
  }
}

// x-request-id goes into the audit log and the logs: only a plain identifier is taken.
TEST(Hardening, OnlyPlainRequestIdsReachTheAuditLog) {
  auto orgs = ov1::OrganisationService::NewStub(Channel(K().suite().organisations()));
  auto audit_request_id = [&](const std::string& header) {
    auto ctx = As("editor");
    ctx->AddMetadata("x-request-id", header);
    ov1::CreateOrganisationRequest req = NewOrganisation(UniqueId("h-rid"), "");
    ov1::CreateOrganisationResponse created;
    EXPECT_TRUE(orgs->CreateOrganisation(ctx.get(), req, &created).ok());
    ov1::ListAuditEntriesRequest list;
    list.set_resource(created.organisation().name());
    ov1::ListAuditEntriesResponse entries;
    EXPECT_TRUE(orgs->ListAuditEntries(As("admin").get(), list, &entries).ok());
    return entries.audit_entries_size() == 1 ? entries.audit_entries(0).request_id() : std::string("?");
  };
  EXPECT_EQ(audit_request_id("req-2026-11-30.7"), "req-2026-11-30.7");
  EXPECT_EQ(audit_request_id("forged;principal=h-admin"), "");
  EXPECT_EQ(audit_request_id(std::string(7000, 'a')), "");
}

}  // namespace
}  // namespace kp::testing
