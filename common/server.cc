// The shared server bootstrap: see server.h.
#include "common/server.h"

#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <atomic>
#include <fstream>
#include <thread>

#include <grpc/grpc.h>

#include <grpc/compression.h>
#include <grpcpp/security/server_credentials.h>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/auth/authenticator.h"
#include "common/call_log.h"
#include "common/tls.h"
#include "common/health.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "common/config.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/resource/page_token.h"

ABSL_FLAG(std::string, host, "0.0.0.0", "Address to listen on.");
ABSL_FLAG(int, port, -1, "Port to listen on: -1 for the binary's default, 0 for any free port (see --port_file).");
ABSL_FLAG(std::string, port_file, "", "Write the bound port to this file once serving.");
ABSL_FLAG(absl::Duration, drain_timeout, absl::Seconds(10),
          "On SIGTERM, how long in-flight calls may take to finish.");
ABSL_FLAG(absl::Duration, lame_duck, absl::ZeroDuration(),
          "On SIGTERM, how long to keep serving with health NOT_SERVING before draining (e.g. 5s on "
          "Kubernetes, so endpoints are removed first).");
ABSL_FLAG(absl::Duration, max_connection_age, absl::Minutes(5),
          "Close client connections after this age so clients rebalance to new replicas.");
ABSL_FLAG(absl::Duration, keepalive_time, absl::Seconds(30), "HTTP/2 keepalive ping interval.");
ABSL_FLAG(int, metrics_port, -1,
          "Port of the Prometheus /metrics endpoint (HTTP): -1 for the binary's default, 0 for none.");
ABSL_FLAG(int, probe_port, 0,
          "Plaintext port serving only grpc.health.v1, for Kubernetes' native gRPC probes (which cannot "
          "speak TLS); 0 for none.");
ABSL_FLAG(int, max_message_bytes, 4 * 1024 * 1024,
          "Largest request or response message accepted (bytes); larger ones get RESOURCE_EXHAUSTED.");
ABSL_FLAG(int, max_concurrent_streams, 1000, "Calls one client connection may have open at once.");
ABSL_FLAG(int, max_health_watches, 1000,
          "grpc.health.v1 Watch streams open at once (anyone may open them), 4 per connection at most; "
          "beyond, RESOURCE_EXHAUSTED (Check always answers).");
ABSL_FLAG(int, workers, 8, "Threads for blocking work (database, outbound calls).");
ABSL_FLAG(std::string, log_level, "info", "debug, info, warning or error.");

namespace kp {

ServerOptions ServerOptionsFromFlags(std::string name) {
  ServerOptions o;
  o.name = std::move(name);
  o.host = absl::GetFlag(FLAGS_host);
  o.port = absl::GetFlag(FLAGS_port);
  o.port_file = absl::GetFlag(FLAGS_port_file);
  o.drain_timeout = absl::GetFlag(FLAGS_drain_timeout);
  o.lame_duck = absl::GetFlag(FLAGS_lame_duck);
  o.max_connection_age = absl::GetFlag(FLAGS_max_connection_age);
  o.keepalive_time = absl::GetFlag(FLAGS_keepalive_time);
  o.max_message_bytes = absl::GetFlag(FLAGS_max_message_bytes);
  o.metrics_port = absl::GetFlag(FLAGS_metrics_port);
  o.probe_port = absl::GetFlag(FLAGS_probe_port);
  o.max_concurrent_streams = absl::GetFlag(FLAGS_max_concurrent_streams);
  o.max_health_watches = absl::GetFlag(FLAGS_max_health_watches);
  return o;
}

int WorkerThreadsFromFlags() { return absl::GetFlag(FLAGS_workers); }

void ValidateServerFlags(config::Validator& v, bool calls_peers) {
  tls::ValidateFlags(v, /*server=*/true, calls_peers);
  auth::ValidateAuthFlags(v);
  // Built-in secrets are public: a server exposed with TLS must have its own.
  v.Check(tls::Plaintext() || !resource::UsingBuiltInPageTokenKey(),
          "--page_token_key (KP_PAGE_TOKEN_KEY) must be set to a secret of your own when TLS is on: the "
          "built-in key is public, so anyone could sign page tokens with it (the same value on every "
          "replica; e.g. openssl rand -hex 32)");
  const int port = absl::GetFlag(FLAGS_port);
  v.Check(port >= -1 && port <= 65535, absl::StrCat("--port must be -1..65535, got ", port));
  v.Check(!absl::GetFlag(FLAGS_host).empty(), "--host must not be empty");
  v.Check(absl::GetFlag(FLAGS_drain_timeout) > absl::ZeroDuration(),
          "--drain_timeout must be positive");
  v.Check(absl::GetFlag(FLAGS_lame_duck) >= absl::ZeroDuration() &&
              absl::GetFlag(FLAGS_lame_duck) <= absl::Minutes(5),
          "--lame_duck must be between 0 and 5m");
  v.Check(absl::GetFlag(FLAGS_max_connection_age) >= absl::Seconds(1),
          "--max_connection_age must be at least 1s");
  v.Check(absl::GetFlag(FLAGS_keepalive_time) >= absl::Seconds(1),
          "--keepalive_time must be at least 1s");
  const int metrics_port = absl::GetFlag(FLAGS_metrics_port);
  v.Check(metrics_port >= -1 && metrics_port <= 65535, "--metrics_port must be -1..65535");
  const int probe_port = absl::GetFlag(FLAGS_probe_port);
  v.Check(probe_port >= 0 && probe_port <= 65535, "--probe_port must be 0..65535");
  const int max_message = absl::GetFlag(FLAGS_max_message_bytes);
  v.Check(max_message >= 64 * 1024 && max_message <= 64 * 1024 * 1024,
          "--max_message_bytes must be between 64 KiB and 64 MiB");
  const int streams = absl::GetFlag(FLAGS_max_concurrent_streams);
  v.Check(streams >= 1 && streams <= 1 << 20,
          absl::StrCat("--max_concurrent_streams must be 1 to 1048576, got ", streams));
  const int watches = absl::GetFlag(FLAGS_max_health_watches);
  v.Check(watches >= 1 && watches <= 1000000, absl::StrCat("--max_health_watches must be 1 to 1000000, got ", watches));
  const int workers = absl::GetFlag(FLAGS_workers);
  v.Check(workers >= 1 && workers <= 256, absl::StrCat("--workers must be 1..256, got ", workers));
  log::Level level;
  v.Check(log::ParseLevel(absl::GetFlag(FLAGS_log_level), &level),
          "--log_level must be debug, info, warning or error");
  log::SetMinLevel(level);
}

namespace {
int64_t Ms(absl::Duration d) { return absl::ToInt64Milliseconds(d); }

// grpc.health.v1 on the probe port: the main server's overall status, nothing else.
class ProbeHealth final : public grpc::health::v1::Health::CallbackService {
 public:
  void SetServing(bool serving) { serving_ = serving; }
  grpc::ServerUnaryReactor* Check(grpc::CallbackServerContext* ctx, const grpc::health::v1::HealthCheckRequest* req,
                                  grpc::health::v1::HealthCheckResponse* resp) override {
    auto* reactor = ctx->DefaultReactor();
    if (!req->service().empty()) {
      reactor->Finish(grpc::Status(grpc::StatusCode::NOT_FOUND, "the probe port reports the server only"));
      return reactor;
    }
    resp->set_status(serving_ ? grpc::health::v1::HealthCheckResponse::SERVING
                              : grpc::health::v1::HealthCheckResponse::NOT_SERVING);
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

 private:
  std::atomic<bool> serving_{false};
};

}  // namespace

int RunServer(const ServerOptions& options, const std::vector<grpc::Service*>& services,
              std::function<void()> on_drained) {
  // Signals are taken synchronously by this thread; every other thread (gRPC's included,
  // created below) inherits the blocked mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  if (auto status = metrics::Serve(options.host, options.metrics_port); !status.ok()) {
    log::Error("cannot serve metrics", {{"server", options.name}, {"error", status.ToString()}});
    return 1;
  }
  // Health with bounded Watch streams (gRPC's default service bounds none).
  grpc::EnableDefaultHealthCheckService(false);
  HealthService health({.watches = options.max_health_watches});

  grpc::ServerBuilder builder;
  int bound_port = 0;
  builder.AddListeningPort(absl::StrCat(options.host, ":", options.port),
                           tls::ServerCredentials(), &bound_port);
  builder.RegisterService(&health);
  for (auto* service : services) builder.RegisterService(service);
  if (options.generic_service != nullptr) builder.RegisterCallbackGenericService(options.generic_service);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, options.max_concurrent_streams);
  // Compressed requests are refused (UNIMPLEMENTED, "Compression algorithm ... is disabled"):
  // gRPC 1.51 inflates a message whole before it checks its size against the limit, so a 1 MiB
  // gzip bomb would cost 1 GiB of memory. Only identity is enabled.
  builder.AddChannelArgument(GRPC_COMPRESSION_CHANNEL_ENABLED_ALGORITHMS_BITSET, 1 << GRPC_COMPRESS_NONE);
  for (const auto& [name, value] : options.channel_args) builder.AddChannelArgument(name, value);
  builder.SetMaxReceiveMessageSize(options.max_message_bytes);
  builder.SetMaxSendMessageSize(options.max_message_bytes);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_MS, static_cast<int>(Ms(options.max_connection_age)));
  builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS, static_cast<int>(Ms(options.drain_timeout)));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, static_cast<int>(Ms(options.keepalive_time)));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10000);
  // A client pinging more often than that (with nothing else to send) is sent GOAWAY
  // ENHANCE_YOUR_CALM ("too_many_pings") at its third ping: a PING flood ends its connection.
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 2);
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(NewCallLogInterceptorFactory());
  builder.experimental().SetInterceptorCreators(std::move(interceptors));

  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || bound_port == 0) {
    log::Error("failed to start server", {{"server", options.name},
                                          {"address", absl::StrCat(options.host, ":", options.port)}});
    return 1;
  }
  // The probe server (plaintext, health only) comes up after the main one, and says NOT_SERVING
  // as soon as draining starts.
  ProbeHealth probe_health;
  std::unique_ptr<grpc::Server> probe_server;
  if (options.probe_port > 0) {
    grpc::ServerBuilder probe_builder;
    probe_builder.AddListeningPort(absl::StrCat(options.host, ":", options.probe_port), grpc::InsecureServerCredentials());
    probe_builder.RegisterService(&probe_health);
    probe_server = probe_builder.BuildAndStart();
    if (!probe_server) {
      log::Error("failed to start the probe port", {{"server", options.name}, {"probe_port", options.probe_port}});
      return 1;
    }
  }
  health.SetServingStatus(true);
  probe_health.SetServing(true);
  for (const auto& name : options.health_services) health.SetServingStatus(name, true);
  if (!options.port_file.empty()) {
    // Write then rename so a reader never sees a half-written file.
    const std::string tmp = options.port_file + ".tmp";
    { std::ofstream(tmp) << bound_port << "\n"; }
    std::rename(tmp.c_str(), options.port_file.c_str());
  }
  log::Info("serving", {{"server", options.name}, {"port", bound_port}, {"metrics_port", options.metrics_port},
                        {"tls", tls::Plaintext() ? "off (--plaintext)" : "on"},
                        {"auth", auth::CurrentAuthenticator().enabled() ? "required" : "disabled"}});

  int signal_number = 0;
  sigwait(&signals, &signal_number);
  log::Info("draining", {{"server", options.name}, {"signal", signal_number},
                         {"drain_timeout_ms", static_cast<long long>(Ms(options.drain_timeout))}});
  // NOT_SERVING first so load balancers and probes stop routing here, then drain.
  health.SetServingStatus(false);
  probe_health.SetServing(false);
  if (options.lame_duck > absl::ZeroDuration()) {
    // Still serving every call; only the health answer has changed. A second signal cuts it short.
    log::Info("lame duck", {{"server", options.name},
                            {"lame_duck_ms", static_cast<long long>(Ms(options.lame_duck))}});
    const timespec wait = absl::ToTimespec(options.lame_duck);
    sigtimedwait(&signals, nullptr, &wait);
  }
  const absl::Time deadline = absl::Now() + options.drain_timeout;
  // Shutdown stops new calls and lets running ones finish, but then also waits for every
  // client to hang up its idle connection. Once no call is left, close those at once.
  // Watch streams would hold the drain until its deadline: they end now (after NOT_SERVING).
  health.Shutdown();
  std::thread shutdown([&] { server->Shutdown(absl::ToChronoTime(deadline)); });
  while (InFlightCalls() > 0 && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(5));
  grpc_server_cancel_all_calls(server->c_server());
  shutdown.join();
  server->Wait();
  if (probe_server) probe_server->Shutdown(std::chrono::system_clock::now());
  if (on_drained) on_drained();
  log::Info("stopped", {{"server", options.name}});
  return 0;
}

}  // namespace kp
