// What participants and registrations add to the generic resource machinery.
#pragma once

#include "common/peers.h"
#include "common/resource/crud.h"

namespace kp::participants {

resource::ResourceSpec ParticipantSpec();
resource::ResourceSpec RegistrationSpec();

// Registrars write participants of their own organisation only, and see the personal data
// (email, phone) of those only; editors and admins see and write all.
class ParticipantRules : public resource::ResourceRules {
 public:
  explicit ParticipantRules(const OrganisationsClient* organisations) : organisations_(organisations) {}
  void Validate(const google::protobuf::Message& resource, FieldViolations& v) const override;
  absl::Status AuthorizeWrite(const auth::Principal& p, const google::protobuf::Message& after,
                              const google::protobuf::Message* before) const override;
  void Redact(const auth::Principal& p, google::protobuf::Message& resource) const override;
  absl::StatusOr<resource::TxCheck> Prepare(const google::protobuf::Message& after,
                                            const google::protobuf::Message* before,
                                            const CallInfo& call) const override;

 private:
  const OrganisationsClient* organisations_;
};

// A registration is live unless cancelled or deleted. Becoming live (create, un-cancel)
// needs an existing, not cancelled event, an existing participant, no other live
// registration of that participant for the event, and a free place when the event has a
// capacity. The last three are checked inside the write transaction, so concurrent
// registrations can never exceed the capacity.
// Registrars write registrations of their own organisation's participants only.
class RegistrationRules : public resource::ResourceRules {
 public:
  RegistrationRules(const EventsClient* events, resource::Repository* participants)
      : events_(events), participants_(participants) {}
  absl::Status AuthorizeWrite(const auth::Principal& p, const google::protobuf::Message& after,
                              const google::protobuf::Message* before) const override;
  void Normalize(google::protobuf::Message& resource) const override;
  void Validate(const google::protobuf::Message& resource, FieldViolations& v) const override;
  absl::StatusOr<resource::TxCheck> Prepare(const google::protobuf::Message& after,
                                            const google::protobuf::Message* before,
                                            const CallInfo& call) const override;

 private:
  const EventsClient* events_;
  resource::Repository* participants_;
};

}  // namespace kp::participants
