// A small Redis client on hiredis: a pool of connections with short connect/command timeouts,
// behind a circuit breaker, so that Redis being down, slow or restarted costs a caller at
// most one timeout and, once the breaker is open, nothing at all.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

struct redisContext;

namespace kp::cache {

struct RedisReply {
  enum class Type { kNil, kString, kInteger, kArray, kStatus, kError };
  Type type = Type::kNil;
  std::string str;  // string, status or error text
  int64_t integer = 0;
  std::vector<RedisReply> elements;
};

struct RedisOptions {
  std::string address;  // host:port
  absl::Duration connect_timeout = absl::Milliseconds(100);
  absl::Duration command_timeout = absl::Milliseconds(100);
  int max_idle_connections = 16;
  int failure_threshold = 3;                    // consecutive failures that open the breaker
  absl::Duration open_time = absl::Seconds(1);  // how long it stays open before a probe
};

struct RedisCounters {
  int64_t errors = 0;    // commands that failed (timeouts, connection errors, error replies)
  int64_t rejected = 0;  // commands refused without trying because the breaker was open
  int64_t recoveries = 0;
};

class RedisClient {
 public:
  explicit RedisClient(RedisOptions options);
  ~RedisClient();
  RedisClient(const RedisClient&) = delete;
  RedisClient& operator=(const RedisClient&) = delete;

  using Runner = std::function<absl::StatusOr<std::vector<RedisReply>>(
      const std::vector<std::vector<std::string>>&)>;
  // Called (once per outage) on the first successful command after Redis failed, before that
  // command's result is used; meanwhile every other caller is refused as if the breaker were
  // open. `run` sends commands past the breaker. If the hook fails, the outage goes on. Used
  // to bump every generation when Redis comes back.
  void SetRecoveryHook(std::function<absl::Status(const Runner& run)> hook);

  // Runs the commands pipelined in one round trip. UNAVAILABLE when Redis cannot be reached
  // in time or the breaker is open; an error reply fails the whole call.
  absl::StatusOr<std::vector<RedisReply>> Pipeline(const std::vector<std::vector<std::string>>& commands);
  absl::StatusOr<RedisReply> Command(const std::vector<std::string>& args);

  RedisCounters counters() const;
  const std::string& address() const { return options_.address; }

 private:
  enum class Admission { kAllowed, kProbe, kRejected };
  Admission Admit();
  void RecordFailure(Admission admission);
  absl::StatusOr<std::vector<RedisReply>> RunPipeline(const std::vector<std::vector<std::string>>& commands);
  redisContext* Take();
  void Give(redisContext* c);

  RedisOptions options_;
  std::string host_;
  int port_ = 0;
  std::function<absl::Status(const Runner&)> recovery_hook_;

  mutable absl::Mutex mu_;
  std::vector<redisContext*> idle_ ABSL_GUARDED_BY(mu_);
  int consecutive_failures_ ABSL_GUARDED_BY(mu_) = 0;
  bool outage_ ABSL_GUARDED_BY(mu_) = false;   // failures seen since the last recovery
  bool probing_ ABSL_GUARDED_BY(mu_) = false;  // one caller is testing Redis or recovering
  bool open_ ABSL_GUARDED_BY(mu_) = false;     // the breaker has tripped during this outage
  absl::Time open_until_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  RedisCounters counters_ ABSL_GUARDED_BY(mu_);
};

}  // namespace kp::cache
