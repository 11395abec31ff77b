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

class RateLimiter {
 public:
  // `rate` calls per second per principal, bursts of up to `burst`; rate 0: no limit.
  RateLimiter(double rate, double burst) : rate_(rate), burst_(burst) {}

  // OK, or RESOURCE_EXHAUSTED (with RetryInfo) if `principal` is over its limit. A principal's
  // own limit (`rate=` in the keys file) replaces the default.
  absl::Status Admit(const auth::Principal& principal, absl::Time now = absl::Now());

 private:
  struct Bucket {
    double tokens;
    absl::Time refilled;
  };
  const double rate_, burst_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, Bucket> buckets_ ABSL_GUARDED_BY(mu_);
};

}  // namespace kp::gateway
