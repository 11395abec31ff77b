// kp-participants: the participants and registrations backend service.
#include "common/peers.h"
#include "common/service_main.h"
#include "services/participants/participants_service.h"

namespace kp::participants {
const std::vector<storage::Migration>& Migrations();
}

int main(int argc, char** argv) {
  std::unique_ptr<kp::OrganisationsClient> organisations;
  std::unique_ptr<kp::EventsClient> events;
  return kp::ServiceMain(argc, argv, {
      .name = "kp-participants",
      .default_port = 50053,
      .default_metrics_port = 9093,
      .service_names = {kp::participants::v1::ParticipantService::service_full_name()},
      .usage = "kp-participants: the Khartoum Process participants and registrations service (gRPC).",
      .migrations = &kp::participants::Migrations(),
      .validate = {},
      .make_services = [&](kp::ServiceContext& ctx) {
        organisations = std::make_unique<kp::OrganisationsClient>(kp::OrganisationsAddress(), ctx.call_timeout);
        events = std::make_unique<kp::EventsClient>(kp::EventsAddress(), ctx.call_timeout);
        std::vector<std::unique_ptr<grpc::Service>> services;
        services.push_back(std::make_unique<kp::participants::ParticipantsService>(
            ctx, organisations.get(), events.get()));
        return services;
      },
  });
}
