// Integration test helpers and the shared suite.
#include "tests/integration/test_util.h"

#include <fstream>

#include <grpcpp/generic/generic_stub.h>

#include "absl/synchronization/notification.h"

#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"

namespace kp::testing {

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

grpc::Status RawCall(const std::shared_ptr<grpc::Channel>& channel, const std::string& method, const std::string& bytes,
                     grpc::ClientContext* ctx, std::string* response, std::string* cache) {
  grpc::GenericStub stub(channel);
  grpc::Slice slice(bytes);
  grpc::ByteBuffer request(&slice, 1), reply;
  grpc::Status status;
  absl::Notification done;
  stub.UnaryCall(ctx, method, grpc::StubOptions(), &request, &reply, [&](grpc::Status s) {
    status = std::move(s);
    done.Notify();
  });
  done.WaitForNotification();
  if (response != nullptr && status.ok()) {
    std::vector<grpc::Slice> slices;
    (void)reply.Dump(&slices);
    for (const auto& sl : slices) response->append(reinterpret_cast<const char*>(sl.begin()), sl.size());
  }
  if (cache != nullptr) {
    const auto& md = ctx->GetServerInitialMetadata();
    if (auto it = md.find("x-kp-cache"); it != md.end()) cache->assign(it->second.data(), it->second.size());
  }
  return status;
}

std::string ErrorInfoReason(const grpc::Status& status) {
  google::rpc::Status rpc;
  if (!rpc.ParseFromString(status.error_details())) return "";
  for (const auto& any : rpc.details()) {
    google::rpc::ErrorInfo info;
    if (any.UnpackTo(&info)) return info.reason();
  }
  return "";
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

pv1::BatchCreateRegistrationsRequest DelegatesOf(const std::string& event,
                                                  const pv1::BatchCreateParticipantsResponse& people) {
  pv1::BatchCreateRegistrationsRequest regs;
  for (const auto& p : people.participants()) {
    auto* r = regs.add_requests()->mutable_registration();
    r->set_event(event);
    r->set_participant(p.name());
    r->set_role(pv1::REGISTRATION_ROLE_DELEGATE);
  }
  return regs;
}

}  // namespace kp::testing
