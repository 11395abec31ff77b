// The gateway's three backends: each a Backend (channel, bulkhead, deadline, metrics) and a
// typed client on the same channel, for the portal's aggregations.
#pragma once

#include <memory>

#include "gateway/backend.h"
#include "khartoum/events/v1/events.grpc.pb.h"
#include "khartoum/organisations/v1/organisations.grpc.pb.h"
#include "khartoum/participants/v1/participants.grpc.pb.h"

namespace kp::gateway {

struct Backends {
  std::unique_ptr<Backend> organisations, events, participants;
  std::unique_ptr<khartoum::organisations::v1::OrganisationService::Stub> organisations_api;
  std::unique_ptr<khartoum::events::v1::EventService::Stub> events_api;
  std::unique_ptr<khartoum::participants::v1::ParticipantService::Stub> participants_api;
};

}  // namespace kp::gateway
