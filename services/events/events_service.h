// The EventService RPC boundary: the seven standard methods over the generic machinery,
// and SummarizeEvents.
#pragma once

#include "common/peers.h"
#include "common/resource/audit_log.h"
#include "common/resource/standard_methods.h"
#include "common/service_main.h"
#include "common/worker_pool.h"
#include "khartoum/events/v1/events.grpc.pb.h"
#include "services/events/event_rules.h"
#include "services/events/event_summary.h"

namespace kp::events {

namespace v1 = khartoum::events::v1;

class EventsService final : public v1::EventService::CallbackService {
 public:
  EventsService(const ServiceContext& ctx, const OrganisationsClient* organisations)
      : db_(ctx.db), pool_(ctx.pool), repo_(ctx.db, EventSpec()), rules_(organisations), crud_(&repo_, &rules_) {
    repo_.OnCommit(ctx.after_commit);
  }

  KP_STANDARD_METHODS(v1, Event, Events, crud_)

  grpc::ServerUnaryReactor* SummarizeEvents(grpc::CallbackServerContext* ctx,
                                            const v1::SummarizeEventsRequest* req,
                                            v1::SummarizeEventsResponse* resp) override {
    return Serve(ctx, *pool_, "SummarizeEvents",
                 [=, this](const CallInfo&) { return events::SummarizeEvents(*db_, *req, resp); });
  }

  KP_AUDIT_METHOD(v1)

 private:
  storage::Database* db_;
  WorkerPool* pool_;
  resource::Repository repo_;
  EventRules rules_;
  resource::Crud crud_;
};

}  // namespace kp::events
