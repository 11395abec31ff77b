// ResponseCache: see response_cache.h.
//
// An entry is "<g1>,<g2>,...\n<body>", the generations (in the order of the request's services)
// read before the body was loaded. It is served only if its generations equal the current ones,
// read by an MGET that started after the read arrived. Because a service bumps its generation
// after committing and before acknowledging a write, an entry loaded before that write can never
// match once the write is acknowledged.
#include "gateway/response_cache.h"

#include <google/protobuf/message.h>
#include <openssl/sha.h>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/cache/generations.h"
#include "common/canonical.h"
#include "common/metrics.h"

namespace kp::gateway {
namespace {

// KEYS: the generations, then the entry. ARGV: the expected generations, the value, the TTL.
constexpr char kStoreScript[] =
    "local n = #KEYS - 1 "
    "local current = redis.call('MGET', unpack(KEYS, 1, n)) "
    "for i = 1, n do if current[i] ~= ARGV[i] then return 0 end end "
    "redis.call('SET', KEYS[#KEYS], ARGV[n + 1], 'PX', ARGV[n + 2]) "
    "return 1";

int ServiceIndex(absl::string_view service) {
  for (size_t i = 0; i < cache::kServices.size(); ++i) {
    if (cache::kServices[i] == service) return static_cast<int>(i);
  }
  return -1;
}

}  // namespace

absl::StatusOr<std::string> CanonicalRequest(const google::protobuf::Descriptor* type, absl::string_view bytes) {
  std::unique_ptr<google::protobuf::Message> message(
      google::protobuf::MessageFactory::generated_factory()->GetPrototype(type)->New());
  if (!message->ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return absl::InvalidArgumentError(absl::StrCat("the request is not a valid ", type->full_name(),
                                                   " (its bytes do not parse)"));
  }
  return CanonicalBytes(*message);
}

const char* OutcomeName(CacheOutcome outcome) {
  switch (outcome) {
    case CacheOutcome::kHit: return "hit";
    case CacheOutcome::kMiss: return "miss";
    case CacheOutcome::kCoalesced: return "coalesced";
    case CacheOutcome::kBypass: return "bypass";
  }
  return "bypass";
}

std::string ResponseCache::Key(absl::string_view view, absl::string_view method, absl::string_view canonical) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(canonical.data()), canonical.size(), digest);
  return absl::StrCat("kp:v1:", view, ":", method, ":",
                      absl::BytesToHexString(absl::string_view(reinterpret_cast<char*>(digest), sizeof digest)));
}

// One cacheable read, start to answer, as a chain of continuations; deletes itself once it has
// answered (and, if it led a load, once its followers are answered).
class CachedRead {
 public:
  CachedRead(ResponseCache* cache, ResponseCache::Request request, ResponseCache::Loader load,
             ResponseCache::Answer answer)
      : cache_(cache),
        request_(std::move(request)),
        load_(std::move(load)),
        answer_(std::move(answer)),
        key_(ResponseCache::Key(request_.view, request_.method, request_.canonical)) {}

  void Start() {
    if (cache_->redis_ == nullptr) {
      Bypass();
      return;
    }
    const absl::Time asked = absl::Now();
    cache_->ReadGenerations([this, asked](const ResponseCache::Generations* current) {
      redis_left_ -= absl::Now() - asked;
      OnGenerations(current);
    });
  }

 private:
  // What the entry must be stamped with, from the current generations of its services.
  void OnGenerations(const ResponseCache::Generations* current) {
    if (current == nullptr) {
      Bypass();  // Redis down, slow, recovering or busy: the backends answer
      return;
    }
    std::vector<absl::string_view> stamp;
    for (auto service : request_.services) {
      generations_.push_back((*current)[ServiceIndex(service)]);
      stamp.push_back(generations_.back());
    }
    stamp_ = absl::StrJoin(stamp, ",");
    // The local copy, if current, spares Redis the entry itself.
    if (auto local = cache_->LocalGet(key_); local && local->stamp == stamp_) {
      Hit(local->body);
      return;
    }
    const bool posted = cache_->Post([this] {
      auto entry = cache_->redis_->Command({"GET", key_}, &redis_left_);
      OnEntry(entry.ok() ? std::move(*entry) : cache::RedisReply{});
    });
    if (!posted) Miss();
  }

  void OnEntry(const cache::RedisReply& entry) {
    if (entry.type == cache::RedisReply::Type::kString) {
      const auto newline = entry.str.find('\n');
      if (newline != std::string::npos && absl::string_view(entry.str).substr(0, newline) == stamp_) {
        auto body = std::make_shared<const std::string>(entry.str.substr(newline + 1));
        cache_->LocalStore(key_, stamp_, body);
        Hit(std::move(body));
        return;
      }
    }
    Miss();
  }

  void Hit(Body body) {
    ++cache_->hits_;
    Answer(CacheOutcome::kHit, grpc::Status::OK, std::move(body));
  }

  void Bypass() {
    ++cache_->bypasses_;
    if (Gone(CacheOutcome::kBypass)) return;
    load_(/*alone=*/true, [this](Loaded loaded) {
      Answer(CacheOutcome::kBypass, loaded.status, std::make_shared<const std::string>(std::move(loaded.body)));
    });
  }

  // Joins the load of this entry at these generations, or leads it.
  void Miss() {
    flight_ = absl::StrCat(key_, "@", stamp_);
    {
      absl::MutexLock lock(&cache_->flights_mu_);
      auto [it, leader] = cache_->flights_.try_emplace(flight_);
      if (!leader) {
        it->second.push_back(this);  // answered by the leader (see Land)
        return;
      }
    }
    load_(/*alone=*/false, [this](Loaded loaded) { OnLoaded(std::move(loaded)); });
  }

  void OnLoaded(Loaded loaded) {
    loaded_ = std::move(loaded);
    if (!loaded_.status.ok() || !loaded_.view_confirmed || !loaded_.within_quota) {
      Land();
      return;
    }
    // Stored only if the generations are still those read before loading, checked atomically
    // in Redis: a write acknowledged meanwhile, or a Redis restarted meanwhile, refuses it.
    // Stored before the followers are released and the flight is forgotten, so that a caller
    // arriving next finds the entry rather than starting another load.
    const bool posted = cache_->Post([this] {
      std::vector<std::string> cmd{"EVAL", kStoreScript, absl::StrCat(request_.services.size() + 1)};
      for (auto s : request_.services) cmd.push_back(cache::GenerationKey(s));
      cmd.push_back(key_);
      for (const auto& g : generations_) cmd.push_back(g);
      cmd.push_back(absl::StrCat(stamp_, "\n", loaded_.body));
      cmd.push_back(absl::StrCat(absl::ToInt64Milliseconds(cache_->ttl_)));
      auto stored = cache_->redis_->Command(cmd, &redis_left_);
      if (stored.ok() && stored->integer == 1) {
        cache_->LocalStore(key_, stamp_, std::make_shared<const std::string>(loaded_.body));
      }
      Land();
    });
    if (!posted) Land();
  }

  // The load is done: answer every follower, then this call. Followers share only what the
  // request itself decides: a response (or NOT_FOUND, INVALID_ARGUMENT...) made for the key's
  // view. A response made for another view (a role changing), or a failure of the leader's own
  // (its deadline, its quota, a backend unavailable or cancelled), is the leader's alone:
  // followers load for themselves.
  void Land() {
    std::vector<CachedRead*> followers;
    {
      absl::MutexLock lock(&cache_->flights_mu_);
      auto it = cache_->flights_.find(flight_);
      followers = std::move(it->second);
      cache_->flights_.erase(it);
    }
    auto body = std::make_shared<const std::string>(std::move(loaded_.body));
    ++cache_->misses_;
    const bool shared = loaded_.view_confirmed && SharedOutcome(loaded_.status.error_code());
    for (CachedRead* f : followers) {
      if (shared) {
        ++cache_->coalesced_;
        f->Answer(CacheOutcome::kCoalesced, loaded_.status, body);
      } else {
        f->LoadAlone();
      }
    }
    Answer(CacheOutcome::kMiss, loaded_.status, body);
  }

  void LoadAlone() {
    ++cache_->misses_;
    if (Gone(CacheOutcome::kMiss)) return;
    load_(/*alone=*/true, [this](Loaded loaded) {
      Answer(CacheOutcome::kMiss, loaded.status, std::make_shared<const std::string>(std::move(loaded.body)));
    });
  }

  // Whether an outcome follows from the request and the data alone (the same for every caller
  // with this key), rather than from the call that loaded it.
  static bool SharedOutcome(grpc::StatusCode code) {
    switch (code) {
      case grpc::StatusCode::OK:
      case grpc::StatusCode::NOT_FOUND:
      case grpc::StatusCode::INVALID_ARGUMENT:
      case grpc::StatusCode::FAILED_PRECONDITION:
      case grpc::StatusCode::OUT_OF_RANGE:
        return true;
      default:
        return false;
    }
  }

  // The caller has gone: answered CANCELLED (the answer goes nowhere) and nothing loaded for it.
  bool Gone(CacheOutcome outcome) {
    if (request_.caller == nullptr || !request_.caller->cancelled()) return false;
    Answer(outcome, grpc::Status(grpc::StatusCode::CANCELLED, "the caller has gone"), nullptr);
    return true;
  }

  void Answer(CacheOutcome outcome, const grpc::Status& status, Body body) {
    metrics::RecordCache(OutcomeName(outcome));
    answer_(outcome, status, body);
    delete this;
  }

  ResponseCache* const cache_;
  const ResponseCache::Request request_;
  const ResponseCache::Loader load_;
  const ResponseCache::Answer answer_;
  const std::string key_;
  std::vector<std::string> generations_;  // of request_.services, as read
  std::string stamp_, flight_;
  Loaded loaded_;
  // Redis time this call may still spend: one --redis_timeout for everything it asks of Redis.
  absl::Duration redis_left_ = cache_->redis_ ? cache_->redis_->timeout() : absl::ZeroDuration();
};

ResponseCache::ResponseCache(cache::RedisClient* redis, absl::Duration ttl, size_t local_bytes, int redis_threads,
                             size_t redis_queue)
    : redis_(redis), ttl_(ttl), local_budget_(local_bytes), queue_limit_(redis_queue) {
  if (redis_ == nullptr) return;
  for (int i = 0; i < redis_threads; ++i) threads_.emplace_back([this] { RedisLoop(); });
}

ResponseCache::~ResponseCache() {
  {
    absl::MutexLock lock(&queue_mu_);
    stopping_ = true;
  }
  for (auto& t : threads_) t.join();
}

void ResponseCache::Serve(Request request, Loader load, Answer answer) {
  (new CachedRead(this, std::move(request), std::move(load), std::move(answer)))->Start();
}

bool ResponseCache::Post(std::function<void()> op) {
  absl::MutexLock lock(&queue_mu_);
  if (redis_ == nullptr || stopping_ || queue_.size() >= queue_limit_) return false;
  queue_.push_back(std::move(op));
  return true;
}

void ResponseCache::RedisLoop() {
  while (true) {
    std::function<void()> op;
    {
      absl::MutexLock lock(&queue_mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(queue_mu_) { return stopping_ || !queue_.empty(); };
      queue_mu_.Await(absl::Condition(&ready));
      if (queue_.empty()) return;  // stopping, and nothing left
      op = std::move(queue_.front());
      queue_.pop_front();
    }
    op();
  }
}

void ResponseCache::ReadGenerations(std::function<void(const Generations*)> done) {
  std::vector<GenerationWaiter> unserved;
  {
    absl::MutexLock lock(&gen_mu_);
    gen_waiting_.push_back({std::move(done), absl::Now()});
    if (!gen_in_flight_) unserved = StartGenerationRead();
  }
  for (auto& w : unserved) w.done(nullptr);
}

std::vector<ResponseCache::GenerationWaiter> ResponseCache::StartGenerationRead() {
  gen_in_flight_ = true;
  auto batch = std::make_shared<std::vector<GenerationWaiter>>(std::move(gen_waiting_));
  gen_waiting_.clear();
  const bool posted = Post([this, batch] {
    // No call waits on Redis longer than its timeout in all: this read gets what the earliest
    // of its callers has left.
    absl::Time earliest = absl::InfiniteFuture();
    for (const auto& w : *batch) earliest = std::min(earliest, w.arrived);
    absl::Duration budget = earliest + redis_->timeout() - absl::Now();
    std::vector<std::string> mget{"MGET"};
    for (auto s : cache::kServices) mget.push_back(cache::GenerationKey(s));
    auto replies = redis_->Pipeline({mget}, &budget);
    Generations current;
    bool ok = replies.ok() && (*replies)[0].elements.size() == current.size();
    if (ok) {
      std::vector<absl::string_view> missing;
      for (size_t i = 0; i < current.size(); ++i) {
        if ((*replies)[0].elements[i].type != cache::RedisReply::Type::kString) missing.push_back(cache::kServices[i]);
      }
      if (!missing.empty()) {
        // A fresh Redis: give the missing generations random starting values, then read again.
        auto init = cache::Generations::InitCommands(missing);
        init.push_back(mget);
        replies = redis_->Pipeline(init, &budget);
        ok = replies.ok() && replies->back().elements.size() == current.size();
      }
      for (size_t i = 0; ok && i < current.size(); ++i) {
        const auto& e = replies->back().elements[i];
        ok = e.type == cache::RedisReply::Type::kString;
        if (ok) current[i] = e.str;
      }
    }
    ++generation_reads_;
    // The next read starts now (for whoever arrived meanwhile), then this batch goes on.
    std::vector<GenerationWaiter> unserved;
    {
      absl::MutexLock lock(&gen_mu_);
      gen_in_flight_ = false;
      if (!gen_waiting_.empty()) unserved = StartGenerationRead();
    }
    for (auto& w : *batch) w.done(ok ? &current : nullptr);
    for (auto& w : unserved) w.done(nullptr);
  });
  if (posted) return {};
  // Redis's threads are swamped: these calls bypass it (the caller answers them, unlocked).
  gen_in_flight_ = false;
  return std::move(*batch);
}

std::optional<ResponseCache::LocalEntry> ResponseCache::LocalGet(const std::string& key) {
  absl::MutexLock lock(&local_mu_);
  auto it = local_.find(key);
  if (it == local_.end() || absl::Now() >= it->second.expires) return std::nullopt;
  return it->second;
}

void ResponseCache::LocalStore(const std::string& key, const std::string& stamp, Body body) {
  const size_t size = key.size() + stamp.size() + body->size();
  if (size > local_budget_ / 16) return;  // large entries stay in Redis only
  absl::MutexLock lock(&local_mu_);
  if (auto it = local_.find(key); it != local_.end()) {
    local_bytes_ -= key.size() + it->second.stamp.size() + it->second.body->size();
  }
  if (local_bytes_ + size > local_budget_) {
    // Simple and bounded: start over. Entries come back from Redis on their next read.
    local_.clear();
    local_bytes_ = 0;
  }
  local_[key] = LocalEntry{stamp, std::move(body), absl::Now() + ttl_};
  local_bytes_ += size;
}

void ResponseCache::CountBypass() {
  ++bypasses_;
  metrics::RecordCache(OutcomeName(CacheOutcome::kBypass));
}

CacheCounters ResponseCache::counters() const {
  CacheCounters c;
  c.hits = hits_;
  c.misses = misses_;
  c.coalesced = coalesced_;
  c.bypasses = bypasses_;
  c.generation_reads = generation_reads_;
  c.redis_errors = redis_ ? redis_->counters().errors : 0;  // includes failed stores
  absl::MutexLock lock(&flights_mu_);
  for (const auto& [flight, followers] : flights_) c.waiting += static_cast<int64_t>(followers.size());
  return c;
}

}  // namespace kp::gateway
