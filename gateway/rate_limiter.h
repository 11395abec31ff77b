// Per-principal rate limits at the gateway: a token bucket per principal, so that one caller
// cannot flood the backends or the cache. Over the limit, RESOURCE_EXHAUSTED with a
// google.rpc.RetryInfo saying when a call would be admitted again.
#pragma once

#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/auth/principal.h"

namespace kp::gateway {

// The longest retry delay a refusal names (RetryInfo), however low the rate.
inline constexpr double kMaxRetryDelaySeconds = 3600;

class RateLimiter {
 public:
  // `rate` calls per second per principal, bursts of up to `burst`; rate 0: no limit.
  // `cache_bytes_per_minute`: what one principal's calls may add to the cache (0: no limit).
  RateLimiter(double rate, double burst, double cache_bytes_per_minute = 0)
      : rate_(rate), burst_(burst), cache_bytes_per_minute_(cache_bytes_per_minute) {}

  // OK, or RESOURCE_EXHAUSTED (with RetryInfo) if `principal` is over its limit. A principal's
  // own limit (`rate=` in the keys file) replaces the default.
  absl::Status Admit(const auth::Principal& principal, absl::Time now = absl::Now());

  // Whether `bytes` more of this principal's responses may be stored in the cache. Equivalent
  // requests share one entry, but requests that differ only in ways the cache cannot see (a
  // filter's spacing, say) make new ones: without a budget one caller could fill Redis with
  // entries nobody else reads, evicting everyone else's. Over it, responses are served, not
  // stored (counted in kp_cache_store_over_quota_total).
  bool AdmitCacheStore(const auth::Principal& principal, size_t bytes, absl::Time now = absl::Now());

 private:
  struct Bucket {
    double tokens;
    absl::Time refilled;
  };
  // Takes `cost` from `principal`'s bucket in `buckets` (rate per second, burst); the seconds to
  // wait when it is short, or 0.
  static double Take(absl::flat_hash_map<std::string, Bucket>& buckets, const std::string& principal, double rate,
                     double burst, double cost, absl::Time now);
  const double rate_, burst_, cache_bytes_per_minute_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, Bucket> buckets_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, Bucket> cache_buckets_ ABSL_GUARDED_BY(mu_);
};

}  // namespace kp::gateway
