// Server bootstrap shared by every binary: listening port, health, reflection, keepalive,
// max connection age, one JSON log line per call, graceful drain on SIGTERM/SIGINT.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>

#include "absl/time/time.h"

namespace kp {

struct ServerOptions {
  std::string name;              // binary name, in logs
  std::string host = "0.0.0.0";
  int port = 0;                  // 0 = pick a free port
  std::string port_file;         // if set, the bound port is written here once serving
  absl::Duration drain_timeout = absl::Seconds(10);
  // After SIGTERM, how long to keep serving while health says NOT_SERVING, so that load
  // balancers and health-watching clients move away before the server stops accepting calls.
  absl::Duration lame_duck = absl::ZeroDuration();
  absl::Duration max_connection_age = absl::Minutes(5);
  absl::Duration keepalive_time = absl::Seconds(30);
  int max_message_bytes = 4 * 1024 * 1024;
  int max_concurrent_streams = 1000;  // per connection
  int max_health_watches = 1000;      // grpc.health.v1 Watch streams open at once
  int metrics_port = 0;          // Prometheus /metrics over HTTP; 0 = none
  int probe_port = 0;            // plaintext grpc.health.v1 only, for Kubernetes probes; 0 = none
  // Full names of the services served, each reported by grpc.health.v1 on its own.
  std::vector<std::string> health_services;
  // More integer channel arguments for the server (GRPC_ARG_...).
  std::vector<std::pair<std::string, int>> channel_args;
  // Served after `services` for every other method (the gateway's one generic service); may be null.
  grpc::CallbackGenericService* generic_service = nullptr;
};

// ServerOptions from the common flags (--host, --port, --port_file, --drain_timeout, ...).
ServerOptions ServerOptionsFromFlags(std::string name);
// Validates the common server flags (TLS and authentication included); `calls_peers`: this
// process also calls other servers, so it needs client TLS settings.
namespace config { class Validator; }
void ValidateServerFlags(config::Validator& v, bool calls_peers);

// Builds and runs a server until SIGTERM or SIGINT, then: health NOT_SERVING, keep serving for
// lame_duck, stop accepting, let in-flight calls finish within drain_timeout, call
// `on_drained`, return 0.
int RunServer(const ServerOptions& options, const std::vector<grpc::Service*>& services,
              std::function<void()> on_drained = {});

// Thread count for blocking work, from --workers.
int WorkerThreadsFromFlags();

}  // namespace kp
