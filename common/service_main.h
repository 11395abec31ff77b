// The main() of every backend service: flags and their validation, the database with its
// migrations, the worker pool, peers, and the server until SIGTERM.
#pragma once

#include "common/channel.h"  // the peers' addresses

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/impl/service_type.h>

#include "common/config.h"
#include "common/storage/migrations.h"
#include "common/storage/database.h"
#include "common/worker_pool.h"

namespace kp {

struct ServiceContext {
  storage::Database* db;
  WorkerPool* pool;
  absl::Duration call_timeout;  // for calls to peer services
  // To run after every committed write: bumps this service's cache generation (a no-op
  // without --redis_address).
  std::function<void()> after_commit;
};

struct ServiceDefinition {
  std::string name;           // "kp-events"
  int default_port;           // used when --port is not given
  int default_metrics_port;   // used when --metrics_port is not given
  std::vector<std::string> service_names;  // full gRPC service names, for health
  bool calls_peers = true;                 // calls other services (needs client TLS)
  std::string usage;
  const std::vector<storage::Migration>* migrations;
  // Extra flag checks (peer addresses, ...).
  std::function<void(config::Validator&)> validate;
  // Builds the gRPC services; they live until the server has drained.
  std::function<std::vector<std::unique_ptr<grpc::Service>>(ServiceContext&)> make_services;
};

int ServiceMain(int argc, char** argv, const ServiceDefinition& definition);

}  // namespace kp
