// RedisClient: see redis_client.h.
#include "common/cache/redis_client.h"

#include <hiredis/hiredis.h>
#include <sys/time.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "common/metrics.h"

namespace kp::cache {
namespace {


RedisReply Convert(const redisReply* r) {
  RedisReply out;
  switch (r->type) {
    case REDIS_REPLY_STRING: out.type = RedisReply::Type::kString; out.str.assign(r->str, r->len); break;
    case REDIS_REPLY_STATUS: out.type = RedisReply::Type::kStatus; out.str.assign(r->str, r->len); break;
    case REDIS_REPLY_ERROR: out.type = RedisReply::Type::kError; out.str.assign(r->str, r->len); break;
    case REDIS_REPLY_INTEGER: out.type = RedisReply::Type::kInteger; out.integer = r->integer; break;
    case REDIS_REPLY_ARRAY:
      out.type = RedisReply::Type::kArray;
      for (size_t i = 0; i < r->elements; ++i) out.elements.push_back(Convert(r->element[i]));
      break;
    default: out.type = RedisReply::Type::kNil;
  }
  return out;
}

}  // namespace

RedisClient::RedisClient(RedisOptions options) : options_(std::move(options)) {
  const auto colon = options_.address.rfind(':');
  host_ = options_.address.substr(0, colon);
  if (colon == std::string::npos || !absl::SimpleAtoi(options_.address.substr(colon + 1), &port_)) port_ = 6379;
}

RedisClient::~RedisClient() {
  absl::MutexLock lock(&mu_);
  for (auto* c : idle_) redisFree(c);
}

void RedisClient::SetRecoveryHook(std::function<absl::Status(const Runner&)> hook) {
  recovery_hook_ = std::move(hook);
}

RedisCounters RedisClient::counters() const {
  absl::MutexLock lock(&mu_);
  return counters_;
}

RedisClient::Admission RedisClient::Admit() {
  absl::MutexLock lock(&mu_);
  if (!outage_) return Admission::kAllowed;
  if (probing_ || (open_ && absl::Now() < open_until_)) {
    ++counters_.rejected;
    metrics::RecordRedisRejected();
    return Admission::kRejected;
  }
  if (!open_) return Admission::kAllowed;  // failing, but not yet past the threshold
  probing_ = true;                         // half-open: this caller alone tries Redis
  return Admission::kProbe;
}

void RedisClient::RecordFailure(Admission admission) {
  absl::MutexLock lock(&mu_);
  ++counters_.errors;
  metrics::RecordRedisError();
  ++consecutive_failures_;
  outage_ = true;
  if (admission == Admission::kProbe) probing_ = false;
  if (admission == Admission::kProbe || consecutive_failures_ >= options_.failure_threshold) {
    if (!open_) {
      log::Warn("redis unavailable: circuit open",
                {{"redis", options_.address},
                 {"open_ms", static_cast<long long>(absl::ToInt64Milliseconds(options_.open_time))}});
    }
    open_ = true;
    open_until_ = absl::Now() + options_.open_time;
  }
}

redisContext* RedisClient::Take() {
  {
    absl::MutexLock lock(&mu_);
    if (!idle_.empty()) {
      auto* c = idle_.back();
      idle_.pop_back();
      return c;
    }
  }
  redisContext* c = redisConnectWithTimeout(host_.c_str(), port_, absl::ToTimeval(options_.connect_timeout));
  if (c == nullptr) return nullptr;
  if (c->err) {
    redisFree(c);
    return nullptr;
  }
  redisSetTimeout(c, absl::ToTimeval(options_.command_timeout));
  redisEnableKeepAlive(c);
  return c;
}

void RedisClient::Give(redisContext* c) {
  absl::MutexLock lock(&mu_);
  if (static_cast<int>(idle_.size()) < options_.max_idle_connections) {
    idle_.push_back(c);
  } else {
    redisFree(c);
  }
}

absl::StatusOr<std::vector<RedisReply>> RedisClient::RunPipeline(
    const std::vector<std::vector<std::string>>& commands) {
  redisContext* c = Take();
  if (c == nullptr) return absl::UnavailableError(absl::StrCat("redis ", options_.address, ": cannot connect"));
  for (const auto& args : commands) {
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (const auto& a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    redisAppendCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lens.data());
  }
  std::vector<RedisReply> replies;
  bool error_reply = false;
  std::string error_text;
  for (size_t i = 0; i < commands.size(); ++i) {
    void* raw = nullptr;
    if (redisGetReply(c, &raw) != REDIS_OK || raw == nullptr) {
      std::string err = c->errstr;
      redisFree(c);  // the connection is in an unknown state: never reuse it
      return absl::UnavailableError(absl::StrCat("redis ", options_.address, ": ", err));
    }
    replies.push_back(Convert(static_cast<redisReply*>(raw)));
    freeReplyObject(raw);
    if (replies.back().type == RedisReply::Type::kError) {
      error_reply = true;
      error_text = replies.back().str;
    }
  }
  Give(c);
  if (error_reply) return absl::UnavailableError(absl::StrCat("redis ", options_.address, ": ", error_text));
  return replies;
}

absl::StatusOr<std::vector<RedisReply>> RedisClient::Pipeline(
    const std::vector<std::vector<std::string>>& commands) {
  const Admission admission = Admit();
  if (admission == Admission::kRejected) return absl::UnavailableError("redis circuit open");
  auto result = RunPipeline(commands);
  if (!result.ok()) {
    RecordFailure(admission);
    return result;
  }
  {
    absl::MutexLock lock(&mu_);
    if (!outage_) {
      consecutive_failures_ = 0;
      return result;
    }
    if (probing_ && admission != Admission::kProbe) {
      ++counters_.rejected;  // another caller is recovering: not safe to use Redis yet
      return absl::UnavailableError("redis recovering");
    }
    probing_ = true;
  }
  // Redis answers again after an outage: recover (bump generations) before anyone uses it.
  const absl::Status hook = recovery_hook_
      ? recovery_hook_([this](const std::vector<std::vector<std::string>>& c) { return RunPipeline(c); })
      : absl::OkStatus();
  absl::MutexLock lock(&mu_);
  probing_ = false;
  if (!hook.ok()) {
    ++counters_.errors;
    open_ = true;
    open_until_ = absl::Now() + options_.open_time;
    return absl::UnavailableError(absl::StrCat("redis recovery failed: ", hook.message()));
  }
  outage_ = false;
  open_ = false;
  consecutive_failures_ = 0;
  open_until_ = absl::InfinitePast();
  ++counters_.recoveries;
  log::Info("redis available again: circuit closed", {{"redis", options_.address}});
  return result;
}

absl::StatusOr<RedisReply> RedisClient::Command(const std::vector<std::string>& args) {
  auto replies = Pipeline({args});
  if (!replies.ok()) return replies.status();
  return std::move((*replies)[0]);
}

}  // namespace kp::cache
