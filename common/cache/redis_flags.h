// The Redis flags shared by the services (generation bumps) and the gateway (cache).
#pragma once

#include <memory>

#include "common/cache/redis_client.h"
#include "common/config.h"

namespace kp::cache {

// Null when --redis_address is empty (no cache anywhere to invalidate).
std::unique_ptr<RedisClient> RedisClientFromFlags();
void ValidateRedisFlags(config::Validator& v);

}  // namespace kp::cache
