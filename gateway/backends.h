// The gateway's typed clients of the three backends, built once.
#pragma once

#include <memory>

#include <grpcpp/channel.h>

#include "absl/time/time.h"
#include "khartoum/events/v1/events.grpc.pb.h"
#include "khartoum/organisations/v1/organisations.grpc.pb.h"
#include "khartoum/participants/v1/participants.grpc.pb.h"

namespace kp::gateway {

struct Backends {
  std::shared_ptr<grpc::Channel> organisations_channel, events_channel, participants_channel;
  std::unique_ptr<khartoum::organisations::v1::OrganisationService::Stub> organisations;
  std::unique_ptr<khartoum::events::v1::EventService::Stub> events;
  std::unique_ptr<khartoum::participants::v1::ParticipantService::Stub> participants;
  absl::Duration timeout;  // per backend call, bounded by the caller's deadline
};

}  // namespace kp::gateway
