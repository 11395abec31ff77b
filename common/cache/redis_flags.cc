// Redis flags: see redis_flags.h.
#include "common/cache/redis_flags.h"

#include "absl/flags/flag.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

ABSL_FLAG(std::string, redis_address, "",
          "Redis host:port for the response cache and its invalidation; empty disables both.");
ABSL_FLAG(std::string, redis_password, "",
          "Password for Redis (AUTH); set it from a Secret as KP_REDIS_PASSWORD rather than on the command line.");
ABSL_FLAG(absl::Duration, redis_timeout, absl::Milliseconds(100),
          "Connect and command timeout for Redis; a slow Redis never delays a call longer.");
ABSL_FLAG(absl::Duration, redis_open_time, absl::Seconds(1),
          "After repeated Redis failures, how long to skip Redis before trying it again.");

namespace kp::cache {

std::unique_ptr<RedisClient> RedisClientFromFlags() {
  const std::string address = absl::GetFlag(FLAGS_redis_address);
  if (address.empty()) return nullptr;
  RedisOptions options;
  options.address = address;
  options.password = absl::GetFlag(FLAGS_redis_password);
  options.connect_timeout = absl::GetFlag(FLAGS_redis_timeout);
  options.command_timeout = absl::GetFlag(FLAGS_redis_timeout);
  options.open_time = absl::GetFlag(FLAGS_redis_open_time);
  return std::make_unique<RedisClient>(options);
}

void ValidateRedisFlags(config::Validator& v) {
  const std::string address = absl::GetFlag(FLAGS_redis_address);
  int port = 0;
  const auto colon = address.rfind(':');
  v.Check(address.empty() || (colon != std::string::npos && colon > 0 &&
                              absl::SimpleAtoi(address.substr(colon + 1), &port) && port > 0 && port < 65536),
          absl::StrCat("--redis_address must be host:port, got '", address, "'"));
  v.Check(absl::GetFlag(FLAGS_redis_timeout) > absl::ZeroDuration() &&
              absl::GetFlag(FLAGS_redis_timeout) <= absl::Seconds(5),
          "--redis_timeout must be in (0, 5s]");
  v.Check(absl::GetFlag(FLAGS_redis_open_time) > absl::ZeroDuration(), "--redis_open_time must be positive");
}

}  // namespace kp::cache
