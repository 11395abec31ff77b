// The EventService RPC boundary: the seven standard methods over the generic machinery.
#pragma once

#include "common/peers.h"
#include "common/resource/standard_methods.h"
#include "common/worker_pool.h"
#include "khartoum/events/v1/events.grpc.pb.h"
#include "services/events/event_rules.h"

namespace kp::events {

namespace v1 = khartoum::events::v1;

class EventsService final : public v1::EventService::CallbackService {
 public:
  EventsService(storage::Database* db, WorkerPool* pool, const OrganisationsClient* organisations)
      : pool_(pool), repo_(db, EventSpec()), rules_(organisations), crud_(&repo_, &rules_) {}

  KP_STANDARD_METHODS(v1, Event, Events, crud_)

 private:
  WorkerPool* pool_;
  resource::Repository repo_;
  EventRules rules_;
  resource::Crud crud_;
};

}  // namespace kp::events
