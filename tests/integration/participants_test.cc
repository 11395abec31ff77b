// ParticipantService against the real binaries: participants, registrations with their
// capacity and uniqueness rules under concurrency, and SummarizeRegistrations.
#include <thread>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "tests/integration/test_util.h"

namespace kp::testing {
namespace {

grpc::Status Register(const std::string& event, const std::string& participant,
                      pv1::Registration* out = nullptr,
                      pv1::RegistrationRole role = pv1::REGISTRATION_ROLE_DELEGATE) {
  pv1::CreateRegistrationRequest req;
  req.mutable_registration()->set_event(event);
  req.mutable_registration()->set_participant(participant);
  req.mutable_registration()->set_role(role);
  pv1::CreateRegistrationResponse resp;
  grpc::Status s = S().part().CreateRegistration(Ctx().get(), req, &resp);
  if (out) *out = resp.registration();
  return s;
}

int LiveRegistrations(const std::string& event) {
  pv1::ListRegistrationsRequest req;
  req.set_filter(absl::StrCat("event = \"", event, "\" AND status != CANCELLED"));
  pv1::ListRegistrationsResponse resp;
  grpc::Status s = S().part().ListRegistrations(Ctx().get(), req, &resp);
  EXPECT_TRUE(s.ok()) << s.error_message();
  return resp.total_size();
}

grpc::Status SetStatus(const pv1::Registration& r, pv1::RegistrationStatus status,
                       pv1::Registration* out = nullptr) {
  pv1::UpdateRegistrationRequest req;
  req.mutable_registration()->set_name(r.name());
  req.mutable_registration()->set_status(status);
  req.mutable_update_mask()->add_paths("status");
  pv1::UpdateRegistrationResponse resp;
  grpc::Status s = S().part().UpdateRegistration(Ctx().get(), req, &resp);
  if (out) *out = resp.registration();
  return s;
}

TEST(Participants, Create_RequiresAnExistingOrganisation) {
  const std::string id = UniqueId("p");
  pv1::CreateParticipantRequest req;
  req.set_participant_id(id);
  req.mutable_participant()->set_given_name("Abebe");
  req.mutable_participant()->set_family_name("Bekele");
  req.mutable_participant()->set_organisation("organisations/not-there");
  pv1::CreateParticipantResponse resp;
  grpc::Status s = S().part().CreateParticipant(Ctx().get(), req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(ViolationFields(s), std::vector<std::string>{"participant.organisation"});
}

TEST(Participants, Create_ReportsEveryInvalidField) {
  pv1::CreateParticipantRequest req;
  req.mutable_participant()->set_email("not-an-email");
  req.mutable_participant()->set_phone("call me");
  req.mutable_participant()->set_country_code("Kenya");
  req.mutable_participant()->set_organisation("kenya");
  pv1::CreateParticipantResponse resp;
  grpc::Status s = S().part().CreateParticipant(Ctx().get(), req, &resp);
  ASSERT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  auto fields = ViolationFields(s);
  for (const char* f : {"participant.given_name", "participant.family_name", "participant.organisation",
                        "participant.country_code", "participant.email", "participant.phone"}) {
    EXPECT_NE(std::find(fields.begin(), fields.end(), f), fields.end()) << f;
  }
}

TEST(Participants, StandardMethods) {
  const auto org = CreateOrganisation(UniqueId("org"));
  const auto a = CreateParticipant(UniqueId("pa"), org.name());
  const auto b = CreateParticipant(UniqueId("pb"), org.name());
  pv1::GetParticipantRequest get;
  get.set_name(a.name());
  pv1::GetParticipantResponse got;
  ASSERT_TRUE(S().part().GetParticipant(Ctx().get(), get, &got).ok());
  EXPECT_EQ(got.participant().email(), a.email());

  pv1::BatchGetParticipantsRequest batch;
  batch.add_names(b.name());
  batch.add_names(a.name());
  pv1::BatchGetParticipantsResponse batch_resp;
  ASSERT_TRUE(S().part().BatchGetParticipants(Ctx().get(), batch, &batch_resp).ok());
  ASSERT_EQ(batch_resp.participants_size(), 2);
  EXPECT_EQ(batch_resp.participants(0).name(), b.name());

  pv1::ListParticipantsRequest list;
  list.set_filter(absl::StrCat("organisation = \"", org.name(), "\""));
  list.set_order_by("family_name desc");
  pv1::ListParticipantsResponse list_resp;
  ASSERT_TRUE(S().part().ListParticipants(Ctx().get(), list, &list_resp).ok());
  ASSERT_EQ(list_resp.participants_size(), 2);
  EXPECT_EQ(list_resp.participants(0).name(), b.name());

  pv1::UpdateParticipantRequest update;
  update.mutable_participant()->set_name(a.name());
  update.mutable_participant()->set_job_title("Chief Inspector");
  update.mutable_update_mask()->add_paths("job_title");
  pv1::UpdateParticipantResponse updated;
  ASSERT_TRUE(S().part().UpdateParticipant(Ctx().get(), update, &updated).ok());
  EXPECT_EQ(updated.participant().job_title(), "Chief Inspector");
  EXPECT_EQ(updated.participant().family_name(), a.family_name());

  update.mutable_participant()->set_organisation("organisations/not-there");
  update.mutable_update_mask()->add_paths("organisation");
  EXPECT_EQ(S().part().UpdateParticipant(Ctx().get(), update, &updated).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);

  pv1::DeleteParticipantRequest del;
  del.set_name(a.name());
  pv1::DeleteParticipantResponse del_resp;
  ASSERT_TRUE(S().part().DeleteParticipant(Ctx().get(), del, &del_resp).ok());
  EXPECT_EQ(S().part().GetParticipant(Ctx().get(), get, &got).error_code(), grpc::StatusCode::NOT_FOUND);
  pv1::UndeleteParticipantRequest undel;
  undel.set_name(a.name());
  pv1::UndeleteParticipantResponse undel_resp;
  ASSERT_TRUE(S().part().UndeleteParticipant(Ctx().get(), undel, &undel_resp).ok());
  EXPECT_TRUE(S().part().GetParticipant(Ctx().get(), get, &got).ok());
}

TEST(Registrations, Create_ChecksEventAndParticipant) {
  const auto org = CreateOrganisation(UniqueId("org"));
  const auto event = CreateEvent(UniqueId("evt"), {org.name()});
  const auto p = CreateParticipant(UniqueId("p"), org.name());
  grpc::Status s = Register("events/no-such-event", p.name());
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(ViolationFields(s), std::vector<std::string>{"registration.event"});
  s = Register(event.name(), "participants/no-such-person");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(ViolationFields(s), std::vector<std::string>{"registration.participant"});
  s = Register(event.name(), p.name(), nullptr, pv1::REGISTRATION_ROLE_UNSPECIFIED);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(LiveRegistrations(event.name()), 0);

  pv1::Registration r;
  ASSERT_TRUE(Register(event.name(), p.name(), &r).ok());
  EXPECT_EQ(r.status(), pv1::REGISTRATION_STATUS_REGISTERED);
}

TEST(Registrations, Create_RejectedForCancelledEvent) {
  const auto org = CreateOrganisation(UniqueId("org"));
  auto event = CreateEvent(UniqueId("evt"), {org.name()});
  const auto p = CreateParticipant(UniqueId("p"), org.name());
  ev1::UpdateEventRequest cancel;
  cancel.mutable_event()->set_name(event.name());
  cancel.mutable_event()->set_status(ev1::EVENT_STATUS_CANCELLED);
  cancel.mutable_update_mask()->add_paths("status");
  ev1::UpdateEventResponse cancelled;
  ASSERT_TRUE(S().ev().UpdateEvent(Ctx().get(), cancel, &cancelled).ok());
  grpc::Status s = Register(event.name(), p.name());
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(s.error_message().find("cancelled"), std::string::npos);
}

TEST(Registrations, OneLiveRegistrationPerParticipantAndEvent) {
  const auto org = CreateOrganisation(UniqueId("org"));
  const auto event = CreateEvent(UniqueId("evt"), {org.name()});
  const auto p = CreateParticipant(UniqueId("p"), org.name());
  pv1::Registration first;
  ASSERT_TRUE(Register(event.name(), p.name(), &first).ok());
  EXPECT_EQ(Register(event.name(), p.name()).error_code(), grpc::StatusCode::ALREADY_EXISTS);
  ASSERT_TRUE(SetStatus(first, pv1::REGISTRATION_STATUS_CANCELLED).ok());
  pv1::Registration second;
  ASSERT_TRUE(Register(event.name(), p.name(), &second).ok());
  // Reviving the cancelled one would make two live registrations.
  EXPECT_EQ(SetStatus(first, pv1::REGISTRATION_STATUS_CONFIRMED).error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_EQ(LiveRegistrations(event.name()), 1);
}

TEST(Registrations, FiftyConcurrentRegistrationsForCapacityTen_LeaveExactlyTen) {
  const auto org = CreateOrganisation(UniqueId("org"));
  const auto event = CreateEvent(UniqueId("evt"), {org.name()}, /*capacity=*/10);
  std::vector<std::string> people;
  for (int i = 0; i < 50; ++i) people.push_back(CreateParticipant(UniqueId("crowd"), org.name()).name());
  std::atomic<int> ok{0}, full{0}, other{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 50; ++i) {
    threads.emplace_back([&, i] {
      grpc::Status s = Register(event.name(), people[i]);
      if (s.ok()) ++ok;
      else if (s.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) ++full;
      else ++other;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 10);
  EXPECT_EQ(full.load(), 40);
  EXPECT_EQ(other.load(), 0);
  EXPECT_EQ(LiveRegistrations(event.name()), 10);
}

TEST(Registrations, BatchCreate_AllOrNoneAtCapacity) {
  const auto org = CreateOrganisation(UniqueId("org"));
  const auto event = CreateEvent(UniqueId("evt"), {org.name()}, /*capacity=*/3);
  pv1::BatchCreateRegistrationsRequest req;
  for (int i = 0; i < 5; ++i) {
    auto* r = req.add_requests()->mutable_registration();
    r->set_event(event.name());
    r->set_participant(CreateParticipant(UniqueId("b"), org.name()).name());
    r->set_role(pv1::REGISTRATION_ROLE_DELEGATE);
  }
  pv1::BatchCreateRegistrationsResponse resp;
  grpc::Status s = S().part().BatchCreateRegistrations(Ctx().get(), req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(s.error_message().find("requests[3]"), std::string::npos) << s.error_message();
  EXPECT_EQ(LiveRegistrations(event.name()), 0);
  // Three fit.
  while (req.requests_size() > 3) req.mutable_requests()->RemoveLast();
  ASSERT_TRUE(S().part().BatchCreateRegistrations(Ctx().get(), req, &resp).ok());
  EXPECT_EQ(resp.registrations_size(), 3);
  EXPECT_EQ(LiveRegistrations(event.name()), 3);
}

TEST(Registrations, BatchCreate_AsksTheEventsServiceOncePerEvent) {
  const auto org = CreateOrganisation(UniqueId("org"));
  const auto event = CreateEvent(UniqueId("evt"), {org.name()});
  pv1::BatchCreateParticipantsRequest people;
  for (int i = 0; i < 50; ++i) {
    auto* p = people.add_requests()->mutable_participant();
    p->set_given_name("Batch");
    p->set_family_name(absl::StrCat("Person ", i));
    p->set_organisation(org.name());
  }
  pv1::BatchCreateParticipantsResponse created;
  ASSERT_TRUE(S().part().BatchCreateParticipants(Ctx().get(), people, &created).ok());
  ASSERT_EQ(created.participants_size(), 50);
  pv1::BatchCreateRegistrationsRequest req;
  for (const auto& p : created.participants()) {
    auto* r = req.add_requests()->mutable_registration();
    r->set_event(event.name());
    r->set_participant(p.name());
    r->set_role(pv1::REGISTRATION_ROLE_DELEGATE);
  }
  const std::string marker = "EventService/GetEvent";
  const int before = CountLines(S().events().log_path(), marker);
  pv1::BatchCreateRegistrationsResponse resp;
  ASSERT_TRUE(S().part().BatchCreateRegistrations(Ctx().get(), req, &resp).ok());
  EXPECT_EQ(resp.registrations_size(), 50);
  EXPECT_EQ(CountLines(S().events().log_path(), marker) - before, 1);
  EXPECT_EQ(LiveRegistrations(event.name()), 50);
}

TEST(Registrations, CancellingOrDeletingFreesAPlace) {
  const auto org = CreateOrganisation(UniqueId("org"));
  const auto event = CreateEvent(UniqueId("evt"), {org.name()}, /*capacity=*/1);
  const auto a = CreateParticipant(UniqueId("a"), org.name());
  const auto b = CreateParticipant(UniqueId("b"), org.name());
  pv1::Registration ra, rb;
  ASSERT_TRUE(Register(event.name(), a.name(), &ra).ok());
  EXPECT_EQ(Register(event.name(), b.name()).error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  ASSERT_TRUE(SetStatus(ra, pv1::REGISTRATION_STATUS_CANCELLED).ok());
  ASSERT_TRUE(Register(event.name(), b.name(), &rb).ok());
  EXPECT_EQ(SetStatus(ra, pv1::REGISTRATION_STATUS_REGISTERED).error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  pv1::DeleteRegistrationRequest del;
  del.set_name(rb.name());
  pv1::DeleteRegistrationResponse del_resp;
  ASSERT_TRUE(S().part().DeleteRegistration(Ctx().get(), del, &del_resp).ok());
  EXPECT_TRUE(SetStatus(ra, pv1::REGISTRATION_STATUS_REGISTERED).ok());
}

TEST(Registrations, EventAndParticipantAreImmutable) {
  const auto org = CreateOrganisation(UniqueId("org"));
  const auto e1 = CreateEvent(UniqueId("evt"), {org.name()});
  const auto e2 = CreateEvent(UniqueId("evt"), {org.name()});
  const auto p = CreateParticipant(UniqueId("p"), org.name());
  pv1::Registration r;
  ASSERT_TRUE(Register(e1.name(), p.name(), &r).ok());
  pv1::UpdateRegistrationRequest req;
  *req.mutable_registration() = r;
  req.mutable_registration()->set_event(e2.name());
  req.mutable_update_mask()->add_paths("event");
  pv1::UpdateRegistrationResponse resp;
  grpc::Status s = S().part().UpdateRegistration(Ctx().get(), req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ViolationFields(s), std::vector<std::string>{"registration.event"});

  req.clear_update_mask();  // a full replacement may repeat, but not change, the event
  req.mutable_registration()->set_event(e1.name());
  req.mutable_registration()->set_role(pv1::REGISTRATION_ROLE_SPEAKER);
  ASSERT_TRUE(S().part().UpdateRegistration(Ctx().get(), req, &resp).ok()) ;
  EXPECT_EQ(resp.registration().role(), pv1::REGISTRATION_ROLE_SPEAKER);

  pv1::GetRegistrationRequest get;
  get.set_name(r.name());
  pv1::GetRegistrationResponse got;
  ASSERT_TRUE(S().part().GetRegistration(Ctx().get(), get, &got).ok());
  EXPECT_EQ(got.registration().event(), e1.name());
}

TEST(Registrations, SummarizeCountsLiveRegistrations) {
  const std::string host_country = "ET";
  const auto o1 = CreateOrganisation(UniqueId("o1"), host_country);
  const auto o2 = CreateOrganisation(UniqueId("o2"), "ER");
  const auto event = CreateEvent(UniqueId("evt"), {o1.name()});
  const auto other_event = CreateEvent(UniqueId("evt"), {o1.name()});
  const auto p1 = CreateParticipant(UniqueId("p"), o1.name(), "ET", pv1::GENDER_FEMALE);
  const auto p2 = CreateParticipant(UniqueId("p"), o1.name(), "ET", pv1::GENDER_MALE);
  const auto p3 = CreateParticipant(UniqueId("p"), o2.name(), "ER", pv1::GENDER_FEMALE);
  const auto p4 = CreateParticipant(UniqueId("p"), o2.name(), "SD", pv1::GENDER_FEMALE);
  pv1::Registration r4;
  ASSERT_TRUE(Register(event.name(), p1.name(), nullptr, pv1::REGISTRATION_ROLE_SPEAKER).ok());
  ASSERT_TRUE(Register(event.name(), p2.name()).ok());
  ASSERT_TRUE(Register(event.name(), p3.name()).ok());
  ASSERT_TRUE(Register(event.name(), p4.name(), &r4).ok());
  ASSERT_TRUE(SetStatus(r4, pv1::REGISTRATION_STATUS_CANCELLED).ok());  // not live: not counted
  ASSERT_TRUE(Register(other_event.name(), p4.name()).ok());

  pv1::SummarizeRegistrationsRequest req;
  req.add_events(event.name());
  req.add_events("events/nobody-registered");
  pv1::SummarizeRegistrationsResponse resp;
  ASSERT_TRUE(S().part().SummarizeRegistrations(Ctx().get(), req, &resp).ok());
  ASSERT_EQ(resp.summaries_size(), 2);
  const auto& s = resp.summaries(0);
  EXPECT_EQ(s.event(), event.name());
  EXPECT_EQ(s.total(), 3);
  EXPECT_EQ(s.country_count(), 2);
  EXPECT_EQ(s.organisation_count(), 2);
  EXPECT_EQ(s.by_role().at("REGISTRATION_ROLE_SPEAKER"), 1);
  EXPECT_EQ(s.by_role().at("REGISTRATION_ROLE_DELEGATE"), 2);
  EXPECT_EQ(s.by_status().at("REGISTRATION_STATUS_REGISTERED"), 3);
  EXPECT_EQ(s.by_status().count("REGISTRATION_STATUS_CANCELLED"), 0u);
  EXPECT_EQ(s.by_gender().at("GENDER_FEMALE"), 2);
  EXPECT_EQ(s.by_gender().at("GENDER_MALE"), 1);
  EXPECT_EQ(resp.summaries(1).total(), 0);

  req.add_events("not-a-name");
  EXPECT_EQ(S().part().SummarizeRegistrations(Ctx().get(), req, &resp).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

}  // namespace
}  // namespace kp::testing
