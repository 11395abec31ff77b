// libFuzzer target: request validation. The first byte picks a request type; the rest is
// parsed as that protobuf message and its resource is normalised and validated by the
// service's rules, as the standard methods do. Properties: never crashes; a resource that
// validates has the invariants validation promises.
#include <cstdlib>

#include "common/resource/reflection.h"
#include "common/resource/validation.h"
#include "khartoum/events/v1/events.pb.h"
#include "khartoum/organisations/v1/organisations.pb.h"
#include "khartoum/participants/v1/participants.pb.h"
#include "services/events/event_rules.h"
#include "services/organisations/organisation_rules.h"
#include "services/participants/participant_rules.h"

namespace {

template <typename Request, typename Resource, typename Rules>
void Check(const uint8_t* data, size_t size, Resource* (Request::*resource)(), const Rules& rules) {
  Request req;
  if (!req.ParseFromArray(data, static_cast<int>(size))) return;
  Resource* r = (req.*resource)();
  rules.Normalize(*r);
  kp::FieldViolations v;
  rules.Validate(*r, v);
  const absl::Status status = v.ToStatus();
  if (!v.empty() && status.code() != absl::StatusCode::kInvalidArgument) std::abort();
  if (kp::GetFieldViolations(status).size() != v.list().size()) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  static const kp::organisations::OrganisationRules organisation_rules;
  static const kp::events::EventRules event_rules(nullptr);
  static const kp::participants::ParticipantRules participant_rules(nullptr);
  static const kp::participants::RegistrationRules registration_rules(nullptr, nullptr);
  namespace ov1 = khartoum::organisations::v1;
  namespace ev1 = khartoum::events::v1;
  namespace pv1 = khartoum::participants::v1;
  const uint8_t* body = data + 1;
  const size_t n = size - 1;
  switch (data[0] % 4) {
    case 0: Check(body, n, &ov1::CreateOrganisationRequest::mutable_organisation, organisation_rules); break;
    case 1: {
      Check(body, n, &ev1::CreateEventRequest::mutable_event, event_rules);
      ev1::CreateEventRequest req;
      if (req.ParseFromArray(body, static_cast<int>(n))) {
        kp::FieldViolations v;
        event_rules.Normalize(*req.mutable_event());
        event_rules.Validate(req.event(), v);
        // A valid event has real dates in order.
        if (v.empty() && kp::resource::DateString(req.event().end_date()) < kp::resource::DateString(req.event().start_date())) {
          std::abort();
        }
      }
      break;
    }
    case 2: Check(body, n, &pv1::CreateParticipantRequest::mutable_participant, participant_rules); break;
    case 3: Check(body, n, &pv1::CreateRegistrationRequest::mutable_registration, registration_rules); break;
  }
  return 0;
}
