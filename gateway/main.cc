// kp-gateway: PortalService (aggregated reads) and the three backend services on one
// endpoint, with a Redis response cache.
#include <algorithm>
#include <memory>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "common/auth/authenticator.h"
#include "common/cache/generations.h"
#include "common/cache/redis_flags.h"
#include "common/channel.h"
#include "common/config.h"
#include "common/log.h"
#include "common/server.h"
#include "gateway/gateway_service.h"

ABSL_FLAG(absl::Duration, cache_ttl, absl::Seconds(60),
          "Lifetime of a cached response: bounds staleness if Redis itself misbehaves.");
ABSL_FLAG(absl::Duration, backend_timeout, absl::Seconds(10),
          "Deadline of each backend call (never beyond the caller's own deadline, less --deadline_margin).");
ABSL_FLAG(absl::Duration, deadline_margin, absl::Milliseconds(5),
          "Taken off the caller's deadline for the backend calls, so that the gateway answers (with the "
          "backend's DEADLINE_EXCEEDED) before the caller gives up.");
ABSL_FLAG(int, backend_max_in_flight, 256,
          "Calls in flight from this gateway to each backend service (a bulkhead): beyond it a call to that "
          "service is refused at once with UNAVAILABLE, so one slow service cannot take every resource.");
ABSL_FLAG(int, max_in_flight, 4096,
          "Calls in progress in this gateway at once; beyond it a call is refused with UNAVAILABLE before "
          "its request is read.");
ABSL_FLAG(int, principal_max_in_flight, 0,
          "Calls in progress one principal may have in this gateway at once (its share of --max_in_flight); "
          "beyond it its calls are refused with RESOURCE_EXHAUSTED before their requests are read, while "
          "other principals' go on. 0: a quarter of --max_in_flight.");
ABSL_FLAG(absl::Duration, send_timeout, absl::Seconds(20),
          "How long a finished call may wait for its caller to take the answer (HTTP/2 flow control: a caller "
          "that never reads): then it is cancelled, and its slot and memory freed.");
ABSL_FLAG(int, unsent_responses_mib, 96,
          "MiB of responses the gateway may hold that its callers have not read yet; beyond it calls end "
          "RESOURCE_EXHAUSTED instead of growing its memory. 0: no bound.");
ABSL_FLAG(int, unsent_responses_per_principal_mib, 24,
          "The same bound for each principal, so that one caller who does not read cannot use it all. 0: no bound.");
ABSL_FLAG(int, principal_reads, 16,
          "Requests one principal may have being read at once (each may hold up to --max_message_bytes until it is "
          "complete); its further calls wait, unread, for one to finish.");
ABSL_FLAG(int, principal_waiting_reads, 256,
          "Calls of one principal that may wait for a read (beyond, RESOURCE_EXHAUSTED).");
ABSL_FLAG(int, redis_threads, 2, "Threads driving Redis (hiredis is blocking); the cache never blocks gRPC's.");
ABSL_FLAG(absl::Duration, stats_interval, absl::Seconds(30), "How often cache counters are logged.");
ABSL_FLAG(double, rate_limit, 500,
          "Calls per second the gateway admits per principal (token bucket; `rate=` in the keys file "
          "overrides it per principal); 0: no limit.");
ABSL_FLAG(double, rate_limit_burst, 1000, "Calls a principal may make at once above --rate_limit.");
ABSL_FLAG(double, cache_store_quota, 64,
          "MiB of responses per minute one principal's calls may store in the cache (beyond it they are "
          "served, not stored); 0: no limit.");

namespace {

void LogCacheCounters(const kp::gateway::ResponseCache& cache) {
  const auto c = cache.counters();
  kp::log::Info("cache counters", {{"hits", static_cast<long long>(c.hits)},
                                   {"misses", static_cast<long long>(c.misses)},
                                   {"coalesced", static_cast<long long>(c.coalesced)},
                                   {"bypasses", static_cast<long long>(c.bypasses)},
                                   {"redis_errors", static_cast<long long>(c.redis_errors)},
                                   {"generation_reads", static_cast<long long>(c.generation_reads)},
                                   {"waiting_for_loads", static_cast<long long>(c.waiting)}});
}

}  // namespace

int main(int argc, char** argv) {
  namespace gw = kp::gateway;
  kp::config::ParseFlags(argc, argv,
                         "kp-gateway: the Khartoum Process gateway: PortalService and every backend "
                         "service on one endpoint, cached in Redis.");
  kp::config::Validator validator;
  kp::ValidateServerFlags(validator, /*calls_peers=*/true);
  kp::cache::ValidateRedisFlags(validator);
  validator.Check(absl::GetFlag(FLAGS_cache_ttl) >= absl::Seconds(1), "--cache_ttl must be at least 1s");
  validator.Check(absl::GetFlag(FLAGS_backend_timeout) > absl::ZeroDuration(), "--backend_timeout must be positive");
  validator.Check(absl::GetFlag(FLAGS_deadline_margin) >= absl::ZeroDuration() &&
                      absl::GetFlag(FLAGS_deadline_margin) <= absl::Seconds(1),
                  "--deadline_margin must be 0 to 1s");
  validator.Check(absl::GetFlag(FLAGS_backend_max_in_flight) >= 1 && absl::GetFlag(FLAGS_backend_max_in_flight) <= 100000,
                  "--backend_max_in_flight must be 1 to 100000");
  validator.Check(absl::GetFlag(FLAGS_max_in_flight) >= 1 && absl::GetFlag(FLAGS_max_in_flight) <= 1000000,
                  "--max_in_flight must be 1 to 1000000");
  validator.Check(absl::GetFlag(FLAGS_principal_max_in_flight) >= 0 &&
                      absl::GetFlag(FLAGS_principal_max_in_flight) <= absl::GetFlag(FLAGS_max_in_flight),
                  "--principal_max_in_flight must be 0 (a quarter of --max_in_flight) to --max_in_flight");
  validator.Check(absl::GetFlag(FLAGS_send_timeout) >= absl::Milliseconds(100) &&
                      absl::GetFlag(FLAGS_send_timeout) <= absl::Hours(1),
                  "--send_timeout must be 100ms to 1h");
  // (A bound below the largest message would refuse every large response.)
  for (const auto& [name, mib] : {std::pair{"--unsent_responses_mib", absl::GetFlag(FLAGS_unsent_responses_mib)},
                                  std::pair{"--unsent_responses_per_principal_mib",
                                            absl::GetFlag(FLAGS_unsent_responses_per_principal_mib)}}) {
    validator.Check(mib == 0 || (mib >= 4 && mib <= 1 << 16),
                    absl::StrCat(name, " must be 0 (no bound) or 4 (the largest message) to 65536, got ", mib));
  }
  validator.Check(absl::GetFlag(FLAGS_principal_reads) >= 1 && absl::GetFlag(FLAGS_principal_reads) <= 100000,
                  "--principal_reads must be 1 to 100000");
  validator.Check(absl::GetFlag(FLAGS_principal_waiting_reads) >= 0 &&
                      absl::GetFlag(FLAGS_principal_waiting_reads) <= 1000000,
                  "--principal_waiting_reads must be 0 to 1000000");
  validator.Check(absl::GetFlag(FLAGS_redis_threads) >= 1 && absl::GetFlag(FLAGS_redis_threads) <= 64,
                  "--redis_threads must be 1 to 64");
  validator.Check(absl::GetFlag(FLAGS_stats_interval) >= absl::Seconds(1), "--stats_interval must be at least 1s");
  validator.Check(absl::GetFlag(FLAGS_rate_limit) >= 0 && absl::GetFlag(FLAGS_rate_limit) <= 1e6,
                  "--rate_limit must be 0 (none) to 1000000 calls per second");
  validator.Check(absl::GetFlag(FLAGS_rate_limit_burst) >= 1 && absl::GetFlag(FLAGS_rate_limit_burst) <= 1e6,
                  "--rate_limit_burst must be 1 to 1000000");
  validator.Check(absl::GetFlag(FLAGS_cache_store_quota) >= 0, "--cache_store_quota must not be negative");
  validator.ExitIfInvalid("kp-gateway");
  kp::auth::InitAuthFromFlags("kp-gateway");

  std::unique_ptr<kp::cache::RedisClient> redis = kp::cache::RedisClientFromFlags();
  std::unique_ptr<kp::cache::Generations> generations;
  if (redis) {
    // The gateway bumps every generation too when it sees Redis come back after an outage.
    generations = std::make_unique<kp::cache::Generations>(redis.get(), /*owes_at_start=*/false);
  } else {
    kp::log::Warn("no --redis_address: serving uncached");
  }
  gw::ResponseCache cache(redis.get(), absl::GetFlag(FLAGS_cache_ttl), 64 << 20, absl::GetFlag(FLAGS_redis_threads));

  gw::BackendOptions backend_options;
  backend_options.timeout = absl::GetFlag(FLAGS_backend_timeout);
  backend_options.deadline_margin = absl::GetFlag(FLAGS_deadline_margin);
  backend_options.max_in_flight = absl::GetFlag(FLAGS_backend_max_in_flight);
  auto backend = [&](const char* name, const char* service, const std::string& address) {
    return std::make_unique<gw::Backend>(name, service, kp::MakeChannel(address, service), backend_options);
  };
  gw::Backends backends;
  backends.organisations = backend("organisations", "khartoum.organisations.v1.OrganisationService", kp::OrganisationsAddress());
  backends.events = backend("events", "khartoum.events.v1.EventService", kp::EventsAddress());
  backends.participants = backend("participants", "khartoum.participants.v1.ParticipantService", kp::ParticipantsAddress());
  backends.organisations_api = khartoum::organisations::v1::OrganisationService::NewStub(backends.organisations->channel());
  backends.events_api = khartoum::events::v1::EventService::NewStub(backends.events->channel());
  backends.participants_api = khartoum::participants::v1::ParticipantService::NewStub(backends.participants->channel());

  gw::RateLimiter limiter(absl::GetFlag(FLAGS_rate_limit), absl::GetFlag(FLAGS_rate_limit_burst),
                          absl::GetFlag(FLAGS_cache_store_quota) * 1048576);
  gw::ResponseBudget responses(static_cast<size_t>(absl::GetFlag(FLAGS_unsent_responses_mib)) << 20,
                               static_cast<size_t>(absl::GetFlag(FLAGS_unsent_responses_per_principal_mib)) << 20);
  gw::ReadSlots reads(absl::GetFlag(FLAGS_principal_reads), absl::GetFlag(FLAGS_principal_waiting_reads));
  kp::ServerOptions options = kp::ServerOptionsFromFlags("kp-gateway");
  const int max_in_flight = absl::GetFlag(FLAGS_max_in_flight);
  const int principal_share = absl::GetFlag(FLAGS_principal_max_in_flight);
  kp::CallSlots slots({.total = max_in_flight,
                       .per_principal = principal_share > 0 ? principal_share : std::max(1, max_in_flight / 4),
                       .per_connection = options.max_concurrent_streams});
  gw::SendDeadlines send(absl::GetFlag(FLAGS_send_timeout));
  gw::GatewayService gateway(&backends, &cache,
                             {.limiter = &limiter, .slots = &slots, .reads = &reads, .responses = &responses,
                              .send = &send});

  absl::Notification stop_stats;
  std::thread stats([&] {
    while (!stop_stats.WaitForNotificationWithTimeout(absl::GetFlag(FLAGS_stats_interval))) LogCacheCounters(cache);
  });

  if (options.port < 0) options.port = 50050;
  if (options.metrics_port < 0) options.metrics_port = 9090;
  options.health_services = gateway.services();
  options.generic_service = &gateway;
  // A request stream's window stays at HTTP/2's initial 64 KiB until its read starts (see
  // read_slots.h): without BDP probing gRPC does not raise it for calls that wait.
  options.channel_args.emplace_back(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  kp::log::Info("starting", {{"server", "kp-gateway"},
                             {"redis", redis ? redis->address() : "none (uncached)"},
                             {"organisations", kp::OrganisationsAddress()},
                             {"events", kp::EventsAddress()},
                             {"participants", kp::ParticipantsAddress()}});
  const int rc = kp::RunServer(options, {});
  stop_stats.Notify();
  stats.join();
  LogCacheCounters(cache);
  return rc;
}
