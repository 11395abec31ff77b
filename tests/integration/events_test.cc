// EventService against the real binaries (events -> organisations checks included).
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "tests/integration/test_util.h"

namespace kp::testing {
namespace {

ev1::Event GetEvent(const std::string& name, grpc::Status* status = nullptr) {
  ev1::GetEventRequest req;
  req.set_name(name);
  ev1::GetEventResponse resp;
  grpc::Status s = S().ev().GetEvent(Ctx().get(), req, &resp);
  if (status) *status = s;
  return resp.event();
}

std::vector<std::string> ListNames(const std::string& filter, const std::string& search = "",
                                   const std::string& order_by = "") {
  ev1::ListEventsRequest req;
  req.set_filter(filter);
  req.set_search(search);
  req.set_order_by(order_by);
  req.set_page_size(1000);
  ev1::ListEventsResponse resp;
  grpc::Status s = S().ev().ListEvents(Ctx().get(), req, &resp);
  EXPECT_TRUE(s.ok()) << filter << ": " << s.error_message();
  std::vector<std::string> names;
  for (const auto& e : resp.events()) names.push_back(e.name());
  return names;
}

TEST(Events, Create_DerivesLevelAndDefaultsStatus) {
  const auto host = CreateOrganisation(UniqueId("host"));
  ev1::CreateEventRequest req;
  *req.mutable_event() = ValidEvent(host.name());
  req.mutable_event()->set_kind(ev1::EVENT_KIND_SENIOR_OFFICIALS_MEETING);
  req.mutable_event()->set_level(ev1::EVENT_LEVEL_TECHNICAL);  // output only: ignored
  ev1::CreateEventResponse resp;
  ASSERT_TRUE(S().ev().CreateEvent(Ctx().get(), req, &resp).ok());
  EXPECT_EQ(resp.event().level(), ev1::EVENT_LEVEL_POLITICAL);
  EXPECT_EQ(resp.event().status(), ev1::EVENT_STATUS_PLANNED);

  ev1::Event patch;
  patch.set_name(resp.event().name());
  patch.set_kind(ev1::EVENT_KIND_TRAINING);
  ev1::UpdateEventRequest update;
  *update.mutable_event() = patch;
  update.mutable_update_mask()->add_paths("kind");
  ev1::UpdateEventResponse updated;
  ASSERT_TRUE(S().ev().UpdateEvent(Ctx().get(), update, &updated).ok());
  EXPECT_EQ(updated.event().level(), ev1::EVENT_LEVEL_TECHNICAL);
}

TEST(Events, Create_UnknownOrganisationIsFailedPreconditionNamingTheField) {
  const auto host = CreateOrganisation(UniqueId("host"));
  const std::string id = UniqueId("evt");
  ev1::CreateEventRequest req;
  req.set_event_id(id);
  *req.mutable_event() = ValidEvent(host.name());
  req.mutable_event()->add_partners(host.name());
  req.mutable_event()->add_partners("organisations/no-such-partner");
  ev1::CreateEventResponse resp;
  grpc::Status s = S().ev().CreateEvent(Ctx().get(), req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(ViolationFields(s), std::vector<std::string>{"event.partners[1]"});
  grpc::Status get;
  GetEvent("events/" + id, &get);
  EXPECT_EQ(get.error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST(Events, Create_ReportsEveryInvalidFieldAtOnce) {
  ev1::CreateEventRequest req;
  auto* e = req.mutable_event();
  e->mutable_start_date()->set_year(2024);
  e->mutable_start_date()->set_month(2);
  e->mutable_start_date()->set_day(30);  // no such day
  e->mutable_end_date()->set_year(2023);
  e->mutable_end_date()->set_month(1);
  e->mutable_end_date()->set_day(1);
  e->add_hosts("organisations/a");
  e->add_hosts("organisations/a");
  e->add_co_hosts("kenya");
  e->add_topics("Not A Slug");
  e->set_capacity(-1);
  e->mutable_location()->set_country_code("XK1");
  ev1::CreateEventResponse resp;
  grpc::Status s = S().ev().CreateEvent(Ctx().get(), req, &resp);
  ASSERT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  auto fields = ViolationFields(s);
  for (const char* f : {"event.title", "event.kind", "event.start_date", "event.hosts[1]",
                        "event.co_hosts[0]", "event.topics[0]", "event.capacity",
                        "event.location.country_code"}) {
    EXPECT_NE(std::find(fields.begin(), fields.end(), f), fields.end()) << f << ": " << s.error_message();
  }
}

TEST(Events, Create_EndBeforeStartIsInvalid) {
  ev1::CreateEventRequest req;
  *req.mutable_event() = ValidEvent("");
  req.mutable_event()->mutable_end_date()->set_year(2023);
  ev1::CreateEventResponse resp;
  grpc::Status s = S().ev().CreateEvent(Ctx().get(), req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ViolationFields(s), std::vector<std::string>{"event.end_date"});
}

TEST(Events, List_FiltersOnListsDatesEnumsAndLocation) {
  const auto kenya = CreateOrganisation(UniqueId("kenya"));
  const auto germany = CreateOrganisation(UniqueId("germany"), "DE");
  const std::string topic = UniqueId("topic");
  ev1::CreateEventRequest a;
  *a.mutable_event() = ValidEvent(kenya.name());
  a.mutable_event()->add_co_hosts(germany.name());
  a.mutable_event()->add_topics(topic);
  ev1::CreateEventRequest b;
  *b.mutable_event() = ValidEvent(germany.name());
  b.mutable_event()->add_co_hosts(kenya.name());
  b.mutable_event()->add_topics(topic);
  b.mutable_event()->set_kind(ev1::EVENT_KIND_TRAINING);
  b.mutable_event()->mutable_start_date()->set_year(2022);
  b.mutable_event()->mutable_end_date()->set_year(2022);
  b.mutable_event()->mutable_location()->set_country_code("DE");
  b.mutable_event()->mutable_location()->set_city("Berlin");
  ev1::CreateEventRequest c;
  *c.mutable_event() = ValidEvent(germany.name());
  ev1::CreateEventResponse ra, rb, rc;
  ASSERT_TRUE(S().ev().CreateEvent(Ctx().get(), a, &ra).ok());
  ASSERT_TRUE(S().ev().CreateEvent(Ctx().get(), b, &rb).ok());
  ASSERT_TRUE(S().ev().CreateEvent(Ctx().get(), c, &rc).ok());
  const std::string k = kenya.name();
  using V = std::vector<std::string>;
  EXPECT_EQ(ListNames(absl::StrCat("hosts:\"", k, "\" OR co_hosts:\"", k, "\"")),
            (V{ra.event().name(), rb.event().name()}));
  EXPECT_EQ(ListNames(absl::StrCat("topics:\"", topic, "\" AND start_date >= \"2023-01-01\"")),
            V{ra.event().name()});
  EXPECT_EQ(ListNames(absl::StrCat("topics:\"", topic, "\" AND kind = TRAINING")), V{rb.event().name()});
  EXPECT_EQ(ListNames(absl::StrCat("topics:\"", topic, "\" AND location.country_code = \"DE\"")),
            V{rb.event().name()});
  EXPECT_EQ(ListNames(absl::StrCat("topics:\"", topic, "\" AND level = TECHNICAL"),  "", "start_date"),
            (V{rb.event().name(), ra.event().name()}));
  EXPECT_EQ(ListNames(absl::StrCat("kind = THEMATIC_WORKSHOP AND start_date >= \"2023-01-01\" AND (hosts:\"",
                                   k, "\" OR co_hosts:\"", k, "\")")),
            V{ra.event().name()});
}

TEST(Events, List_RejectsEqualityOnListsAndBadDates) {
  for (const char* filter : {"hosts = \"organisations/x\"", "start_date > \"2024-02-30\"", "status < HELD"}) {
    ev1::ListEventsRequest req;
    req.set_filter(filter);
    ev1::ListEventsResponse resp;
    EXPECT_EQ(S().ev().ListEvents(Ctx().get(), req, &resp).error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << filter;
  }
}

TEST(Events, List_SearchRanksTitleAndDescription) {
  const std::string word = "quokkaconference";
  ev1::CreateEventRequest strong;
  *strong.mutable_event() = ValidEvent("");
  strong.mutable_event()->set_title("The " + word + " " + word);
  strong.mutable_event()->set_summary(word);
  ev1::CreateEventRequest weak;
  *weak.mutable_event() = ValidEvent("");
  weak.mutable_event()->set_description("A long description that mentions " + word +
                                        " once among many other words about migration data");
  ev1::CreateEventResponse rs, rw;
  ASSERT_TRUE(S().ev().CreateEvent(Ctx().get(), weak, &rw).ok());
  ASSERT_TRUE(S().ev().CreateEvent(Ctx().get(), strong, &rs).ok());
  EXPECT_EQ(ListNames("", word), (std::vector<std::string>{rs.event().name(), rw.event().name()}));
  EXPECT_EQ(ListNames("", "QUOKKACONF"), (std::vector<std::string>{rs.event().name(), rw.event().name()}));
}

TEST(Events, Update_ToUnknownOrganisationIsRejectedAndChangesNothing) {
  const auto host = CreateOrganisation(UniqueId("host"));
  const auto e = CreateEvent(UniqueId("evt"), {host.name()});
  ev1::UpdateEventRequest req;
  *req.mutable_event() = e;
  req.mutable_event()->add_partners("organisations/ghost");
  req.mutable_update_mask()->add_paths("partners");
  ev1::UpdateEventResponse resp;
  grpc::Status s = S().ev().UpdateEvent(Ctx().get(), req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(GetEvent(e.name()).etag(), e.etag());
}

TEST(Events, GetBatchGetDeleteUndelete) {
  const auto host = CreateOrganisation(UniqueId("host"));
  const auto a = CreateEvent(UniqueId("evt"), {host.name()});
  const auto b = CreateEvent(UniqueId("evt"), {host.name()});
  EXPECT_EQ(GetEvent(a.name()).SerializeAsString(), a.SerializeAsString());
  ev1::BatchGetEventsRequest batch;
  batch.add_names(a.name());
  batch.add_names(b.name());
  ev1::BatchGetEventsResponse batch_resp;
  ASSERT_TRUE(S().ev().BatchGetEvents(Ctx().get(), batch, &batch_resp).ok());
  EXPECT_EQ(batch_resp.events_size(), 2);

  ev1::DeleteEventRequest del;
  del.set_name(a.name());
  ev1::DeleteEventResponse del_resp;
  ASSERT_TRUE(S().ev().DeleteEvent(Ctx().get(), del, &del_resp).ok());
  EXPECT_EQ(S().ev().BatchGetEvents(Ctx().get(), batch, &batch_resp).error_code(), grpc::StatusCode::NOT_FOUND);
  ev1::UndeleteEventRequest undel;
  undel.set_name(a.name());
  ev1::UndeleteEventResponse undel_resp;
  ASSERT_TRUE(S().ev().UndeleteEvent(Ctx().get(), undel, &undel_resp).ok());
  EXPECT_TRUE(S().ev().BatchGetEvents(Ctx().get(), batch, &batch_resp).ok());
}

}  // namespace
}  // namespace kp::testing
