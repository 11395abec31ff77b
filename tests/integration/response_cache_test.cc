// ResponseCache alone, on a real redis-server, with loaders the test controls: what callers who
// joined another caller's load are answered with, and when they load for themselves.
#include "gateway/response_cache.h"

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "absl/synchronization/mutex.h"
#include "common/cache/redis_client.h"
#include "tests/integration/harness.h"

namespace kp::testing {
namespace {

using gateway::Body;
using gateway::CacheOutcome;
using gateway::Loaded;
using gateway::ResponseCache;

// One caller: its loader (held until the test releases it, or answering at once) and its answer.
class Caller {
 public:
  // `immediate`: the loader answers at once with this; else it waits for Release.
  explicit Caller(std::optional<Loaded> immediate = std::nullopt) : immediate_(std::move(immediate)) {}

  ResponseCache::Loader loader() {
    return [this](bool alone, std::function<void(Loaded)> done) {
      {
        absl::MutexLock lock(&mu_);
        ++loads_;
        alone_ = alone;
        if (!immediate_) {
          held_ = std::move(done);
          return;
        }
      }
      done(*immediate_);
    };
  }
  ResponseCache::Answer answer() {
    return [this](CacheOutcome outcome, const grpc::Status& status, const Body& body) {
      absl::MutexLock lock(&mu_);
      answered_ = true;
      outcome_ = outcome;
      status_ = status;
      body_ = status.ok() && body ? *body : "";
    };
  }
  // Completes the held load with `loaded` (once its loader has been called).
  void Release(Loaded loaded) {
    std::function<void(Loaded)> done;
    {
      absl::MutexLock lock(&mu_);
      auto called = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return held_ != nullptr; };
      ASSERT_TRUE(mu_.AwaitWithTimeout(absl::Condition(&called), absl::Seconds(10))) << "never loaded";
      done = std::move(held_);
    }
    done(std::move(loaded));
  }
  bool WaitAnswered() {
    absl::MutexLock lock(&mu_);
    auto answered = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return answered_; };
    return mu_.AwaitWithTimeout(absl::Condition(&answered), absl::Seconds(10));
  }
  int loads() {
    absl::MutexLock lock(&mu_);
    return loads_;
  }
  bool alone() {
    absl::MutexLock lock(&mu_);
    return alone_;
  }
  CacheOutcome outcome() {
    absl::MutexLock lock(&mu_);
    return outcome_;
  }
  grpc::StatusCode code() {
    absl::MutexLock lock(&mu_);
    return status_.error_code();
  }
  std::string body() {
    absl::MutexLock lock(&mu_);
    return body_;
  }

 private:
  const std::optional<Loaded> immediate_;
  absl::Mutex mu_;
  int loads_ ABSL_GUARDED_BY(mu_) = 0;
  bool alone_ ABSL_GUARDED_BY(mu_) = false;
  std::function<void(Loaded)> held_ ABSL_GUARDED_BY(mu_);
  bool answered_ ABSL_GUARDED_BY(mu_) = false;
  CacheOutcome outcome_ ABSL_GUARDED_BY(mu_) = CacheOutcome::kBypass;
  grpc::Status status_ ABSL_GUARDED_BY(mu_);
  std::string body_ ABSL_GUARDED_BY(mu_);
};

class ResponseCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    redis_ = std::make_unique<RedisProcess>(dir_.path());
    ASSERT_TRUE(redis_->Start().ok());
    cache::RedisOptions options;
    options.address = redis_->address();
    client_ = std::make_unique<cache::RedisClient>(options);
    cache_ = std::make_unique<ResponseCache>(client_.get(), absl::Seconds(60));
  }

  ResponseCache::Request Request(const std::string& canonical,
                                 std::shared_ptr<const gateway::CancelScope> caller = nullptr) {
    return {"public", "/khartoum.events.v1.EventService/GetEvent", canonical, {"events"}, std::move(caller)};
  }

  // A leader whose load is held, and `n` callers who joined it (waiting for it, per the cache).
  void StartCoalesced(const std::string& canonical, Caller& leader, std::vector<std::unique_ptr<Caller>>& followers,
                      int n, const std::vector<std::shared_ptr<gateway::CancelScope>>& scopes = {}) {
    cache_->Serve(Request(canonical), leader.loader(), leader.answer());
    ASSERT_TRUE(PollUntil([&] { return leader.loads() == 1; }, absl::Seconds(10)));
    for (int i = 0; i < n; ++i) {
      followers.push_back(std::make_unique<Caller>(Loaded{grpc::Status::OK, "own", true}));
      cache_->Serve(Request(canonical, i < static_cast<int>(scopes.size()) ? scopes[i] : nullptr),
                    followers.back()->loader(), followers.back()->answer());
    }
    ASSERT_TRUE(PollUntil([&] { return cache_->counters().waiting == n; }, absl::Seconds(10)))
        << "callers waiting for the leader's load: " << cache_->counters().waiting;
    EXPECT_FALSE(leader.alone()) << "a load others may wait for is not the leader's alone";
  }

  TempDir dir_;
  std::unique_ptr<RedisProcess> redis_;
  std::unique_ptr<cache::RedisClient> client_;
  std::unique_ptr<ResponseCache> cache_;
};

TEST_F(ResponseCacheTest, FollowersShareWhatTheRequestDecides) {
  for (grpc::StatusCode code : {grpc::StatusCode::OK, grpc::StatusCode::NOT_FOUND, grpc::StatusCode::INVALID_ARGUMENT,
                                grpc::StatusCode::FAILED_PRECONDITION}) {
    SCOPED_TRACE(code);
    Caller leader;
    std::vector<std::unique_ptr<Caller>> followers;
    ASSERT_NO_FATAL_FAILURE(StartCoalesced("decided-" + std::to_string(code), leader, followers, 3));
    leader.Release(Loaded{grpc::Status(code, code == grpc::StatusCode::OK ? "" : "decided"), "shared", true});
    ASSERT_TRUE(leader.WaitAnswered());
    EXPECT_EQ(leader.code(), code);
    for (auto& f : followers) {
      ASSERT_TRUE(f->WaitAnswered());
      EXPECT_EQ(f->outcome(), CacheOutcome::kCoalesced);
      EXPECT_EQ(f->code(), code);
      EXPECT_EQ(f->loads(), 0) << "a follower loaded although the leader's answer was its too";
    }
    if (code == grpc::StatusCode::OK) {
      for (auto& f : followers) EXPECT_EQ(f->body(), "shared");
    }
  }
}

// The leader's own deadline, quota or a backend it could not reach are not the followers'.
TEST_F(ResponseCacheTest, FollowersOfALoadThatFailedForItsLeaderLoadForThemselves) {
  for (grpc::StatusCode code : {grpc::StatusCode::DEADLINE_EXCEEDED, grpc::StatusCode::RESOURCE_EXHAUSTED,
                                grpc::StatusCode::UNAVAILABLE, grpc::StatusCode::CANCELLED}) {
    SCOPED_TRACE(code);
    Caller leader;
    std::vector<std::unique_ptr<Caller>> followers;
    ASSERT_NO_FATAL_FAILURE(StartCoalesced("leaders-own-" + std::to_string(code), leader, followers, 3));
    // The backends confirmed the view: only the outcome says this answer is the leader's alone.
    leader.Release(Loaded{grpc::Status(code, "the leader's own"), "", true});
    ASSERT_TRUE(leader.WaitAnswered());
    EXPECT_EQ(leader.code(), code);
    for (auto& f : followers) {
      ASSERT_TRUE(f->WaitAnswered());
      EXPECT_EQ(f->code(), grpc::StatusCode::OK) << "handed the leader's failure";
      EXPECT_EQ(f->body(), "own");
      EXPECT_EQ(f->loads(), 1);
      EXPECT_TRUE(f->alone()) << "a follower's own load serves it alone (cancelled with it)";
    }
  }
}

// A response the backends did not confirm for the key's view is not shared, whatever its status.
TEST_F(ResponseCacheTest, AnUnconfirmedViewIsNeverShared) {
  Caller leader;
  std::vector<std::unique_ptr<Caller>> followers;
  ASSERT_NO_FATAL_FAILURE(StartCoalesced("unconfirmed", leader, followers, 2));
  leader.Release(Loaded{grpc::Status::OK, "someone else's view", false});
  ASSERT_TRUE(leader.WaitAnswered());
  for (auto& f : followers) {
    ASSERT_TRUE(f->WaitAnswered());
    EXPECT_EQ(f->body(), "own");
    EXPECT_EQ(f->loads(), 1);
  }
}

// A caller who has gone while it waited is not loaded for.
TEST_F(ResponseCacheTest, AFollowerWhoHasGoneIsNotLoadedFor) {
  auto gone = std::make_shared<gateway::CancelScope>();
  auto staying = std::make_shared<gateway::CancelScope>();
  Caller leader;
  std::vector<std::unique_ptr<Caller>> followers;
  ASSERT_NO_FATAL_FAILURE(StartCoalesced("gone", leader, followers, 2, {gone, staying}));
  gone->Cancel();
  leader.Release(Loaded{grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "the leader's own"), "", true});
  ASSERT_TRUE(leader.WaitAnswered());
  ASSERT_TRUE(followers[0]->WaitAnswered());
  EXPECT_EQ(followers[0]->code(), grpc::StatusCode::CANCELLED);
  EXPECT_EQ(followers[0]->loads(), 0);
  ASSERT_TRUE(followers[1]->WaitAnswered());
  EXPECT_EQ(followers[1]->code(), grpc::StatusCode::OK);
  EXPECT_EQ(followers[1]->loads(), 1);
}

}  // namespace
}  // namespace kp::testing
