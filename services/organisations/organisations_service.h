// The OrganisationService RPC boundary: the seven standard methods over the generic machinery.
#pragma once

#include "common/resource/standard_methods.h"
#include "common/worker_pool.h"
#include "khartoum/organisations/v1/organisations.grpc.pb.h"
#include "services/organisations/organisation_rules.h"

namespace kp::organisations {

namespace v1 = khartoum::organisations::v1;

class OrganisationsService final : public v1::OrganisationService::CallbackService {
 public:
  OrganisationsService(storage::Database* db, WorkerPool* pool)
      : pool_(pool), repo_(db, OrganisationSpec()), crud_(&repo_, &rules_) {}

  KP_STANDARD_METHODS(v1, Organisation, Organisations, crud_)

 private:
  WorkerPool* pool_;
  resource::Repository repo_;
  OrganisationRules rules_;
  resource::Crud crud_;
};

}  // namespace kp::organisations
