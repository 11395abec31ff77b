// Integration test helpers and the shared suite.
#include "tests/integration/test_util.h"

#include <fstream>

#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"

namespace kp::testing {
namespace {

std::unique_ptr<Suite> g_suite;

class SuiteEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
#if defined(KP_TEST_SUITE_WITH_REPLICAS)
    // Two processes per backend on one database; the gateway uncached, so reads reach them.
    g_suite = Suite::Start({.with_gateway = true, .extra_args = {"--lame_duck=1s"}, .replicas = 2});
#elif defined(KP_TEST_SUITE_WITH_GATEWAY)
    g_suite = Suite::Start({.with_redis = true, .with_gateway = true});
#else
    g_suite = Suite::Start();
#endif
    ASSERT_NE(g_suite, nullptr) << "the services did not start";
  }
  void TearDown() override { g_suite.reset(); }
};

[[maybe_unused]] auto* const kEnvironment =
    ::testing::AddGlobalTestEnvironment(new SuiteEnvironment());

}  // namespace

Suite& S() { return *g_suite; }

std::vector<std::string> ViolationFields(const grpc::Status& status) {
  std::vector<std::string> fields;
  google::rpc::Status rpc_status;
  if (!rpc_status.ParseFromString(status.error_details())) return fields;
  for (const auto& any : rpc_status.details()) {
    google::rpc::BadRequest bad_request;
    if (any.UnpackTo(&bad_request)) {
      for (const auto& v : bad_request.field_violations()) fields.push_back(v.field());
    }
  }
  return fields;
}

int CountLines(const std::string& path, const std::string& needle) {
  std::ifstream in(path);
  std::string line;
  int n = 0;
  while (std::getline(in, line)) n += line.find(needle) != std::string::npos;
  return n;
}

ov1::Organisation CreateOrganisation(const std::string& id, const std::string& country) {
  ov1::CreateOrganisationRequest req;
  req.set_organisation_id(id);
  req.mutable_organisation()->set_display_name("Organisation " + id);
  req.mutable_organisation()->set_kind(ov1::ORGANISATION_KIND_GOVERNMENT);
  req.mutable_organisation()->set_country_code(country);
  ov1::CreateOrganisationResponse resp;
  grpc::Status s = S().org().CreateOrganisation(Ctx().get(), req, &resp);
  EXPECT_TRUE(s.ok()) << s.error_message();
  return resp.organisation();
}

ev1::Event ValidEvent(const std::string& host) {
  ev1::Event e;
  e.set_title("Thematic Workshop on Test Data");
  e.set_kind(ev1::EVENT_KIND_THEMATIC_WORKSHOP);
  e.mutable_start_date()->set_year(2024);
  e.mutable_start_date()->set_month(2);
  e.mutable_start_date()->set_day(7);
  e.mutable_end_date()->set_year(2024);
  e.mutable_end_date()->set_month(2);
  e.mutable_end_date()->set_day(8);
  e.mutable_location()->set_city("Nairobi");
  e.mutable_location()->set_country_code("KE");
  if (!host.empty()) e.add_hosts(host);
  return e;
}

ev1::Event CreateEvent(const std::string& id, const std::vector<std::string>& hosts, int capacity) {
  ev1::CreateEventRequest req;
  req.set_event_id(id);
  *req.mutable_event() = ValidEvent("");
  for (const auto& h : hosts) req.mutable_event()->add_hosts(h);
  req.mutable_event()->set_capacity(capacity);
  req.mutable_event()->set_status(ev1::EVENT_STATUS_REGISTRATION_OPEN);
  ev1::CreateEventResponse resp;
  grpc::Status s = S().ev().CreateEvent(Ctx().get(), req, &resp);
  EXPECT_TRUE(s.ok()) << s.error_message();
  return resp.event();
}

pv1::Participant CreateParticipant(const std::string& id, const std::string& organisation,
                                   const std::string& country, pv1::Gender gender) {
  pv1::CreateParticipantRequest req;
  req.set_participant_id(id);
  auto* p = req.mutable_participant();
  p->set_given_name("Amina");
  p->set_family_name("Participant " + id);
  p->set_organisation(organisation);
  p->set_country_code(country);
  p->set_gender(gender);
  p->set_email(id + "@example.org");
  pv1::CreateParticipantResponse resp;
  grpc::Status s = S().part().CreateParticipant(Ctx().get(), req, &resp);
  EXPECT_TRUE(s.ok()) << s.error_message();
  return resp.participant();
}

}  // namespace kp::testing
