// Cache-aside for the gateway's reads, in Redis as serialized protobuf. Keys carry the caller's
// view and hash the request's canonical form; entries carry the generations of the services they
// were built from and are served only while those are current; concurrent misses of one key (at
// one set of generations) are coalesced into one backend load; Redis trouble turns into a bypass.
//
// Nothing waits on a thread: a read is a CachedRead (response_cache.cc), a chain of
// continuations: generations (one batched read for every call waiting) -> hit, or the entry
// from Redis -> hit, or load (the caller's async loader) -> store -> answer. Redis, which
// hiredis 0.14 only speaks to blocking, is driven by a few threads of its own with a bounded queue.
#pragma once

#include <array>
#include <atomic>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <google/protobuf/descriptor.h>
#include <grpcpp/support/status.h>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/cache/redis_client.h"
#include "gateway/cancel_scope.h"

namespace kp::gateway {

// A loaded response: only OK results whose view the backends confirmed are stored.
struct Loaded {
  grpc::Status status;
  std::string body;  // serialized response message
  // Every backend said it redacted for the view the entry is keyed by (see AppliedViews).
  // If not, the response goes to its own caller only: never stored, never shared.
  bool view_confirmed = false;
  // The caller is within its cache budget (RateLimiter::AdmitCacheStore): else served only.
  bool within_quota = true;
};

// A cached response body, shared by the in-process copy and the responses being sent.
using Body = std::shared_ptr<const std::string>;

enum class CacheOutcome { kHit, kMiss, kCoalesced, kBypass };
const char* OutcomeName(CacheOutcome outcome);

struct CacheCounters {
  int64_t hits = 0;
  int64_t misses = 0;
  int64_t coalesced = 0;  // misses that waited for another caller's load
  int64_t bypasses = 0;   // Redis unavailable (or no Redis): served from the backends
  int64_t redis_errors = 0;
  int64_t generation_reads = 0;  // batched MGETs (one serves every read waiting for it)
  int64_t waiting = 0;  // now: calls waiting for another caller's load
};

// The form of a request that keys the cache: parsed as `type`, unknown fields dropped, and
// serialized deterministically, so that equivalent encodings (fields reordered or repeated,
// unknown fields added, packed or not) share one entry. INVALID_ARGUMENT if it does not parse.
absl::StatusOr<std::string> CanonicalRequest(const google::protobuf::Descriptor* type, absl::string_view bytes);

class ResponseCache {
 public:
  // `redis` may be null: every read is then a bypass. Up to `local_bytes` of recent entries are
  // also kept in this process (L1): still validated by the generations read from Redis on every
  // read, they spare transferring the entry itself. `redis_threads` drive Redis; at most
  // `redis_queue` operations wait for them (beyond, a read bypasses Redis).
  ResponseCache(cache::RedisClient* redis, absl::Duration ttl, size_t local_bytes = 64 << 20, int redis_threads = 2,
                size_t redis_queue = 4096);
  ~ResponseCache();
  ResponseCache(const ResponseCache&) = delete;
  ResponseCache& operator=(const ResponseCache&) = delete;

  struct Request {
    std::string view;       // public, org:<organisation>, full
    std::string method;     // "/pkg.Service/Method"
    std::string canonical;  // CanonicalRequest of the request
    std::vector<absl::string_view> services;  // whose data the response is built from
    // The caller's calls (may be null): a caller who has gone is not loaded for.
    std::shared_ptr<const CancelScope> caller;
  };
  // Starts the backend load; calls `done` exactly once, on any thread. `alone`: the load serves
  // this caller only (Redis unavailable, or a response others may not share), so its backend
  // calls may be cancelled with the caller; else others may be waiting for it.
  using Loader = std::function<void(bool alone, std::function<void(Loaded)> done)>;
  // Called exactly once, on any thread, with the outcome and the response (the body is set when
  // the status is OK).
  using Answer = std::function<void(CacheOutcome outcome, const grpc::Status& status, const Body& body)>;

  // Serves one cacheable read: a hit, or `load` (coalesced with concurrent loads of the same
  // entry) then store, then `answer`.
  void Serve(Request request, Loader load, Answer answer);

  // False without Redis: every read is a bypass, and callers may forward it directly.
  bool enabled() const { return redis_ != nullptr; }
  // Counts a read served without the cache (see enabled()).
  void CountBypass();

  CacheCounters counters() const;

  // The Redis key of an entry, exposed for tests: kp:v1:<view>:<method>:<sha256(canonical)>.
  static std::string Key(absl::string_view view, absl::string_view method, absl::string_view canonical);

 private:
  friend class CachedRead;
  // Every service's generation, in cache::kServices order.
  using Generations = std::array<std::string, 3>;
  // Runs `op` on a Redis thread; false (not run) when the queue is full or there is no Redis.
  bool Post(std::function<void()> op);
  void RedisLoop();
  // Hands `done` the current generations from one MGET that starts after this call (shared by
  // every call waiting meanwhile), or null when Redis cannot say. Waits at most the Redis
  // timeout in all, counting from now.
  void ReadGenerations(std::function<void(const Generations*)> done);
  struct GenerationWaiter {
    std::function<void(const Generations*)> done;
    absl::Time arrived;
  };
  // Starts the read for every call waiting; those it cannot serve (Redis's queue is full) are
  // returned, to be told so once the lock is released.
  std::vector<GenerationWaiter> StartGenerationRead() ABSL_EXCLUSIVE_LOCKS_REQUIRED(gen_mu_);

  struct LocalEntry {
    std::string stamp;
    Body body;
    absl::Time expires;
  };
  // The local copy of `key` unless it has expired; served only if its stamp is current.
  std::optional<LocalEntry> LocalGet(const std::string& key);
  void LocalStore(const std::string& key, const std::string& stamp, Body body);

  cache::RedisClient* redis_;
  absl::Duration ttl_;
  size_t local_budget_;
  absl::Mutex local_mu_;
  absl::flat_hash_map<std::string, LocalEntry> local_ ABSL_GUARDED_BY(local_mu_);
  size_t local_bytes_ ABSL_GUARDED_BY(local_mu_) = 0;

  // Coalescing: the calls waiting for the load of an entry (key@stamp), in arrival order.
  mutable absl::Mutex flights_mu_;
  absl::flat_hash_map<std::string, std::vector<class CachedRead*>> flights_ ABSL_GUARDED_BY(flights_mu_);

  // Batched generation reads: at most one MGET in flight; calls arriving meanwhile wait for the
  // next one (so that a read never uses generations read before it arrived).
  absl::Mutex gen_mu_;
  bool gen_in_flight_ ABSL_GUARDED_BY(gen_mu_) = false;
  std::vector<GenerationWaiter> gen_waiting_ ABSL_GUARDED_BY(gen_mu_);

  // The Redis threads and their bounded queue.
  const size_t queue_limit_;
  absl::Mutex queue_mu_;
  std::deque<std::function<void()>> queue_ ABSL_GUARDED_BY(queue_mu_);
  bool stopping_ ABSL_GUARDED_BY(queue_mu_) = false;
  std::vector<std::thread> threads_;

  std::atomic<int64_t> hits_{0}, misses_{0}, coalesced_{0}, bypasses_{0}, generation_reads_{0};
};

}  // namespace kp::gateway
