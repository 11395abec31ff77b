// The gateway's per-principal rate limits: refusals say when to retry, and that delay is always
// a sensible positive duration, however low the principal's rate.
#include "gateway/rate_limiter.h"

#include <gtest/gtest.h>

#include "google/rpc/error_details.pb.h"

namespace kp::gateway {
namespace {

// The retry delay a refusal carries, in seconds (-1 without RetryInfo).
double RetryDelaySeconds(const absl::Status& status) {
  auto payload = status.GetPayload("type.googleapis.com/google.rpc.RetryInfo");
  google::rpc::RetryInfo info;
  if (!payload || !info.ParseFromString(std::string(*payload))) return -1;
  return static_cast<double>(info.retry_delay().seconds()) + info.retry_delay().nanos() / 1e9;
}

auth::Principal WithRate(const std::string& name, double rate) {
  auth::Principal p;
  p.name = name;
  p.rate_limit = rate;
  return p;
}

TEST(RateLimiter, RefusalSaysWhenTheNextCallIsAdmitted) {
  RateLimiter limiter(/*rate=*/500, /*burst=*/1000);
  const auth::Principal p = WithRate("two-per-second", 2);
  const absl::Time now = absl::FromUnixSeconds(1700000000);
  ASSERT_TRUE(limiter.Admit(p, now).ok());
  ASSERT_TRUE(limiter.Admit(p, now).ok());  // a burst of its rate
  const absl::Status refused = limiter.Admit(p, now);
  ASSERT_EQ(refused.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NEAR(RetryDelaySeconds(refused), 0.5, 1e-6);
}

// A rate the keys file refuses can still reach the limiter (--rate_limit, or a principal built
// elsewhere): 1e-12 calls per second means waiting 30,000 years, and a denormal rate an
// infinite wait, which once overflowed into a retry delay of -9223372036 s.
TEST(RateLimiter, RetryDelayIsPositiveAndBoundedForAbsurdlyLowRates) {
  for (const double rate : {1e-12, 4.9e-324, 1e-300}) {
    RateLimiter limiter(/*rate=*/500, /*burst=*/1000);
    const auth::Principal p = WithRate("nearly-never", rate);
    const absl::Time now = absl::FromUnixSeconds(1700000000);
    ASSERT_TRUE(limiter.Admit(p, now).ok()) << rate;  // bursts of at least one call
    const absl::Status refused = limiter.Admit(p, now + absl::Seconds(1));
    ASSERT_EQ(refused.code(), absl::StatusCode::kResourceExhausted) << rate;
    const double delay = RetryDelaySeconds(refused);
    EXPECT_GT(delay, 0) << rate;
    EXPECT_LE(delay, kMaxRetryDelaySeconds) << rate;
    EXPECT_EQ(std::string(refused.message()).find("after -"), std::string::npos) << refused.message();
  }
  // The default rate too (the --rate_limit flag), not only a principal's own.
  RateLimiter limiter(/*rate=*/1e-12, /*burst=*/1);
  const auth::Principal p = WithRate("default-rate", -1);
  const absl::Time now = absl::FromUnixSeconds(1700000000);
  ASSERT_TRUE(limiter.Admit(p, now).ok());
  const double delay = RetryDelaySeconds(limiter.Admit(p, now));
  EXPECT_GT(delay, 0);
  EXPECT_LE(delay, kMaxRetryDelaySeconds);
}

}  // namespace
}  // namespace kp::gateway
