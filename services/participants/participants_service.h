// The ParticipantService RPC boundary: standard methods for participants and registrations,
// SummarizeRegistrations and SummarizeParticipation.
#pragma once

#include "common/peers.h"
#include "common/resource/audit_log.h"
#include "common/resource/standard_methods.h"
#include "common/service_main.h"
#include "common/worker_pool.h"
#include "khartoum/participants/v1/participants.grpc.pb.h"
#include "services/participants/participant_rules.h"
#include "services/participants/registration_summary.h"

namespace kp::participants {

namespace v1 = khartoum::participants::v1;

class ParticipantsService final : public v1::ParticipantService::CallbackService {
 public:
  ParticipantsService(const ServiceContext& ctx, const OrganisationsClient* organisations,
                      const EventsClient* events)
      : db_(ctx.db),
        pool_(ctx.pool),
        participant_repo_(ctx.db, ParticipantSpec()),
        registration_repo_(ctx.db, RegistrationSpec()),
        participant_rules_(organisations),
        registration_rules_(events, &participant_repo_),
        participants_(&participant_repo_, &participant_rules_),
        registrations_(&registration_repo_, &registration_rules_) {
    participant_repo_.OnCommit(ctx.after_commit);
    registration_repo_.OnCommit(ctx.after_commit);
  }

  KP_STANDARD_METHODS(v1, Participant, Participants, participants_)
  KP_CREATE_METHOD(v1, Registration, registrations_)
  KP_BATCH_CREATE_METHOD(v1, Registrations, registrations_)
  KP_GET_METHOD(v1, Registration, registrations_)
  KP_LIST_METHOD(v1, Registrations, registrations_)
  KP_UPDATE_METHOD(v1, Registration, registrations_)
  KP_DELETE_METHOD(v1, Registration, registrations_)

  grpc::ServerUnaryReactor* SummarizeRegistrations(grpc::CallbackServerContext* ctx,
                                                   const v1::SummarizeRegistrationsRequest* req,
                                                   v1::SummarizeRegistrationsResponse* resp) override {
    return Serve(ctx, *pool_, "SummarizeRegistrations", [=, this](const CallInfo&) {
      return participants::SummarizeRegistrations(*db_, *req, resp);
    });
  }

  grpc::ServerUnaryReactor* SummarizeParticipation(grpc::CallbackServerContext* ctx,
                                                   const v1::SummarizeParticipationRequest* req,
                                                   v1::SummarizeParticipationResponse* resp) override {
    return Serve(ctx, *pool_, "SummarizeParticipation", [=, this](const CallInfo&) {
      return participants::SummarizeParticipation(*db_, *req, resp);
    });
  }

  KP_AUDIT_METHOD(v1)

 private:
  storage::Database* db_;
  WorkerPool* pool_;
  resource::Repository participant_repo_;
  resource::Repository registration_repo_;
  ParticipantRules participant_rules_;
  RegistrationRules registration_rules_;
  resource::Crud participants_;
  resource::Crud registrations_;
};

}  // namespace kp::participants
