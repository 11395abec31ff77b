// kp-events: the events backend service.
#include "common/peers.h"
#include "common/service_main.h"
#include "services/events/events_service.h"

namespace kp::events {
const std::vector<storage::Migration>& Migrations();
}

int main(int argc, char** argv) {
  std::unique_ptr<kp::OrganisationsClient> organisations;
  return kp::ServiceMain(argc, argv, {
      .name = "kp-events",
      .default_port = 50052,
      .default_metrics_port = 9092,
      .service_names = {kp::events::v1::EventService::service_full_name()},
      .usage = "kp-events: the Khartoum Process events service (gRPC).",
      .migrations = &kp::events::Migrations(),
      .validate = {},
      .make_services = [&](kp::ServiceContext& ctx) {
        organisations = std::make_unique<kp::OrganisationsClient>(kp::OrganisationsAddress(), ctx.call_timeout);
        std::vector<std::unique_ptr<grpc::Service>> services;
        services.push_back(std::make_unique<kp::events::EventsService>(ctx, organisations.get()));
        return services;
      },
  });
}
