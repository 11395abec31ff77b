// Prometheus metrics for every binary, served over HTTP on their own port: per-method call
// counts by status code and latency histograms, calls in flight, cache and Redis figures,
// database pool use and how long connections are held (query latency).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace kp::metrics {

// Starts the /metrics endpoint on host:port (port 0: no endpoint, metrics still counted).
absl::Status Serve(const std::string& host, int port);

// One finished RPC (method is the full path "/pkg.Service/Method").
void RecordCall(absl::string_view method, int code, double seconds);
void CallStarted();
void CallEnded();

// Cache outcomes: "hit", "miss", "coalesced", "bypass".
void RecordCache(absl::string_view outcome);
void RecordRedisError();
void RecordRedisRejected();  // refused without trying (circuit open)

// A call admitted (or refused, `limited`) by the gateway's per-principal rate limit.
void RecordPrincipalCall(const std::string& principal, bool limited);

// A response not stored in the cache: its principal is over its cache budget.
void RecordCacheStoreOverQuota(const std::string& principal);

// Bytes of responses the gateway holds, not yet sent; and a response refused because its
// principal (or the gateway) held too many.
void ResponseBytesHeld(double bytes);
void RecordResponseRefused(const std::string& principal);
// A call the gateway's edge bounds refused or ended, by reason (a fixed set: calls_total,
// calls_principal, calls_connection, the same for reflection_ and health_watch_, send_timeout,
// reflection_unauthenticated).
void RecordEdgeRefusal(const std::string& reason);
// grpc.health.v1 Watch streams open.
void HealthWatches(double open);

// The gateway's calls to one backend: in flight, refused by its bulkhead, latency.
class BackendMetrics {
 public:
  explicit BackendMetrics(const std::string& backend);
  ~BackendMetrics();
  void Started();
  void Ended(double seconds);
  void Refused();

 private:
  struct Series;
  std::unique_ptr<Series> series_;  // points at series registered once, for the life of the process
};

// The keys file as last loaded: valid keys, and malformed lines skipped.
void KeysLoaded(int64_t keys, int64_t malformed_lines);

// The database pool: connections in use, and how long each was held.
void DbPoolSize(int64_t size);
void DbAcquired();
void DbReleased(double held_seconds);
void DbQuery(double seconds);  // one statement, to its first row

}  // namespace kp::metrics
