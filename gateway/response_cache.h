// Cache-aside for the gateway's reads, in Redis as serialized protobuf. Keys carry the
// caller's view; entries carry the generations of the services they were built from and are
// served only while those are current; concurrent misses of one key (at one set of
// generations) are coalesced into one backend load; Redis trouble turns into a bypass.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <google/protobuf/descriptor.h>
#include <grpcpp/support/status.h>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/cache/redis_client.h"

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
};

// The form of a request that keys the cache: parsed as `type`, unknown fields dropped, and
// serialized deterministically, so that equivalent encodings (fields reordered or repeated,
// unknown fields added, packed or not) share one entry. INVALID_ARGUMENT if it does not parse.
absl::StatusOr<std::string> CanonicalRequest(const google::protobuf::Descriptor* type, absl::string_view bytes);

class ResponseCache {
 public:
  // `redis` may be null: every read is then a bypass. Up to `local_bytes` of recent entries are
  // also kept in this process (L1): still validated by the generations read from Redis on every
  // read, they spare transferring the entry itself.
  ResponseCache(cache::RedisClient* redis, absl::Duration ttl, size_t local_bytes = 64 << 20);

  // What one Redis round trip says about `request` of `method` for a caller with `view`:
  // a hit (outcome kHit, `body` set), or what Load needs to fetch and store it (kMiss), or
  // that Redis cannot be used (kBypass). `services` are the backends whose data the response
  // is built from. Quick (no backend call): callers run it on gRPC's thread and leave only
  // misses to the worker pool.
  struct Lookup {
    CacheOutcome outcome = CacheOutcome::kBypass;
    Body body;
    std::string key;
    std::vector<std::string> generations;
    std::string stamp;
    // Redis time this call may still spend (storing the entry): one --redis_timeout per call.
    absl::Duration redis_budget;
  };
  Lookup Find(absl::string_view view, absl::string_view method, absl::string_view request,
              const std::vector<absl::string_view>& services);
  // For a lookup that did not hit: loads (coalesced with concurrent loads of the same entry)
  // and stores. Sets the final outcome.
  Loaded Load(const Lookup& lookup, const std::vector<absl::string_view>& services,
              const std::function<Loaded()>& load, CacheOutcome* outcome);
  // Find, then Load on a miss.
  Loaded GetOrLoad(absl::string_view view, absl::string_view method, absl::string_view request,
                   const std::vector<absl::string_view>& services,
                   const std::function<Loaded()>& load, CacheOutcome* outcome);

  CacheCounters counters() const;

  // The Redis key of an entry, exposed for tests: kp:v1:<view>:<method>:<sha256(request)>,
  // where `request` is the canonical form (CanonicalRequest).
  static std::string Key(absl::string_view view, absl::string_view method, absl::string_view request);

 private:
  struct Flight {
    absl::Notification done;
    Loaded result;
  };
  Loaded Coalesce(const std::string& flight_key, const std::function<Loaded()>& load,
                  const std::function<void(const Loaded&)>& store, CacheOutcome* outcome);

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
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::shared_ptr<Flight>> flights_ ABSL_GUARDED_BY(mu_);
  std::atomic<int64_t> hits_{0}, misses_{0}, coalesced_{0}, bypasses_{0};
};

}  // namespace kp::gateway
