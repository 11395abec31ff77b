// What events add to the generic resource machinery: fields, derived level, checks, and the
// existence of the organisations they name.
#pragma once

#include "common/peers.h"
#include "common/resource/crud.h"

namespace kp::events {

resource::ResourceSpec EventSpec();

class EventRules : public resource::ResourceRules {
 public:
  explicit EventRules(const OrganisationsClient* organisations) : organisations_(organisations) {}
  void Normalize(google::protobuf::Message& resource) const override;
  void Validate(const google::protobuf::Message& resource, FieldViolations& v) const override;
  absl::StatusOr<resource::TxCheck> Prepare(const google::protobuf::Message& after,
                                            const google::protobuf::Message* before,
                                            const CallInfo& call) const override;

 private:
  const OrganisationsClient* organisations_;
};

}  // namespace kp::events
