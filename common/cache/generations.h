// Cache invalidation by generation: each backend service owns a counter in Redis that it
// increments after every committed write, before the write is acknowledged. A cached entry
// records the generations it was built from and is valid only while they are current.
#pragma once

#include <array>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "common/cache/redis_client.h"

namespace kp::cache {

inline constexpr std::array<absl::string_view, 3> kServices = {"organisations", "events", "participants"};

// "kp:v1:gen:<service>".
std::string GenerationKey(absl::string_view service);

class Generations {
 public:
  // Installs a recovery hook on `redis` that bumps every generation when Redis comes back
  // after an outage (it may have restarted from an old snapshot, or missed bumps). A writer
  // (`owes_at_start`) bumps every generation as soon as it starts: the process it replaces may
  // have died owing bumps for writes it acknowledged.
  Generations(RedisClient* redis, bool owes_at_start);
  ~Generations();
  Generations(const Generations&) = delete;
  Generations& operator=(const Generations&) = delete;

  // After a committed write of `service`, before it is acknowledged. Tried even while the
  // circuit breaker is open (Redis may be back). Never fails the write: a bump that Redis did
  // not take is owed, and every generation is bumped in the background as soon as it answers.
  void Bump(absl::string_view service);

  // One attempt, now, at what is owed (a service calls it before it serves: within
  // --redis_timeout; if Redis does not answer, the bumps stay owed and go out in the background).
  void SettleOwed();

  // The command bumping `service`'s generation by one, initialising a missing counter to a
  // random value first, so that counters never restart at small numbers a stale entry could
  // carry (Redis restarted empty).
  static std::vector<std::string> BumpCommand(absl::string_view service);
  // Commands moving every generation forward by a random step of at least 2^32: after an
  // outage (or a restart from an old snapshot) no counter passes through old values again.
  static std::vector<std::vector<std::string>> BumpAllCommands();
  // Commands giving each missing generation of `services` a random initial value.
  static std::vector<std::vector<std::string>> InitCommands(const std::vector<absl::string_view>& services);

 private:
  void RetryOwed();
  RedisClient* redis_;
  absl::Mutex mu_;
  bool owed_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread retry_;
};

}  // namespace kp::cache
