// kp-organisations: the organisations backend service.
#include "common/service_main.h"
#include "services/organisations/organisations_service.h"

namespace kp::organisations {
const std::vector<storage::Migration>& Migrations();
}

int main(int argc, char** argv) {
  return kp::ServiceMain(argc, argv, {
      .name = "kp-organisations",
      .default_port = 50051,
      .default_metrics_port = 9091,
      .service_names = {kp::organisations::v1::OrganisationService::service_full_name()},
      .calls_peers = false,
      .usage = "kp-organisations: the Khartoum Process organisations service (gRPC).",
      .migrations = &kp::organisations::Migrations(),
      .validate = {},
      .make_services = [](kp::ServiceContext& ctx) {
        std::vector<std::unique_ptr<grpc::Service>> services;
        services.push_back(std::make_unique<kp::organisations::OrganisationsService>(ctx));
        return services;
      },
  });
}
