// Generations: see generations.h.
#include "common/cache/generations.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/log.h"

namespace kp::cache {

std::string GenerationKey(absl::string_view service) { return absl::StrCat("kp:v1:gen:", service); }

std::vector<std::vector<std::string>> Generations::BumpAllCommands() {
  std::vector<std::vector<std::string>> commands;
  for (auto service : kServices) commands.push_back({"INCR", GenerationKey(service)});
  return commands;
}

Generations::Generations(RedisClient* redis) : redis_(redis) {
  redis_->SetRecoveryHook([](const RedisClient::Runner& run) {
    auto replies = run(BumpAllCommands());
    if (replies.ok()) log::Info("bumped every cache generation after a redis outage");
    return replies.status();
  });
  retry_ = std::thread([this] { RetryOwed(); });
}

Generations::~Generations() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  retry_.join();
}

bool Generations::owed() const {
  absl::MutexLock lock(&mu_);
  return owed_;
}

void Generations::Bump(absl::string_view service) {
  auto reply = redis_->Command({"INCR", GenerationKey(service)});
  if (reply.ok()) return;
  absl::MutexLock lock(&mu_);
  if (!owed_) log::Warn("cache generation bump failed; owed until redis answers", {{"service", std::string(service)}});
  owed_ = true;
}

void Generations::RetryOwed() {
  absl::MutexLock lock(&mu_);
  while (true) {
    auto wake = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || owed_; };
    mu_.Await(absl::Condition(&wake));
    if (stopping_) return;
    mu_.Unlock();
    const bool ok = redis_->Pipeline(BumpAllCommands()).ok();
    if (!ok) absl::SleepFor(absl::Milliseconds(100));  // the breaker makes failed tries cheap
    mu_.Lock();
    if (ok) {
      owed_ = false;
      log::Info("owed cache generation bumps delivered");
    }
  }
}

}  // namespace kp::cache
