// RateLimiter: see rate_limiter.h.
#include "gateway/rate_limiter.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/cord.h"
#include "absl/strings/str_format.h"
#include "common/metrics.h"
#include "google/rpc/error_details.pb.h"

namespace kp::gateway {

double RateLimiter::Take(absl::flat_hash_map<std::string, Bucket>& buckets, const std::string& principal,
                         double rate, double burst, double cost, absl::Time now) {
  auto [it, fresh] = buckets.try_emplace(principal, Bucket{burst, now});
  Bucket& b = it->second;
  if (!fresh) {
    b.tokens = std::min(burst, b.tokens + rate * absl::ToDoubleSeconds(std::max(now - b.refilled, absl::ZeroDuration())));
    b.refilled = std::max(b.refilled, now);
  }
  if (b.tokens >= cost) {
    b.tokens -= cost;
    return 0;
  }
  return (cost - b.tokens) / rate;
}

bool RateLimiter::AdmitCacheStore(const auth::Principal& principal, size_t bytes, absl::Time now) {
  if (cache_bytes_per_minute_ <= 0) return true;
  bool admitted;
  {
    absl::MutexLock lock(&mu_);
    admitted = Take(cache_buckets_, principal.name, cache_bytes_per_minute_ / 60, cache_bytes_per_minute_,
                    static_cast<double>(bytes), now) == 0;
  }
  if (!admitted) metrics::RecordCacheStoreOverQuota(principal.name);
  return admitted;
}

absl::Status RateLimiter::Admit(const auth::Principal& principal, absl::Time now) {
  const double rate = principal.rate_limit >= 0 ? principal.rate_limit : rate_;
  if (rate <= 0) {
    metrics::RecordPrincipalCall(principal.name, /*limited=*/false);
    return absl::OkStatus();
  }
  const double burst = std::max(principal.rate_limit >= 0 ? rate : burst_, 1.0);
  double wait_seconds;
  {
    absl::MutexLock lock(&mu_);
    wait_seconds = Take(buckets_, principal.name, rate, burst, 1, now);
  }
  metrics::RecordPrincipalCall(principal.name, /*limited=*/wait_seconds > 0);
  if (wait_seconds == 0) return absl::OkStatus();
  // A rate near zero (a --rate_limit the flags let through, a denormal) makes the wait
  // astronomical or infinite: converted to nanoseconds it would overflow (a negative delay).
  // Saying more than an hour helps no client.
  wait_seconds = std::clamp(std::isnan(wait_seconds) ? kMaxRetryDelaySeconds : wait_seconds, 1e-3, kMaxRetryDelaySeconds);
  absl::Status status = absl::ResourceExhaustedError(absl::StrFormat(
      "principal '%s' is over its rate limit of %g calls per second; retry after %.0f ms", principal.name, rate,
      std::ceil(wait_seconds * 1000)));
  google::rpc::RetryInfo info;
  const int64_t nanos = static_cast<int64_t>(std::ceil(wait_seconds * 1e9));
  info.mutable_retry_delay()->set_seconds(nanos / 1000000000);
  info.mutable_retry_delay()->set_nanos(static_cast<int32_t>(nanos % 1000000000));
  status.SetPayload("type.googleapis.com/google.rpc.RetryInfo", absl::Cord(info.SerializeAsString()));
  return status;
}

}  // namespace kp::gateway
