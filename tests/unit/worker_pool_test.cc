// The worker pool's fairness: one key (principal) runs on at most its share of the threads and
// waits in a bounded queue of its own; keys take turns; the empty key (no authentication) may
// use every thread. Tasks block on notifications the test releases: nothing here sleeps.
#include "common/worker_pool.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

namespace kp {
namespace {

// Tasks that report when they start and finish only when released.
class Gate {
 public:
  std::function<void()> Task(std::string label) {
    return [this, label = std::move(label)] {
      {
        absl::MutexLock lock(&mu_);
        ++running_;
        peak_ = std::max(peak_, running_);
        started_.push_back(label);
      }
      release_.WaitForNotification();
      absl::MutexLock lock(&mu_);
      --running_;
      ++finished_;
    };
  }
  // Waits (with a deadline) until `n` tasks have started.
  bool AwaitStarted(size_t n) {
    absl::MutexLock lock(&mu_);
    auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return started_.size() >= n; };
    return mu_.AwaitWithTimeout(absl::Condition(&enough), absl::Seconds(10));
  }
  bool AwaitFinished(int n) {
    absl::MutexLock lock(&mu_);
    auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return finished_ >= n; };
    return mu_.AwaitWithTimeout(absl::Condition(&enough), absl::Seconds(10));
  }
  void Release() {
    if (!release_.HasBeenNotified()) release_.Notify();
  }
  int peak() {
    absl::MutexLock lock(&mu_);
    return peak_;
  }
  std::vector<std::string> started() {
    absl::MutexLock lock(&mu_);
    return started_;
  }

 private:
  absl::Notification release_;
  absl::Mutex mu_;
  int running_ ABSL_GUARDED_BY(mu_) = 0;
  int peak_ ABSL_GUARDED_BY(mu_) = 0;
  int finished_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::string> started_ ABSL_GUARDED_BY(mu_);
};

// Releases gates when a test ends early (a failed assertion) before its pool goes, whose
// destructor waits for their tasks.
class ReleaseAtExit {
 public:
  explicit ReleaseAtExit(std::vector<Gate*> gates) : gates_(std::move(gates)) {}
  ~ReleaseAtExit() {
    for (Gate* g : gates_) g->Release();
  }

 private:
  std::vector<Gate*> gates_;
};

TEST(WorkerPool, OnePrincipalRunsOnAtMostItsShareAndOthersGetTheRest) {
  Gate flood, other;
  auto pool = std::make_unique<WorkerPool>(
      4, WorkerPool::Limits{.running_per_key = 2, .queued_per_key = 100});
  ReleaseAtExit release({&flood, &other});
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(pool->Schedule("flooder", flood.Task("f")).ok());
  ASSERT_TRUE(flood.AwaitStarted(2));
  // The flooder's eight other tasks wait; another principal's tasks start at once, on the two
  // threads the flooder may not take.
  ASSERT_TRUE(pool->Schedule("victim", other.Task("v1")).ok());
  ASSERT_TRUE(pool->Schedule("victim", other.Task("v2")).ok());
  ASSERT_TRUE(other.AwaitStarted(2));
  EXPECT_EQ(flood.started().size(), 2u);
  other.Release();
  flood.Release();
  ASSERT_TRUE(flood.AwaitFinished(10));
  EXPECT_EQ(flood.peak(), 2);
}

TEST(WorkerPool, APrincipalOverItsQueueIsRefusedAndOthersAreNot) {
  Gate gate;
  WorkerPool pool(2, {.running_per_key = 1, .queued_per_key = 3});
  ReleaseAtExit release({&gate});
  ASSERT_TRUE(pool.Schedule("flooder", gate.Task("running")).ok());
  ASSERT_TRUE(gate.AwaitStarted(1));
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(pool.Schedule("flooder", gate.Task("queued")).ok());
  const absl::Status refused = pool.Schedule("flooder", gate.Task("refused"));
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(refused.message().find("--queue_per_principal"), std::string::npos)
      << refused.message();
  EXPECT_TRUE(pool.Schedule("someone-else", gate.Task("other")).ok());
  gate.Release();
  ASSERT_TRUE(gate.AwaitFinished(5));
  for (const auto& label : gate.started()) EXPECT_NE(label, "refused");
}

TEST(WorkerPool, PrincipalsTakeTurns) {
  Gate blocker;
  std::vector<std::string> order;
  absl::Mutex mu;
  auto record = [&](std::string label) {
    return [&, label] {
      absl::MutexLock lock(&mu);
      order.push_back(label);
    };
  };
  {
    WorkerPool pool(1, {.running_per_key = 1, .queued_per_key = 100});
    ReleaseAtExit release({&blocker});
    ASSERT_TRUE(pool.Schedule("c", blocker.Task("block")).ok());
    ASSERT_TRUE(blocker.AwaitStarted(1));
    for (const char* label : {"a1", "a2", "a3"})
      ASSERT_TRUE(pool.Schedule("a", record(label)).ok());
    for (const char* label : {"b1", "b2"}) ASSERT_TRUE(pool.Schedule("b", record(label)).ok());
    blocker.Release();
  }  // the destructor finishes the queued tasks
  EXPECT_EQ(order, (std::vector<std::string>{"a1", "b1", "a2", "b2", "a3"}));
}

TEST(WorkerPool, WorkOfNobodyInParticularUsesEveryThread) {
  Gate gate;
  WorkerPool pool(4, {.running_per_key = 1, .queued_per_key = 0});
  ReleaseAtExit release({&gate});
  for (int i = 0; i < 6; ++i) ASSERT_TRUE(pool.Schedule("", gate.Task("anonymous")).ok());
  ASSERT_TRUE(gate.AwaitStarted(4));
  gate.Release();
  ASSERT_TRUE(gate.AwaitFinished(6));
  EXPECT_EQ(gate.peak(), 4);
}

TEST(WorkerPool, DestructionFinishesQueuedWorkOfEveryPrincipal) {
  Gate gate;
  auto pool = std::make_unique<WorkerPool>(
      2, WorkerPool::Limits{.running_per_key = 1, .queued_per_key = 100});
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(pool->Schedule("a", gate.Task("a")).ok());
    ASSERT_TRUE(pool->Schedule("b", gate.Task("b")).ok());
  }
  gate.Release();
  pool.reset();
  EXPECT_EQ(gate.started().size(), 10u);
}

TEST(WorkerPool, TheShareDefaultsToHalfTheThreads) {
  EXPECT_EQ(WorkerPool::LimitsFromFlags(8).running_per_key, 4);
  EXPECT_EQ(WorkerPool::LimitsFromFlags(1).running_per_key, 1);
  EXPECT_EQ(WorkerPool::LimitsFromFlags(3).running_per_key, 1);
}

}  // namespace
}  // namespace kp
