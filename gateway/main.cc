// kp-gateway: PortalService (aggregated reads) and the three backend services on one
// endpoint, with a Redis response cache.
#include <memory>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/synchronization/notification.h"
#include "common/auth/authenticator.h"
#include "common/cache/generations.h"
#include "common/cache/redis_flags.h"
#include "common/channel.h"
#include "common/config.h"
#include "common/log.h"
#include "common/server.h"
#include "common/service_main.h"
#include "gateway/portal_service.h"
#include "gateway/proxy.h"

ABSL_FLAG(absl::Duration, cache_ttl, absl::Seconds(60),
          "Lifetime of a cached response: bounds staleness if Redis itself misbehaves.");
ABSL_FLAG(absl::Duration, backend_timeout, absl::Seconds(10),
          "Deadline of each backend call (never beyond the caller's own deadline).");
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
                                   {"redis_errors", static_cast<long long>(c.redis_errors)}});
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
  gw::ResponseCache cache(redis.get(), absl::GetFlag(FLAGS_cache_ttl));

  gw::Backends backends;
  backends.timeout = absl::GetFlag(FLAGS_backend_timeout);
  backends.organisations_channel = kp::MakeChannel(kp::OrganisationsAddress(), "khartoum.organisations.v1.OrganisationService");
  backends.events_channel = kp::MakeChannel(kp::EventsAddress(), "khartoum.events.v1.EventService");
  backends.participants_channel = kp::MakeChannel(kp::ParticipantsAddress(), "khartoum.participants.v1.ParticipantService");
  backends.organisations = khartoum::organisations::v1::OrganisationService::NewStub(backends.organisations_channel);
  backends.events = khartoum::events::v1::EventService::NewStub(backends.events_channel);
  backends.participants = khartoum::participants::v1::ParticipantService::NewStub(backends.participants_channel);

  auto pool = std::make_unique<kp::WorkerPool>(kp::WorkerThreadsFromFlags());
  gw::RateLimiter limiter(absl::GetFlag(FLAGS_rate_limit), absl::GetFlag(FLAGS_rate_limit_burst),
                          absl::GetFlag(FLAGS_cache_store_quota) * 1048576);
  gw::PortalService portal(&backends, &cache, pool.get(), &limiter);
  gw::ProxyService organisations("khartoum.organisations.v1.OrganisationService", "organisations",
                                 backends.organisations_channel, &cache, pool.get(), backends.timeout, &limiter);
  gw::ProxyService events("khartoum.events.v1.EventService", "events", backends.events_channel, &cache,
                          pool.get(), backends.timeout, &limiter);
  gw::ProxyService participants("khartoum.participants.v1.ParticipantService", "participants",
                                backends.participants_channel, &cache, pool.get(), backends.timeout, &limiter);

  absl::Notification stop_stats;
  std::thread stats([&] {
    while (!stop_stats.WaitForNotificationWithTimeout(absl::GetFlag(FLAGS_stats_interval))) LogCacheCounters(cache);
  });

  kp::ServerOptions options = kp::ServerOptionsFromFlags("kp-gateway");
  if (options.port < 0) options.port = 50050;
  if (options.metrics_port < 0) options.metrics_port = 9090;
  options.health_services = {"khartoum.gateway.v1.PortalService", "khartoum.organisations.v1.OrganisationService",
                             "khartoum.events.v1.EventService", "khartoum.participants.v1.ParticipantService"};
  kp::log::Info("starting", {{"server", "kp-gateway"},
                             {"redis", redis ? redis->address() : "none (uncached)"},
                             {"organisations", kp::OrganisationsAddress()},
                             {"events", kp::EventsAddress()},
                             {"participants", kp::ParticipantsAddress()}});
  const int rc = kp::RunServer(options, {&portal, &organisations, &events, &participants}, [&] { pool.reset(); });
  stop_stats.Notify();
  stats.join();
  LogCacheCounters(cache);
  return rc;
}
