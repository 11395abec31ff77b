// The OrganisationService RPC boundary: the seven standard methods over the generic machinery.
#pragma once

#include "common/resource/audit_log.h"
#include "common/resource/standard_methods.h"
#include "common/service_main.h"
#include "common/worker_pool.h"
#include "khartoum/organisations/v1/organisations.grpc.pb.h"
#include "services/organisations/organisation_rules.h"

namespace kp::organisations {

namespace v1 = khartoum::organisations::v1;

class OrganisationsService final : public v1::OrganisationService::CallbackService {
 public:
  explicit OrganisationsService(const ServiceContext& ctx)
      : db_(ctx.db), pool_(ctx.pool), repo_(ctx.db, OrganisationSpec()), crud_(&repo_, &rules_) {
    repo_.OnCommit(ctx.after_commit);
  }

  KP_STANDARD_METHODS(v1, Organisation, Organisations, crud_)
  KP_AUDIT_METHOD(v1)

 private:
  storage::Database* db_;
  WorkerPool* pool_;
  resource::Repository repo_;
  OrganisationRules rules_;
  resource::Crud crud_;
};

}  // namespace kp::organisations
