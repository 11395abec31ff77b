// Metrics on prometheus-cpp: see metrics.h.
#include "common/metrics.h"

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
  std::unique_ptr<prometheus::Exposer> exposer;

  absl::Mutex mu;
  absl::flat_hash_map<std::string, prometheus::Counter*> handled_by_key ABSL_GUARDED_BY(mu);
  absl::flat_hash_map<std::string, prometheus::Histogram*> handling_by_method ABSL_GUARDED_BY(mu);
  absl::flat_hash_map<std::string, prometheus::Counter*> cache_by_outcome ABSL_GUARDED_BY(mu);
  // By principal and outcome; principals are the keys file's, so the labels are bounded.
  absl::flat_hash_map<std::pair<std::string, bool>, prometheus::Counter*> by_principal ABSL_GUARDED_BY(mu);
  absl::flat_hash_map<std::string, prometheus::Counter*> over_quota_by_principal ABSL_GUARDED_BY(mu);
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
    S().exposer = std::make_unique<prometheus::Exposer>(absl::StrCat(host, ":", port));
  } catch (const std::exception& e) {
    return absl::UnavailableError(absl::StrCat("metrics endpoint ", host, ":", port, ": ", e.what()));
  }
  S().exposer->RegisterCollectable(S().registry);
  return absl::OkStatus();
}

void RecordCall(absl::string_view method, int code, double seconds) {
  State& s = S();
  prometheus::Counter* counter;
  prometheus::Histogram* histogram;
  {
    absl::MutexLock lock(&s.mu);
    // Method names come from callers: only the methods this build knows get their own series
    // (any other would add series without bound), the rest share one.
    if (!s.handling_by_method.contains(method) && !KnownMethod(method)) method = "unknown";
    const std::string key = absl::StrCat(method, "#", code);
    auto& c = s.handled_by_key[key];
    if (c == nullptr) c = &s.handled.Add({{"method", std::string(method)}, {"code", StatusCodeName(code)}});
    counter = c;
    auto& h = s.handling_by_method[method];
    if (h == nullptr) h = &s.handling.Add({{"method", std::string(method)}}, LatencyBuckets());
    histogram = h;
  }
  counter->Increment();
  histogram->Observe(seconds);
}

void CallStarted() { S().in_flight.Increment(); }
void CallEnded() { S().in_flight.Decrement(); }

void RecordCache(absl::string_view outcome) {
  State& s = S();
  prometheus::Counter* counter;
  {
    absl::MutexLock lock(&s.mu);
    auto& c = s.cache_by_outcome[outcome];
    if (c == nullptr) c = &s.cache.Add({{"outcome", std::string(outcome)}});
    counter = c;
  }
  counter->Increment();
}

void RecordPrincipalCall(const std::string& principal, bool limited) {
  State& s = S();
  prometheus::Counter* counter;
  {
    absl::MutexLock lock(&s.mu);
    auto& c = s.by_principal[{principal, limited}];
    if (c == nullptr) c = &s.principal_calls.Add({{"principal", principal}, {"outcome", limited ? "limited" : "admitted"}});
    counter = c;
  }
  counter->Increment();
}

void RecordCacheStoreOverQuota(const std::string& principal) {
  State& s = S();
  prometheus::Counter* counter;
  {
    absl::MutexLock lock(&s.mu);
    auto& c = s.over_quota_by_principal[principal];
    if (c == nullptr) c = &s.over_quota.Add({{"principal", principal}});
    counter = c;
  }
  counter->Increment();
}

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
