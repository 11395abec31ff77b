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
  std::string password;  // sent with AUTH on every new connection when set
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
  // Called (once per outage) before the first command after Redis failed, and whenever the
  // pool's connections turn out closed by the server (a restart); the command runs only if the
  // hook succeeds. Meanwhile every other caller is refused as if the breaker were open. `run`
  // sends commands past the breaker. Used to bump every generation when Redis comes back.
  void SetRecoveryHook(std::function<absl::Status(const Runner& run)> hook);

  // Runs the commands pipelined in one round trip. UNAVAILABLE when Redis cannot be reached
  // in time or the breaker is open; an error reply fails the whole call.
  //
  // Time: connecting, writing and reading all come out of one allowance, --redis_timeout, or
  // what is left of `*budget` when given (the time spent is taken off it, so that several
  // commands of one call share one allowance).
  //
  // A pooled connection that the server closed (Redis restarted, say) is not a failure: the
  // commands are sent again on a fresh connection within the same allowance, after every
  // generation has been moved forward (the recovery hook), since a restarted Redis may hold
  // an old snapshot. Only a Redis that cannot be reached in time is an outage.
  //
  // `must_try`: tried even while the breaker is open (after recovering Redis), for what must not
  // be skipped while Redis may be back: generation bumps.
  absl::StatusOr<std::vector<RedisReply>> Pipeline(const std::vector<std::vector<std::string>>& commands,
                                                   absl::Duration* budget = nullptr, bool must_try = false);
  absl::StatusOr<RedisReply> Command(const std::vector<std::string>& args, absl::Duration* budget = nullptr,
                                     bool must_try = false);
  absl::Duration timeout() const { return options_.command_timeout; }

  RedisCounters counters() const;
  const std::string& address() const { return options_.address; }

 private:
  enum class Admission { kAllowed, kProbe, kForced, kRejected };
  Admission Admit(bool must_try);
  void RecordFailure(Admission admission);
  // A connection and the socket timeout currently set on it.
  struct Connection {
    redisContext* context = nullptr;
    absl::Duration io_timeout;
  };
  // One round trip. `closed_pooled`: it failed because the server had closed the pooled
  // connection used (before any reply), or because a new connection met a restarted Redis:
  // either says Redis restarted, not that it is down.
  // `recovering`: the recovery itself, which a restart does not stop.
  absl::StatusOr<std::vector<RedisReply>> RunPipeline(const std::vector<std::vector<std::string>>& commands,
                                                      absl::Time deadline, bool* closed_pooled, bool recovering = false);
  // Runs the recovery hook (within `deadline`).
  absl::Status Recover(absl::Time deadline);
  Connection TakeIdle();
  // A new connection; `restarted` if its server has another run id than the last one seen.
  Connection Connect(absl::Time deadline, bool* restarted);
  void Give(Connection c);
  void DropIdle();

  RedisOptions options_;
  std::string host_;
  int port_ = 0;
  std::function<absl::Status(const Runner&)> recovery_hook_;

  mutable absl::Mutex mu_;
  std::vector<Connection> idle_ ABSL_GUARDED_BY(mu_);
  int consecutive_failures_ ABSL_GUARDED_BY(mu_) = 0;
  bool outage_ ABSL_GUARDED_BY(mu_) = false;   // failures seen since the last recovery
  bool probing_ ABSL_GUARDED_BY(mu_) = false;  // one caller is testing Redis or recovering
  bool open_ ABSL_GUARDED_BY(mu_) = false;     // the breaker has tripped during this outage
  absl::Time open_until_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  RedisCounters counters_ ABSL_GUARDED_BY(mu_);
  std::string run_id_ ABSL_GUARDED_BY(mu_);  // of the Redis last connected to
};

}  // namespace kp::cache
