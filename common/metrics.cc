// Metrics on prometheus-cpp: see metrics.h.
#include "common/metrics.h"

#include <array>
#include <memory>

#include <google/protobuf/descriptor.h>

#include <prometheus/counter.h>
#include <prometheus/exposer.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/synchronization/mutex.h"
#include "common/status.h"

namespace kp::metrics {
namespace {

const prometheus::Histogram::BucketBoundaries& LatencyBuckets() {
  static const auto* b = new prometheus::Histogram::BucketBoundaries{
      0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
  return *b;
}


struct State {
  std::shared_ptr<prometheus::Registry> registry = std::make_shared<prometheus::Registry>();
  prometheus::Family<prometheus::Counter>& handled =
      prometheus::BuildCounter().Name("kp_grpc_server_handled_total")
          .Help("RPCs completed, by method and status code.").Register(*registry);
  prometheus::Family<prometheus::Histogram>& handling =
      prometheus::BuildHistogram().Name("kp_grpc_server_handling_seconds")
          .Help("RPC latency from arrival to status, by method.").Register(*registry);
  prometheus::Gauge& in_flight = prometheus::BuildGauge().Name("kp_grpc_server_in_flight")
          .Help("RPCs started and not yet finished.").Register(*registry).Add({});
  prometheus::Family<prometheus::Counter>& cache =
      prometheus::BuildCounter().Name("kp_cache_requests_total")
          .Help("Cacheable reads by outcome: hit, miss, coalesced (waited for another load), bypass (no Redis).")
          .Register(*registry);
  prometheus::Counter& redis_errors = prometheus::BuildCounter().Name("kp_redis_errors_total")
          .Help("Redis commands that failed (timeouts, connection errors, error replies).").Register(*registry).Add({});
  prometheus::Counter& redis_rejected = prometheus::BuildCounter().Name("kp_redis_rejected_total")
          .Help("Redis commands not tried because the circuit breaker was open.").Register(*registry).Add({});
  prometheus::Gauge& db_pool_size = prometheus::BuildGauge().Name("kp_db_pool_connections")
          .Help("Database connections in the pool.").Register(*registry).Add({});
  prometheus::Gauge& db_in_use = prometheus::BuildGauge().Name("kp_db_pool_connections_in_use")
          .Help("Database connections checked out.").Register(*registry).Add({});
  prometheus::Histogram& db_hold = prometheus::BuildHistogram().Name("kp_db_connection_hold_seconds")
          .Help("How long a database connection was held: the latency of one storage operation.")
          .Register(*registry).Add({}, LatencyBuckets());
  prometheus::Histogram& db_query = prometheus::BuildHistogram().Name("kp_db_query_seconds")
          .Help("Time to execute one SQL statement, to its first row.")
          .Register(*registry).Add({}, LatencyBuckets());
  prometheus::Gauge& auth_keys = prometheus::BuildGauge().Name("kp_auth_keys")
          .Help("Valid keys in the keys file as last loaded.").Register(*registry).Add({});
  prometheus::Gauge& auth_keys_malformed = prometheus::BuildGauge().Name("kp_auth_keys_malformed_lines")
          .Help("Malformed lines skipped in the keys file as last loaded (check it with kp-token check).")
          .Register(*registry).Add({});
  prometheus::Family<prometheus::Counter>& principal_calls =
      prometheus::BuildCounter().Name("kp_gateway_principal_requests_total")
          .Help("Calls at the gateway by principal: admitted, or limited (over its rate limit).")
          .Register(*registry);
  prometheus::Family<prometheus::Counter>& over_quota =
      prometheus::BuildCounter().Name("kp_cache_store_over_quota_total")
          .Help("Responses served but not stored in the cache: their principal was over its cache budget.")
          .Register(*registry);
  prometheus::Family<prometheus::Gauge>& backend_in_flight =
      prometheus::BuildGauge().Name("kp_gateway_backend_in_flight")
          .Help("Calls from the gateway to a backend not yet answered.").Register(*registry);
  prometheus::Family<prometheus::Counter>& backend_refused =
      prometheus::BuildCounter().Name("kp_gateway_backend_refused_total")
          .Help("Calls the gateway refused at once: the backend had --backend_max_in_flight calls in flight.")
          .Register(*registry);
  prometheus::Family<prometheus::Histogram>& backend_seconds =
      prometheus::BuildHistogram().Name("kp_gateway_backend_seconds")
          .Help("Latency of the gateway's calls to a backend, by backend.").Register(*registry);
  prometheus::Gauge& response_bytes_held = prometheus::BuildGauge().Name("kp_gateway_response_bytes_held")
          .Help("Bytes of responses the gateway holds that have not been sent to their callers yet.")
          .Register(*registry).Add({});
  prometheus::Family<prometheus::Counter>& responses_refused =
      prometheus::BuildCounter().Name("kp_gateway_responses_refused_total")
          .Help("Responses not kept (the call ended RESOURCE_EXHAUSTED): their principal, or the gateway, held "
                "too many bytes of responses not yet sent.")
          .Register(*registry);
  prometheus::Family<prometheus::Counter>& edge_refusals =
      prometheus::BuildCounter().Name("kp_edge_refusals_total")
          .Help("Calls refused or ended by the edge bounds, by reason: calls_total (the gateway is full), "
                "calls_principal (the caller's share), calls_connection (one connection's calls), the same for "
                "reflection_ and health_watch_ streams, send_timeout (an answer its caller did not read in time), "
                "reflection_unauthenticated.")
          .Register(*registry);
  prometheus::Gauge& health_watches = prometheus::BuildGauge().Name("kp_health_watches")
          .Help("grpc.health.v1 Watch streams open (capped by --max_health_watches).").Register(*registry).Add({});
  std::unique_ptr<prometheus::Exposer> exposer;

  absl::Mutex mu;
  absl::flat_hash_map<std::string, prometheus::Counter*> handled_by_key ABSL_GUARDED_BY(mu);
  absl::flat_hash_map<std::string, prometheus::Histogram*> handling_by_method ABSL_GUARDED_BY(mu);
  absl::flat_hash_map<std::string, prometheus::Counter*> cache_by_outcome ABSL_GUARDED_BY(mu);
  // By principal and outcome; principals are the keys file's, so the labels are bounded.
  absl::flat_hash_map<std::pair<std::string, bool>, prometheus::Counter*> by_principal ABSL_GUARDED_BY(mu);
};

State& S() {
  static State* s = [] {
    auto* state = new State();
    // Every outcome from the start, so that a family reads 0 rather than being absent.
    absl::MutexLock lock(&state->mu);
    for (const char* outcome : {"hit", "miss", "coalesced", "bypass"}) {
      state->cache_by_outcome[outcome] = &state->cache.Add({{"outcome", outcome}});
    }
    return state;
  }();
  return *s;
}

// "/pkg.Service/Method" of a method in this binary's descriptors (every service served).
bool KnownMethod(absl::string_view path) {
  if (!absl::StartsWith(path, "/") || path.size() > 256) return false;
  return google::protobuf::DescriptorPool::generated_pool()->FindMethodByName(
             absl::StrReplaceAll(path.substr(1), {{"/", "."}})) != nullptr;
}

}  // namespace

absl::Status Serve(const std::string& host, int port) {
  if (port == 0) return absl::OkStatus();
  try {
    // civetweb gives each connection a thread until its request is read, and waits 30 s for it
    // by default: two idle, half-sent requests would hold both of the Exposer's default threads
    // and stop every scrape. So more threads (idle, they cost little), and a request that has
    // not arrived within 2 s (headers and all; a scrape's is one packet) is dropped: idle
    // connections free their thread long before Prometheus gives up on a scrape (10 s by default).
    S().exposer = std::make_unique<prometheus::Exposer>(std::vector<std::string>{
        "listening_ports", absl::StrCat(host, ":", port), "num_threads", "16", "request_timeout_ms", "2000"});
  } catch (const std::exception& e) {
    return absl::UnavailableError(absl::StrCat("metrics endpoint ", host, ":", port, ": ", e.what()));
  }
  S().exposer->RegisterCollectable(S().registry);
  return absl::OkStatus();
}

void RecordCall(absl::string_view method, int code, double seconds) {
  if (code < 0 || code > 16) code = 2;  // UNKNOWN
  // Each thread keeps the series of the methods it has seen, so that a call's metrics take no
  // lock once its method and code have come by on that thread. Methods outside this build's
  // descriptors share one "unknown" series and are never kept (callers choose those names).
  struct Local {
    prometheus::Histogram* handling = nullptr;
    std::array<prometheus::Counter*, 17> handled{};
  };
  thread_local absl::flat_hash_map<std::string, Local> local;
  auto it = local.find(method);
  Local scratch;
  Local* series = it != local.end() ? &it->second : &scratch;
  if (series->handled[code] == nullptr) {
    State& s = S();
    absl::MutexLock lock(&s.mu);
    const bool known = s.handling_by_method.contains(method) || KnownMethod(method);
    const std::string name = known ? std::string(method) : "unknown";
    if (known && it == local.end()) series = &local[name];
    auto& c = s.handled_by_key[absl::StrCat(name, "#", code)];
    if (c == nullptr) c = &s.handled.Add({{"method", name}, {"code", StatusCodeName(code)}});
    series->handled[code] = c;
    auto& h = s.handling_by_method[name];
    if (h == nullptr) h = &s.handling.Add({{"method", name}}, LatencyBuckets());
    series->handling = h;
  }
  series->handled[code]->Increment();
  series->handling->Observe(seconds);
}

void CallStarted() { S().in_flight.Increment(); }
void CallEnded() { S().in_flight.Decrement(); }

void RecordCache(absl::string_view outcome) {
  thread_local absl::flat_hash_map<std::string, prometheus::Counter*> local;  // outcomes: a handful
  auto it = local.find(outcome);
  if (it == local.end()) {
    State& s = S();
    absl::MutexLock lock(&s.mu);
    auto& c = s.cache_by_outcome[outcome];
    if (c == nullptr) c = &s.cache.Add({{"outcome", std::string(outcome)}});
    it = local.emplace(std::string(outcome), c).first;
  }
  it->second->Increment();
}

void RecordPrincipalCall(const std::string& principal, bool limited) {
  // Per thread, as in RecordCall; principals are the keys file's (bounded).
  thread_local absl::flat_hash_map<std::string, prometheus::Counter*> local[2];
  auto& mine = local[limited ? 1 : 0];
  auto it = mine.find(principal);
  if (it == mine.end()) {
    State& s = S();
    absl::MutexLock lock(&s.mu);
    auto& c = s.by_principal[{principal, limited}];
    if (c == nullptr) c = &s.principal_calls.Add({{"principal", principal}, {"outcome", limited ? "limited" : "admitted"}});
    it = mine.emplace(principal, c).first;
  }
  it->second->Increment();
}

struct BackendMetrics::Series {
  prometheus::Gauge* in_flight;
  prometheus::Counter* refused;
  prometheus::Histogram* seconds;
};

BackendMetrics::BackendMetrics(const std::string& backend) {
  State& s = S();
  absl::MutexLock lock(&s.mu);
  series_ = std::make_unique<Series>(Series{&s.backend_in_flight.Add({{"backend", backend}}), &s.backend_refused.Add({{"backend", backend}}),
                       &s.backend_seconds.Add({{"backend", backend}}, LatencyBuckets())});
}
BackendMetrics::~BackendMetrics() = default;
void BackendMetrics::Started() { series_->in_flight->Increment(); }
void BackendMetrics::Ended(double seconds) {
  series_->in_flight->Decrement();
  series_->seconds->Observe(seconds);
}
void BackendMetrics::Refused() { series_->refused->Increment(); }

void RecordCacheStoreOverQuota(const std::string& principal) {
  // (A rare event: the family finds the principal's series itself.)
  S().over_quota.Add({{"principal", principal}}).Increment();
}

void ResponseBytesHeld(double bytes) { S().response_bytes_held.Set(bytes); }

void RecordResponseRefused(const std::string& principal) {
  // (A rare event: the family finds the principal's series itself.)
  S().responses_refused.Add({{"principal", principal}}).Increment();
}

void RecordEdgeRefusal(const std::string& reason) {
  // (A rare event, from a fixed set of reasons: the family finds the series itself.)
  S().edge_refusals.Add({{"reason", reason}}).Increment();
}

void HealthWatches(double open) { S().health_watches.Set(open); }

void RecordRedisError() { S().redis_errors.Increment(); }
void RecordRedisRejected() { S().redis_rejected.Increment(); }
void KeysLoaded(int64_t keys, int64_t malformed_lines) {
  S().auth_keys.Set(static_cast<double>(keys));
  S().auth_keys_malformed.Set(static_cast<double>(malformed_lines));
}
void DbPoolSize(int64_t size) { S().db_pool_size.Set(static_cast<double>(size)); }
void DbAcquired() { S().db_in_use.Increment(); }
void DbQuery(double seconds) { S().db_query.Observe(seconds); }
void DbReleased(double held_seconds) {
  S().db_in_use.Decrement();
  S().db_hold.Observe(held_seconds);
}

}  // namespace kp::metrics
