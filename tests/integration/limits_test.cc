// Size limits against the real binaries (authentication required, the gateway in front): errors
// naming missing resources fit in what every client accepts even with the longest ids, and every
// consumer copes with the partial lists they carry; aggregates over resources as large as the
// rules allow, or as numerous as an organisation's thousands of events, fit in one response or
// page by bytes (or say clearly that they cannot); the metrics endpoint keeps answering scrapes
// past idle connections.
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <iostream>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include <grpcpp/create_channel.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "khartoum/gateway/v1/portal.grpc.pb.h"
#include "tests/integration/keyed_suite.h"
#include "tests/integration/test_util.h"

namespace kp::testing {
namespace {

namespace gv1 = khartoum::gateway::v1;

std::unique_ptr<KeyedSuite> g_keyed;

class LimitsEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    g_keyed = KeyedSuite::Start({.with_gateway = true}, {{"admin", "s-admin admin rate=0"},
                                                         {"editor", "s-editor editor rate=0"},
                                                         {"reader", "s-reader reader rate=0"}});
    ASSERT_NE(g_keyed, nullptr);
  }
  void TearDown() override { g_keyed.reset(); }
};
[[maybe_unused]] auto* const kEnv = ::testing::AddGlobalTestEnvironment(new LimitsEnvironment());

}  // namespace

Suite& S() { return g_keyed->suite(); }

namespace {

std::unique_ptr<grpc::ClientContext> As(const std::string& who, absl::Duration deadline = absl::Seconds(60)) {
  return g_keyed->As(who, deadline);
}

// A client with gRPC's default limits (4 MiB messages, 8 KiB of metadata), as every client has.
template <typename Service>
std::unique_ptr<typename Service::Stub> StubOf(ServiceProcess& p) {
  return Service::NewStub(grpc::CreateChannel(p.address(), grpc::InsecureChannelCredentials()));
}

// A fresh id as long as ids may be (63 characters).
std::string LongId(const std::string& prefix) {
  std::string id = absl::StrCat(UniqueId(prefix), "-");
  id.resize(63, 'x');
  return id;
}

// `n` characters of four bytes each (U+1F30D).
std::string Wide(int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s += "\xF0\x9F\x8C\x8D";
  return s;
}

google::rpc::ErrorInfo ErrorInfoOf(const grpc::Status& status) {
  google::rpc::Status rpc;
  google::rpc::ErrorInfo info;
  if (rpc.ParseFromString(status.error_details())) {
    for (const auto& any : rpc.details()) {
      if (any.UnpackTo(&info)) break;
    }
  }
  return info;
}

// Small organisations with the given ids, created in batches; their names.
std::vector<std::string> NewOrganisations(const std::vector<std::string>& ids) {
  auto orgs = StubOf<ov1::OrganisationService>(S().organisations());
  std::vector<std::string> names;
  for (size_t first = 0; first < ids.size(); first += 500) {
    ov1::BatchCreateOrganisationsRequest batch;
    for (size_t i = first; i < std::min(ids.size(), first + 500); ++i) {
      auto* r = batch.add_requests();
      r->set_organisation_id(ids[i]);
      r->mutable_organisation()->set_display_name(absl::StrCat("Organisation ", ids[i]));
      r->mutable_organisation()->set_kind(ov1::ORGANISATION_KIND_OTHER);
    }
    ov1::BatchCreateOrganisationsResponse resp;
    const grpc::Status st = orgs->BatchCreateOrganisations(As("editor").get(), batch, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    for (const auto& o : resp.organisations()) names.push_back(o.name());
  }
  return names;
}

// 120 organisations as large as the rules allow (about 67 KB each: 200-character name, 10,000
// characters of description, 32 external ids of 200, all four-byte characters), created once.
const std::vector<std::string>& MaximalOrganisations() {
  static const std::vector<std::string> names = [] {
    auto orgs = StubOf<ov1::OrganisationService>(S().organisations());
    std::vector<std::string> out;
    for (int first = 0; first < 120; first += 40) {  // 40 of them: 2.7 MB, one request
      ov1::BatchCreateOrganisationsRequest batch;
      for (int i = first; i < first + 40; ++i) {
        auto* o = batch.add_requests()->mutable_organisation();
        o->set_display_name(Wide(200));
        o->set_acronym(std::string(32, 'B'));
        o->set_kind(ov1::ORGANISATION_KIND_INTERNATIONAL_ORGANISATION);
        o->set_description(Wide(10000));
        for (int j = 0; j < 32; ++j) (*o->mutable_external_ids())[absl::StrCat("registry", j)] = Wide(200);
      }
      ov1::BatchCreateOrganisationsResponse resp;
      const grpc::Status st = orgs->BatchCreateOrganisations(As("editor").get(), batch, &resp);
      EXPECT_TRUE(st.ok()) << st.error_message();
      for (const auto& o : resp.organisations()) out.push_back(o.name());
    }
    return out;
  }();
  return names;
}

// An event hosted by the first 100 maximal organisations and co-hosted by the other 20.
ev1::Event MaximalEvent() {
  const auto& orgs = MaximalOrganisations();
  ev1::Event e = ValidEvent("");
  e.set_title(Wide(300));
  e.set_summary(Wide(2000));
  for (int i = 0; i < 100; ++i) e.add_hosts(orgs[i]);
  for (int i = 100; i < 120; ++i) e.add_co_hosts(orgs[i]);
  return e;
}

// --- Errors that name missing resources -----------------------------------------------------

// 50 names of 76 bytes do not fit in the 4 KiB of details an error may carry: the list is bounded
// by bytes too, and still names the first missing ones, in order, and counts them all.
TEST(Limits, NotFoundNamesTheFirstMissingLongIdsWithinWhatClientsAccept) {
  Suite& s = S();
  std::vector<std::string> names;
  for (int i = 0; i < 100; ++i) names.push_back(absl::StrCat("participants/", LongId("l-missing")));
  for (ServiceProcess* via : {&s.participants(), &s.gateway()}) {
    auto stub = StubOf<pv1::ParticipantService>(*via);
    pv1::BatchGetParticipantsRequest req;
    for (const auto& n : names) req.add_names(n);
    pv1::BatchGetParticipantsResponse resp;
    const grpc::Status st = stub->BatchGetParticipants(As("reader").get(), req, &resp);
    ASSERT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND) << st.error_message();
    EXPECT_LE(st.error_details().size(), 4096u);
    const google::rpc::ErrorInfo info = ErrorInfoOf(st);
    ASSERT_EQ(info.reason(), "RESOURCES_NOT_FOUND") << "the error lost its details (" << via->address() << ")";
    EXPECT_EQ(info.metadata().at("count"), "100");
    const std::vector<std::string> listed = absl::StrSplit(info.metadata().at("names"), ',');
    ASSERT_GE(listed.size(), 20u);
    ASSERT_LT(listed.size(), names.size());
    for (size_t i = 0; i < listed.size(); ++i) EXPECT_EQ(listed[i], names[i]) << i;
  }
}

// The gateway learns which attendees are gone from those partial lists and asks again without
// them: any number of deleted attendees, ids as long as allowed.
TEST(Limits, EventOverviewSkipsAnyNumberOfDeletedAttendeesWithTheLongestIds) {
  Suite& s = S();
  const std::string org = NewOrganisations({LongId("l-attendees-org")})[0];
  auto events = StubOf<ev1::EventService>(s.events());
  ev1::CreateEventRequest event_req;
  *event_req.mutable_event() = ValidEvent(org);
  ev1::CreateEventResponse event;
  ASSERT_TRUE(events->CreateEvent(As("admin").get(), event_req, &event).ok());
  auto people = StubOf<pv1::ParticipantService>(s.participants());
  constexpr int kPeople = 130, kDeleted = 120;
  pv1::BatchCreateParticipantsRequest batch;
  for (int i = 0; i < kPeople; ++i) {
    auto* r = batch.add_requests();
    r->set_participant_id(LongId("l-attendee"));
    r->mutable_participant()->set_given_name("Attendee");
    r->mutable_participant()->set_family_name(absl::StrCat(i));
    r->mutable_participant()->set_organisation(org);
  }
  pv1::BatchCreateParticipantsResponse persons;
  ASSERT_TRUE(people->BatchCreateParticipants(As("admin").get(), batch, &persons).ok());
  const pv1::BatchCreateRegistrationsRequest regs = DelegatesOf(event.event().name(), persons);
  pv1::BatchCreateRegistrationsResponse registered;
  const grpc::Status st = people->BatchCreateRegistrations(As("admin").get(), regs, &registered);
  ASSERT_TRUE(st.ok()) << st.error_message();
  std::set<std::string> remaining;
  for (int i = 0; i < kPeople; ++i) {
    if (i >= kDeleted) {
      remaining.insert(persons.participants(i).name());
      continue;
    }
    pv1::DeleteParticipantRequest del;
    del.set_name(persons.participants(i).name());
    pv1::DeleteParticipantResponse deleted;
    ASSERT_TRUE(people->DeleteParticipant(As("admin").get(), del, &deleted).ok());
  }
  auto portal = StubOf<gv1::PortalService>(s.gateway());
  gv1::GetEventOverviewRequest req;
  req.set_name(event.event().name());
  gv1::GetEventOverviewResponse overview;
  const grpc::Status ov = portal->GetEventOverview(As("reader").get(), req, &overview);
  ASSERT_TRUE(ov.ok()) << ov.error_message();
  std::set<std::string> attendees;
  for (const auto& a : overview.attendees()) attendees.insert(a.participant().name());
  EXPECT_EQ(attendees, remaining);
}

// A create naming more missing organisations than one NOT_FOUND lists is still the caller's
// mistake (FAILED_PRECONDITION naming the first ones, counting them all), not the peer being
// unavailable.
TEST(Limits, CreateEventNamingManyMissingLongIdOrganisationsIsFailedPrecondition) {
  auto events = StubOf<ev1::EventService>(S().gateway());
  ev1::CreateEventRequest req;
  *req.mutable_event() = ValidEvent("");
  for (int i = 0; i < 100; ++i) req.mutable_event()->add_hosts(absl::StrCat("organisations/", LongId("l-no-host")));
  ev1::CreateEventResponse resp;
  const grpc::Status st = events->CreateEvent(As("editor").get(), req, &resp);
  ASSERT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << st.error_message();
  EXPECT_EQ(st.error_message().rfind("100 of the organisations named do not exist", 0), 0u) << st.error_message();
  const std::vector<std::string> fields = ViolationFields(st);
  ASSERT_GE(fields.size(), 10u);
  // The first hosts, in order (the last violation may say how many more did not fit).
  for (size_t i = 0; i + 1 < fields.size(); ++i) EXPECT_EQ(fields[i], absl::StrCat("event.hosts[", i, "]"));
}

// --- Aggregates over resources as large as the rules allow -----------------------------------

// The existence check of 120 organisations of 67 KB (8 MB together, more than one BatchGet
// answer may hold) is asked in parts.
TEST(Limits, CreateEventNamingMaximumSizeOrganisationsSucceeds) {
  auto events = StubOf<ev1::EventService>(S().gateway());
  ev1::CreateEventRequest req;
  *req.mutable_event() = MaximalEvent();
  ev1::CreateEventResponse resp;
  const grpc::Status st = events->CreateEvent(As("editor").get(), req, &resp);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(resp.event().hosts_size() + resp.event().co_hosts_size(), 120);
}

// An overview's organisations are full, unless together they would not fit in one response
// (120 of 67 KB: 8 MB); then they come as summaries (GetOrganisation has the rest).
TEST(Limits, EventOverviewOfMaximumSizeOrganisationsFitsOneResponse) {
  Suite& s = S();
  const auto& orgs = MaximalOrganisations();
  auto events = StubOf<ev1::EventService>(s.events());
  ev1::CreateEventRequest big_req, small_req;
  *big_req.mutable_event() = MaximalEvent();
  *small_req.mutable_event() = ValidEvent(orgs[0]);
  ev1::CreateEventResponse big, small;
  ASSERT_TRUE(events->CreateEvent(As("editor").get(), big_req, &big).ok());
  ASSERT_TRUE(events->CreateEvent(As("editor").get(), small_req, &small).ok());
  auto portal = StubOf<gv1::PortalService>(s.gateway());
  gv1::GetEventOverviewRequest req;
  req.set_name(big.event().name());
  gv1::GetEventOverviewResponse overview;
  const grpc::Status st = portal->GetEventOverview(As("reader").get(), req, &overview);
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_EQ(overview.hosts_size(), 100);
  ASSERT_EQ(overview.co_hosts_size(), 20);
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(overview.hosts(i).name(), orgs[i]);
    EXPECT_EQ(overview.hosts(i).display_name(), Wide(200));
    EXPECT_TRUE(overview.hosts(i).description().empty());
  }
  EXPECT_LE(overview.ByteSizeLong(), 4u << 20);
  std::cout << "overview of an event with 120 maximal organisations: " << overview.ByteSizeLong() << " bytes\n";

  // One such organisation fits: in full, as the API promises.
  req.set_name(small.event().name());
  gv1::GetEventOverviewResponse small_overview;
  const grpc::Status small_st = portal->GetEventOverview(As("reader").get(), req, &small_overview);
  ASSERT_TRUE(small_st.ok()) << small_st.error_message();
  ASSERT_EQ(small_overview.hosts_size(), 1);
  EXPECT_EQ(small_overview.hosts(0).description(), Wide(10000));
  EXPECT_EQ(small_overview.hosts(0).external_ids_size(), 32);
}

// 45 events with 120 hosts and co-hosts of 200-character names: 100 KB of summary each, 4.6 MB
// together. A page stops before 2 MiB, with a next_page_token, and the pages hold every event once.
TEST(Limits, EventSummaryPagesStopBeforeTheirByteLimit) {
  Suite& s = S();
  constexpr int kEvents = 45;
  auto events = StubOf<ev1::EventService>(s.events());
  ev1::BatchCreateEventsRequest batch;  // one peer check for all of them
  for (int i = 0; i < kEvents; ++i) {
    auto* r = batch.add_requests();
    *r->mutable_event() = MaximalEvent();
    r->mutable_event()->add_topics("limits-summaries");
  }
  ev1::BatchCreateEventsResponse created;
  const grpc::Status st = events->BatchCreateEvents(As("editor").get(), batch, &created);
  ASSERT_TRUE(st.ok()) << st.error_message();

  auto portal = StubOf<gv1::PortalService>(s.gateway());
  gv1::ListEventSummariesRequest req;  // the default page size: 50
  req.set_filter("topics:\"limits-summaries\"");
  std::set<std::string> listed;
  int pages = 0;
  do {
    gv1::ListEventSummariesResponse page;
    const grpc::Status list = portal->ListEventSummaries(As("reader").get(), req, &page);
    ASSERT_TRUE(list.ok()) << "page " << pages << ": " << list.error_message();
    ASSERT_GT(page.event_summaries_size(), 0);
    EXPECT_LE(page.ByteSizeLong(), (2u << 20) + (200u << 10));
    EXPECT_EQ(page.total_size(), kEvents);
    for (const auto& summary : page.event_summaries()) {
      EXPECT_TRUE(listed.insert(summary.event().name()).second) << summary.event().name();
      EXPECT_EQ(summary.host_display_names_size(), 100);
      EXPECT_EQ(summary.co_host_display_names_size(), 20);
    }
    req.set_page_token(page.next_page_token());
    ++pages;
  } while (!req.page_token().empty() && pages < 20);
  EXPECT_EQ(listed.size(), static_cast<size_t>(kEvents));
  EXPECT_GT(pages, 2);
}

// --- Aggregates over thousands of events -----------------------------------------------------

// Ordinary events (a title, a 1,000-character summary, ten partners): 1.5 KB each, 4.5 MB for
// 3,000. Listed in the profile without description and summary, they fit.
TEST(Limits, OrganisationProfileListsThousandsOfOrdinaryEvents) {
  Suite& s = S();
  std::vector<std::string> ids{LongId("l-busy")};
  for (int i = 0; i < 10; ++i) ids.push_back(UniqueId("l-partner"));
  const std::vector<std::string> orgs = NewOrganisations(ids);
  ASSERT_EQ(orgs.size(), ids.size());
  constexpr int kEvents = 3000;
  std::string summary;
  while (summary.size() < 1000) summary += "Lorem ipsum dolor sit amet, consectetur adipiscing elit. ";
  summary.resize(1000);
  auto events = StubOf<ev1::EventService>(s.events());
  for (int first = 0; first < kEvents; first += 1000) {
    ev1::BatchCreateEventsRequest batch;
    for (int i = first; i < first + 1000; ++i) {
      ev1::Event* e = batch.add_requests()->mutable_event();
      *e = ValidEvent(orgs[0]);
      e->set_title(absl::StrCat("Workshop ", i, " on border management and migration governance"));
      e->set_summary(summary);
      for (int p = 1; p <= 10; ++p) e->add_partners(orgs[p]);
      e->mutable_start_date()->set_year(2014 + i % 12);
      e->mutable_start_date()->set_month(1 + i % 12);
      e->mutable_end_date()->set_year(2014 + i % 12);
      e->mutable_end_date()->set_month(1 + i % 12);
      e->mutable_location()->set_city("Addis Ababa");
      e->mutable_location()->set_country_code("ET");
      e->mutable_location()->set_venue("UNECA Conference Centre");
      e->add_topics("border-management");
      e->add_topics("trafficking");
    }
    ev1::BatchCreateEventsResponse resp;
    const grpc::Status st = events->BatchCreateEvents(As("editor", absl::Seconds(120)).get(), batch, &resp);
    ASSERT_TRUE(st.ok()) << st.error_message();
  }
  auto portal = StubOf<gv1::PortalService>(s.gateway());
  gv1::GetOrganisationProfileRequest req;
  req.set_name(orgs[0]);
  gv1::GetOrganisationProfileResponse profile;
  const grpc::Status st = portal->GetOrganisationProfile(As("reader").get(), req, &profile);
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_EQ(profile.hosted_events_size(), kEvents);
  std::set<std::string> seen;
  for (int i = 0; i < kEvents; ++i) {
    const ev1::Event& e = profile.hosted_events(i);
    EXPECT_TRUE(seen.insert(e.name()).second) << e.name();
    EXPECT_TRUE(e.summary().empty() && e.description().empty()) << e.name();
    EXPECT_EQ(e.partners_size(), 10);
    if (i > 0) {
      const ev1::Event& p = profile.hosted_events(i - 1);
      EXPECT_LE(std::make_tuple(p.start_date().year(), p.start_date().month(), p.start_date().day()),
                std::make_tuple(e.start_date().year(), e.start_date().month(), e.start_date().day()));
    }
  }
  std::cout << "profile of an organisation hosting " << kEvents << " ordinary events: " << profile.ByteSizeLong()
            << " bytes\n";
}

// Beyond what one response holds (here 260 events each naming 200 organisations with the
// longest ids), the profile says so and what to call instead, rather than failing in transport.
TEST(Limits, OrganisationProfileTooLargeForOneResponseSaysWhatToCallInstead) {
  Suite& s = S();
  std::vector<std::string> ids{UniqueId("l-host")};
  for (int i = 0; i < 200; ++i) ids.push_back(LongId("l-many"));
  const std::vector<std::string> orgs = NewOrganisations(ids);
  ASSERT_EQ(orgs.size(), ids.size());
  constexpr int kEvents = 260;
  auto events = StubOf<ev1::EventService>(s.events());
  for (int first = 0; first < kEvents; first += 130) {
    ev1::BatchCreateEventsRequest batch;
    for (int i = first; i < first + 130; ++i) {
      ev1::Event* e = batch.add_requests()->mutable_event();
      *e = ValidEvent(orgs[0]);
      e->set_title(Wide(300));
      for (int o = 1; o <= 100; ++o) e->add_co_hosts(orgs[o]);
      for (int o = 101; o <= 200; ++o) e->add_partners(orgs[o]);
    }
    ev1::BatchCreateEventsResponse resp;
    const grpc::Status st = events->BatchCreateEvents(As("editor", absl::Seconds(120)).get(), batch, &resp);
    ASSERT_TRUE(st.ok()) << st.error_message();
  }
  auto portal = StubOf<gv1::PortalService>(s.gateway());
  gv1::GetOrganisationProfileRequest req;
  req.set_name(orgs[0]);
  gv1::GetOrganisationProfileResponse profile;
  const grpc::Status st = portal->GetOrganisationProfile(As("reader").get(), req, &profile);
  ASSERT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << st.error_message();
  EXPECT_NE(st.error_message().find(absl::StrCat("the profile of ", orgs[0], " (260 events)")), std::string::npos)
      << st.error_message();
  EXPECT_NE(st.error_message().find("ListEventSummaries"), std::string::npos) << st.error_message();
  // What it says to call lists them all.
  gv1::ListEventSummariesRequest list;
  list.set_filter(absl::StrCat("hosts:\"", orgs[0], "\""));
  list.set_page_size(1000);
  size_t listed = 0;
  do {
    gv1::ListEventSummariesResponse page;
    const grpc::Status ls = portal->ListEventSummaries(As("reader").get(), list, &page);
    ASSERT_TRUE(ls.ok()) << ls.error_message();
    listed += page.event_summaries_size();
    list.set_page_token(page.next_page_token());
  } while (!list.page_token().empty());
  EXPECT_EQ(listed, static_cast<size_t>(kEvents));
}

// --- The metrics endpoint ----------------------------------------------------------------------

int ConnectLoopback(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd >= 0 && connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) return fd;
  if (fd >= 0) close(fd);
  return -1;
}

// Reads `fd` until the peer closes it or `deadline` passes; whether it was closed.
bool ReadUntilClosed(int fd, absl::Time deadline, std::string* out) {
  char buf[8192];
  while (true) {
    const int left = static_cast<int>(absl::ToInt64Milliseconds(deadline - absl::Now()));
    if (left <= 0) return false;
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, left) <= 0) return false;
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) return true;  // closed (or reset)
    if (out != nullptr) out->append(buf, static_cast<size_t>(n));
  }
}

// Clients that open a connection and never finish their request (a slowloris, or a stuck
// scraper) must not stop Prometheus from scraping: they are dropped, and scrapes get through.
TEST(Limits, MetricsScrapesAnswerPastIdleHalfSentRequests) {
  Suite& s = S();
  for (ServiceProcess* p : {&s.events(), &s.gateway()}) {
    std::vector<int> idle;
    for (int i = 0; i < 24; ++i) {  // more than the endpoint's threads
      const int fd = ConnectLoopback(p->metrics_port());
      ASSERT_GE(fd, 0);
      const std::string half = "GET /metrics HTTP/1.1\r\nHost: localhost\r\n";  // never the blank line
      ASSERT_EQ(write(fd, half.data(), half.size()), static_cast<ssize_t>(half.size()));
      idle.push_back(fd);
    }
    const absl::Time start = absl::Now();
    const int scrape = ConnectLoopback(p->metrics_port());
    ASSERT_GE(scrape, 0);
    const std::string req = "GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n";
    ASSERT_EQ(write(scrape, req.data(), req.size()), static_cast<ssize_t>(req.size()));
    std::string response;
    EXPECT_TRUE(ReadUntilClosed(scrape, start + absl::Seconds(8), &response)) << p->log_path();
    close(scrape);
    EXPECT_NE(response.find("# TYPE kp_"), std::string::npos)
        << "no scrape within 8 s past 24 idle connections (" << p->log_path() << ")";
    std::cout << "scrape past 24 idle connections took " << absl::FormatDuration(absl::Now() - start) << "\n";
    // And the idle ones were dropped by the server, not left holding its threads.
    for (int fd : idle) {
      EXPECT_TRUE(ReadUntilClosed(fd, start + absl::Seconds(10), nullptr)) << "an idle connection was kept";
      close(fd);
    }
  }
}

}  // namespace
}  // namespace kp::testing
