// What organisations add to the generic resource machinery: their fields and checks.
#pragma once

#include "common/resource/crud.h"

namespace kp::organisations {

resource::ResourceSpec OrganisationSpec();

class OrganisationRules : public resource::ResourceRules {
 public:
  void Validate(const google::protobuf::Message& resource, FieldViolations& v) const override;
};

}  // namespace kp::organisations
