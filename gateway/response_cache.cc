// ResponseCache: see response_cache.h.
//
// An entry is "<g1>,<g2>,...\n<body>", the generations (in the order of `services`) read
// before the body was loaded. One pipelined round trip reads the current generations and the
// entry; the entry is served only if its generations equal the current ones. Because a
// service bumps its generation after committing and before acknowledging a write, an entry
// loaded before that write can never match once the write is acknowledged.
#include "gateway/response_cache.h"

#include <google/protobuf/message.h>
#include <openssl/sha.h>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
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

}  // namespace

void Count(CacheOutcome outcome);

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

ResponseCache::ResponseCache(cache::RedisClient* redis, absl::Duration ttl, size_t local_bytes)
    : redis_(redis), ttl_(ttl), local_budget_(local_bytes) {}

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

std::string ResponseCache::Key(absl::string_view view, absl::string_view method, absl::string_view request) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(request.data()), request.size(), digest);
  return absl::StrCat("kp:v1:", view, ":", method, ":",
                      absl::BytesToHexString(absl::string_view(reinterpret_cast<char*>(digest), sizeof digest)));
}

CacheCounters ResponseCache::counters() const {
  CacheCounters c;
  c.hits = hits_;
  c.misses = misses_;
  c.coalesced = coalesced_;
  c.bypasses = bypasses_;
  c.redis_errors = redis_ ? redis_->counters().errors : 0;  // includes failed stores
  return c;
}

Loaded ResponseCache::Coalesce(const std::string& flight_key, const std::function<Loaded()>& load,
                               const std::function<void(const Loaded&)>& store, CacheOutcome* outcome) {
  std::shared_ptr<Flight> flight;
  bool leader = false;
  {
    absl::MutexLock lock(&mu_);
    auto& slot = flights_[flight_key];
    if (slot == nullptr) {
      slot = std::make_shared<Flight>();
      leader = true;
    }
    flight = slot;
  }
  if (!leader) {
    flight->done.WaitForNotification();
    if (flight->result.view_confirmed) {
      ++coalesced_;
      *outcome = CacheOutcome::kCoalesced;
      return flight->result;
    }
    // The leader's answer (or error) was made for another view than the key's: not for this
    // caller, who asks for itself.
    ++misses_;
    *outcome = CacheOutcome::kMiss;
    return load();
  }
  flight->result = load();
  // Stored before followers are released and the flight is forgotten, so that a caller
  // arriving next finds the entry rather than starting another load.
  if (flight->result.status.ok() && flight->result.view_confirmed && flight->result.within_quota) {
    store(flight->result);
  }
  {
    absl::MutexLock lock(&mu_);
    flights_.erase(flight_key);
  }
  flight->done.Notify();
  ++misses_;
  *outcome = CacheOutcome::kMiss;
  return flight->result;
}

void Count(CacheOutcome outcome) { metrics::RecordCache(OutcomeName(outcome)); }

Loaded ResponseCache::GetOrLoad(absl::string_view view, absl::string_view method, absl::string_view request,
                                const std::vector<absl::string_view>& services,
                                const std::function<Loaded()>& load, CacheOutcome* outcome) {
  Lookup lookup = Find(view, method, request, services);
  if (lookup.outcome == CacheOutcome::kHit) {
    *outcome = CacheOutcome::kHit;
    return Loaded{grpc::Status::OK, *lookup.body};
  }
  return Load(lookup, services, load, outcome);
}

ResponseCache::Lookup ResponseCache::Find(absl::string_view view, absl::string_view method,
                                          absl::string_view request, const std::vector<absl::string_view>& services) {
  Lookup lookup;
  if (redis_ == nullptr) return lookup;  // bypass
  lookup.key = Key(view, method, request);
  lookup.redis_budget = redis_->timeout();
  absl::Duration* budget = &lookup.redis_budget;
  const std::string& key = lookup.key;
  // With a local copy, only the generations are read (a few bytes); otherwise the entry too.
  const std::optional<LocalEntry> local = LocalGet(key);
  const bool have_local = local.has_value();
  std::vector<std::vector<std::string>> commands(1);
  commands[0].push_back("MGET");
  for (auto s : services) commands[0].push_back(cache::GenerationKey(s));
  commands[0].push_back(have_local ? cache::GenerationKey(services[0]) : key);
  auto replies = redis_->Pipeline(commands, budget);
  // Redis down, slow, recovering or odd: the backends answer (bypass). Not coalesced, since
  // without generations a flight could not be told apart from one started before a write.
  if (!replies.ok() || (*replies)[0].elements.size() != services.size() + 1) return lookup;
  auto* values = &(*replies)[0].elements;
  std::vector<absl::string_view> missing;
  for (size_t i = 0; i < services.size(); ++i) {
    if ((*values)[i].type != cache::RedisReply::Type::kString) missing.push_back(services[i]);
  }
  if (!missing.empty()) {
    // A fresh Redis: give the missing generations random starting values, then read again.
    auto init = cache::Generations::InitCommands(missing);
    init.push_back(commands[0]);
    replies = redis_->Pipeline(init, budget);
    if (!replies.ok() || replies->back().elements.size() != services.size() + 1) return lookup;
    values = &replies->back().elements;
  }
  for (size_t i = 0; i < services.size(); ++i) lookup.generations.push_back((*values)[i].str);
  lookup.stamp = absl::StrJoin(lookup.generations, ",");
  lookup.outcome = CacheOutcome::kMiss;
  if (have_local) {
    if (local->stamp == lookup.stamp) {
      ++hits_;
      Count(CacheOutcome::kHit);
      lookup.outcome = CacheOutcome::kHit;
      lookup.body = local->body;
      return lookup;
    }
    // The local copy is stale: read the entry itself.
    auto entry = redis_->Command({"GET", key}, budget);
    if (entry.ok() && entry->type == cache::RedisReply::Type::kString) {
      values->back() = std::move(*entry);
    } else {
      values->back() = cache::RedisReply{};
    }
  }
  const auto& entry = values->back();
  if (entry.type == cache::RedisReply::Type::kString) {
    const auto newline = entry.str.find('\n');
    if (newline != std::string::npos && absl::string_view(entry.str).substr(0, newline) == lookup.stamp) {
      ++hits_;
      Count(CacheOutcome::kHit);
      lookup.outcome = CacheOutcome::kHit;
      lookup.body = std::make_shared<const std::string>(entry.str.substr(newline + 1));
      LocalStore(key, lookup.stamp, lookup.body);
    }
  }
  return lookup;
}

Loaded ResponseCache::Load(const Lookup& lookup, const std::vector<absl::string_view>& services,
                           const std::function<Loaded()>& load, CacheOutcome* outcome) {
  if (lookup.outcome != CacheOutcome::kMiss) {
    ++bypasses_;
    *outcome = CacheOutcome::kBypass;
    Count(*outcome);
    return load();
  }
  const std::string& key = lookup.key;
  auto store = [&](const Loaded& loaded) {
    // Stored only if the generations are still those read before loading, checked atomically
    // in Redis: a write acknowledged meanwhile, or a Redis restarted meanwhile, refuses it.
    std::vector<std::string> cmd{"EVAL", kStoreScript, absl::StrCat(services.size() + 1)};
    for (auto s : services) cmd.push_back(cache::GenerationKey(s));
    cmd.push_back(key);
    for (const auto& g : lookup.generations) cmd.push_back(g);
    cmd.push_back(absl::StrCat(lookup.stamp, "\n", loaded.body));
    cmd.push_back(absl::StrCat(absl::ToInt64Milliseconds(ttl_)));
    absl::Duration budget = lookup.redis_budget;
    auto stored = redis_->Command(cmd, &budget);
    if (stored.ok() && stored->integer == 1) {
      LocalStore(key, lookup.stamp, std::make_shared<const std::string>(loaded.body));
    }
  };
  Loaded loaded = Coalesce(absl::StrCat(key, "@", lookup.stamp), load, store, outcome);
  Count(*outcome);
  return loaded;
}

}  // namespace kp::gateway
