// RedisClient: see redis_client.h.
#include "common/cache/redis_client.h"

#include <hiredis/hiredis.h>
#include <sys/time.h>

#include <cerrno>

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
  for (auto& c : idle_) redisFree(c.context);
}
void RedisClient::SetRecoveryHook(std::function<absl::Status(const Runner&)> hook) {
  recovery_hook_ = std::move(hook);
}

RedisCounters RedisClient::counters() const {
  absl::MutexLock lock(&mu_);
  return counters_;
}

RedisClient::Admission RedisClient::Admit(bool must_try) {
  absl::MutexLock lock(&mu_);
  if (!outage_) return Admission::kAllowed;
  // A generation bump is owed to every gateway that may hold an entry the write made stale: it
  // is tried (and Redis recovered first) even while the breaker keeps reads away.
  if (must_try) return Admission::kForced;
  if (probing_ || (open_ && absl::Now() < open_until_)) {
    ++counters_.rejected;
    metrics::RecordRedisRejected();
    return Admission::kRejected;
  }
  // After a failure, one caller at a time tries Redis, and recovers it before using it.
  probing_ = true;
  return Admission::kProbe;
}

void RedisClient::RecordFailure(Admission admission) {
  absl::MutexLock lock(&mu_);
  ++counters_.errors;
  metrics::RecordRedisError();
  ++consecutive_failures_;
  outage_ = true;
  if (admission == Admission::kProbe) probing_ = false;
  if (admission == Admission::kProbe || admission == Admission::kForced ||
      consecutive_failures_ >= options_.failure_threshold) {
    if (!open_) {
      log::Warn("redis unavailable: circuit open",
                {{"redis", options_.address},
                 {"open_ms", static_cast<long long>(absl::ToInt64Milliseconds(options_.open_time))}});
    }
    open_ = true;
    open_until_ = absl::Now() + options_.open_time;
  }
}

RedisClient::Connection RedisClient::TakeIdle() {
  absl::MutexLock lock(&mu_);
  if (idle_.empty()) return {};
  Connection c = idle_.back();
  idle_.pop_back();
  return c;
}

RedisClient::Connection RedisClient::Connect(absl::Time deadline, bool* restarted) {
  const absl::Duration left = deadline - absl::Now();
  if (left <= absl::ZeroDuration()) return {};
  redisContext* c = redisConnectWithTimeout(host_.c_str(), port_, absl::ToTimeval(left));
  if (c == nullptr) return {};
  if (c->err) {
    redisFree(c);
    return {};
  }
  redisEnableKeepAlive(c);
  redisSetTimeout(c, absl::ToTimeval(std::max(deadline - absl::Now(), absl::Milliseconds(1))));
  if (!options_.password.empty()) {
    auto* auth = static_cast<redisReply*>(redisCommand(c, "AUTH %b", options_.password.data(), options_.password.size()));
    const bool ok = auth != nullptr && auth->type == REDIS_REPLY_STATUS;
    if (!ok) {
      // Said on every refused connection (the breaker makes that one per --redis_open_time).
      if (auth != nullptr && auth->type == REDIS_REPLY_ERROR) {
        log::Warn("redis refused the password", {{"redis", options_.address}, {"error", std::string(auth->str, auth->len)}});
      }
      if (auth != nullptr) freeReplyObject(auth);
      redisFree(c);
      return {};
    }
    freeReplyObject(auth);
  }
  // Which Redis is this? A run id other than the last one seen means it restarted, perhaps
  // from an old snapshot, even if this process never saw it down.
  auto* info = static_cast<redisReply*>(redisCommand(c, "INFO server"));
  if (info == nullptr || info->type != REDIS_REPLY_STRING) {
    if (info != nullptr) freeReplyObject(info);
    redisFree(c);
    return {};
  }
  const absl::string_view text(info->str, info->len);
  std::string run_id;
  if (const size_t at = text.find("run_id:"); at != absl::string_view::npos) {
    const size_t end = text.find_first_of("\r\n", at);
    run_id = std::string(text.substr(at + 7, end == absl::string_view::npos ? absl::string_view::npos : end - at - 7));
  }
  freeReplyObject(info);
  {
    absl::MutexLock lock(&mu_);
    *restarted = !run_id_.empty() && run_id != run_id_;
    run_id_ = run_id;
  }
  return {c, deadline - absl::Now()};
}

void RedisClient::Give(Connection c) {
  absl::MutexLock lock(&mu_);
  if (static_cast<int>(idle_.size()) < options_.max_idle_connections) {
    idle_.push_back(c);
  } else {
    redisFree(c.context);
  }
}

void RedisClient::DropIdle() {
  std::vector<Connection> idle;
  {
    absl::MutexLock lock(&mu_);
    idle.swap(idle_);
  }
  for (auto& c : idle) redisFree(c.context);
}

absl::StatusOr<std::vector<RedisReply>> RedisClient::RunPipeline(
    const std::vector<std::vector<std::string>>& commands, absl::Time deadline, bool* closed_pooled,
    bool recovering) {
  *closed_pooled = false;
  Connection c = TakeIdle();
  const bool pooled = c.context != nullptr;
  bool restarted = false;
  if (!pooled) c = Connect(deadline, &restarted);
  if (c.context == nullptr) {
    return absl::UnavailableError(absl::StrCat("redis ", options_.address, ": cannot connect in time"));
  }
  if (restarted && !recovering) {
    // Not a failure of Redis, but what it holds cannot be trusted before recovery.
    Give(c);
    *closed_pooled = true;
    return absl::UnavailableError(absl::StrCat("redis ", options_.address, ": restarted"));
  }
  for (const auto& args : commands) {
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (const auto& a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    redisAppendCommandArgv(c.context, static_cast<int>(argv.size()), argv.data(), lens.data());
  }
  std::vector<RedisReply> replies;
  std::string error_text;
  bool error_reply = false;
  for (size_t i = 0; i < commands.size(); ++i) {
    // Every read gets only what is left of the allowance (set on the socket when it differs).
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      redisFree(c.context);
      return absl::UnavailableError(absl::StrCat("redis ", options_.address, ": timed out"));
    }
    if (c.io_timeout > left + absl::Milliseconds(1) || c.io_timeout < left - absl::Milliseconds(10)) {
      redisSetTimeout(c.context, absl::ToTimeval(left));
      c.io_timeout = left;
    }
    void* raw = nullptr;
    errno = 0;
    if (redisGetReply(c.context, &raw) != REDIS_OK || raw == nullptr) {
      const int err = errno;
      // Closed by the server (EOF, reset, broken pipe) before any reply, as opposed to a timeout.
      *closed_pooled = pooled && i == 0 &&
                       (c.context->err == REDIS_ERR_EOF ||
                        (c.context->err == REDIS_ERR_IO && (err == ECONNRESET || err == EPIPE)));
      error_text = c.context->errstr;
      redisFree(c.context);  // the connection is in an unknown state: never reuse it
      return absl::UnavailableError(absl::StrCat("redis ", options_.address, ": ", error_text));
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

absl::Status RedisClient::Recover(absl::Time deadline) {
  if (!recovery_hook_) return absl::OkStatus();
  bool closed = false;
  return recovery_hook_([this, deadline, &closed](const std::vector<std::vector<std::string>>& c) {
    return RunPipeline(c, deadline, &closed, /*recovering=*/true);
  });
}

absl::StatusOr<std::vector<RedisReply>> RedisClient::Pipeline(
    const std::vector<std::vector<std::string>>& commands, absl::Duration* budget, bool must_try) {
  const absl::Time start = absl::Now();
  const absl::Time deadline = start + (budget ? std::min(*budget, options_.command_timeout) : options_.command_timeout);
  struct Charge {
    absl::Duration* budget;
    absl::Time start;
    ~Charge() {
      if (budget) *budget -= absl::Now() - start;
    }
  } charge{budget, start};
  if (deadline <= start) return absl::UnavailableError("redis: no time left for this call");
  const Admission admission = Admit(must_try);
  if (admission == Admission::kRejected) return absl::UnavailableError("redis circuit open");
  if (admission == Admission::kProbe || admission == Admission::kForced) {
    // Redis failed before: it may have missed bumps, or restarted from an old snapshot. Move
    // every generation forward first; only then may anything read from it be used.
    const absl::Status recovered = Recover(deadline);
    if (!recovered.ok()) {
      RecordFailure(admission);
      return absl::UnavailableError(absl::StrCat("redis recovery: ", recovered.message()));
    }
    absl::MutexLock lock(&mu_);
    if (admission == Admission::kProbe) probing_ = false;
    outage_ = false;
    open_ = false;
    consecutive_failures_ = 0;
    open_until_ = absl::InfinitePast();
    ++counters_.recoveries;
    log::Info("redis available again: circuit closed", {{"redis", options_.address}});
  }
  bool closed_pooled = false;
  auto result = RunPipeline(commands, deadline, &closed_pooled);
  if (!result.ok() && closed_pooled) {
    // Redis restarted: it closed the pool's connections (every idle one is as dead as this
    // one), or a new connection found a new run id. Nothing was read, so the commands go again,
    // within the same allowance, after the recovery a restarted Redis needs.
    DropIdle();
    log::Info("redis restarted (closed pooled connections, or a new run id): recovering",
              {{"redis", options_.address}});
    const absl::Status recovered = Recover(deadline);
    result = recovered.ok() ? RunPipeline(commands, deadline, &closed_pooled, /*recovering=*/true)
                            : absl::StatusOr<std::vector<RedisReply>>(recovered);
  }
  if (!result.ok()) {
    RecordFailure(Admission::kAllowed);
    return result;
  }
  absl::MutexLock lock(&mu_);
  consecutive_failures_ = 0;
  return result;
}

absl::StatusOr<RedisReply> RedisClient::Command(const std::vector<std::string>& args, absl::Duration* budget,
                                                bool must_try) {
  auto replies = Pipeline({args}, budget, must_try);
  if (!replies.ok()) return replies.status();
  return std::move((*replies)[0]);
}

}  // namespace kp::cache
