// Generations: see generations.h.
#include "common/cache/generations.h"

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/log.h"

namespace kp::cache {

std::string GenerationKey(absl::string_view service) { return absl::StrCat("kp:v1:gen:", service); }

namespace {

constexpr char kBumpScript[] =
    "if redis.call('EXISTS', KEYS[1]) == 0 then redis.call('SET', KEYS[1], ARGV[1]) end "
    "return redis.call('INCRBY', KEYS[1], ARGV[2])";

std::string RandomStart() {
  thread_local absl::BitGen gen;
  return absl::StrCat(absl::Uniform<uint64_t>(gen, uint64_t{1} << 40, uint64_t{1} << 62));
}

}  // namespace

std::vector<std::string> Generations::BumpCommand(absl::string_view service) {
  return {"EVAL", kBumpScript, "1", GenerationKey(service), RandomStart(), "1"};
}

std::vector<std::vector<std::string>> Generations::BumpAllCommands() {
  thread_local absl::BitGen gen;
  std::vector<std::vector<std::string>> commands;
  for (auto service : kServices) {
    const std::string step = absl::StrCat(absl::Uniform<uint64_t>(gen, uint64_t{1} << 32, uint64_t{1} << 33));
    commands.push_back({"EVAL", kBumpScript, "1", GenerationKey(service), RandomStart(), step});
  }
  return commands;
}

std::vector<std::vector<std::string>> Generations::InitCommands(const std::vector<absl::string_view>& services) {
  std::vector<std::vector<std::string>> commands;
  for (auto service : services) commands.push_back({"SET", GenerationKey(service), RandomStart(), "NX"});
  return commands;
}

Generations::Generations(RedisClient* redis, bool owes_at_start) : redis_(redis), owed_(owes_at_start) {
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

void Generations::Bump(absl::string_view service) {
  auto reply = redis_->Command(BumpCommand(service), /*budget=*/nullptr, /*must_try=*/true);
  if (reply.ok()) return;
  absl::MutexLock lock(&mu_);
  if (!owed_) log::Warn("cache generation bump failed; owed until redis answers", {{"service", std::string(service)}});
  owed_ = true;
}

void Generations::SettleOwed() {
  {
    absl::MutexLock lock(&mu_);
    if (!owed_) return;
  }
  if (!redis_->Pipeline(BumpAllCommands()).ok()) return;
  absl::MutexLock lock(&mu_);
  owed_ = false;
  log::Info("cache generations bumped at start");
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
