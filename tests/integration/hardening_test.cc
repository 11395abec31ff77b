// Hostile input against the real binaries (authentication required, Redis, gateway): page
// tokens signed with a known key but carrying garbage, request ids reused across principals and
// payloads, request bytes that do not parse, non-ASCII in filter errors, and aggregates larger
// than one backend page. Every answer is a clear error or a complete result; no process dies.
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

TEST(Hardening, ARegistrarReusingAnEditorsRequestIdGetsNothingOfTheEditors) {
  Suite& s = K().suite();
  auto orgs = ov1::OrganisationService::NewStub(Channel(s.organisations()));
  for (const char* id : {"h-org-a", "h-org-b"}) {
    ov1::CreateOrganisationRequest req = NewOrganisation(id, "");
    req.set_organisation_id(id);
    ov1::CreateOrganisationResponse resp;
    const grpc::Status st = orgs->CreateOrganisation(As("admin").get(), req, &resp);
    ASSERT_TRUE(st.ok() || st.error_code() == grpc::StatusCode::ALREADY_EXISTS) << st.error_message();
  }
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

}  // namespace
}  // namespace kp::testing
