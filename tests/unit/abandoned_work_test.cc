// Database work for a call whose caller has gone stops (SQLite): a running statement is
// interrupted at the deadline or on cancellation, a writer stops waiting for the lock, no
// statement or commit starts, and an interrupted write leaves nothing behind.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "common/current_call.h"
#include "common/storage/database.h"

namespace kp::storage {
namespace {

// Counting to a hundred million: seconds of work if nothing stops it.
constexpr char kEndless[] =
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000000) SELECT "
    "COUNT(*) FROM n";

class AbandonedWork : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = absl::StrCat(::testing::TempDir(), "/abandoned-", getpid(), "-", counter_++, ".db");
    auto db = Database::Open(path_, {.pool_size = 2, .statement_timeout = absl::Seconds(30)});
    ASSERT_TRUE(db.ok()) << db.status();
    db_ = std::move(*db);
    auto conn = db_->Acquire();
    ASSERT_TRUE(conn.ok());
    ASSERT_TRUE((*conn)->Exec("CREATE TABLE t (x INTEGER)").ok());
  }
  void TearDown() override {
    db_.reset();
    for (const char* suffix : {"", "-wal", "-shm"}) std::remove((path_ + suffix).c_str());
  }
  int64_t Rows() {
    auto conn = db_->Acquire();
    auto stmt = (*conn)->Prepare("SELECT COUNT(*) FROM t");
    EXPECT_TRUE(stmt.ok() && *stmt->Step());
    return stmt->Int(0);
  }

  static inline int counter_ = 0;
  std::string path_;
  std::unique_ptr<Database> db_;
};

TEST_F(AbandonedWork, AStatementStopsAtItsCallsDeadline) {
  auto conn = db_->Acquire();
  ASSERT_TRUE(conn.ok());
  const absl::Time start = absl::Now();
  CurrentCall call(start + absl::Milliseconds(100), nullptr);
  auto stmt = (*conn)->Prepare(kEndless);
  ASSERT_TRUE(stmt.ok());
  const auto row = stmt->Step();
  EXPECT_EQ(row.status().code(), absl::StatusCode::kDeadlineExceeded) << row.status();
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(600));
}

TEST_F(AbandonedWork, AStatementStopsWhenItsCallerCancels) {
  auto conn = db_->Acquire();
  ASSERT_TRUE(conn.ok());
  // The caller cancels while the statement runs: after SQLite has asked a hundred times.
  int asked = 0;
  absl::Time cancelled_at = absl::InfiniteFuture();
  CurrentCall call(absl::InfiniteFuture(), [&] {
    if (++asked == 100) cancelled_at = absl::Now();
    return asked >= 100;
  });
  auto stmt = (*conn)->Prepare(kEndless);
  ASSERT_TRUE(stmt.ok());
  const auto row = stmt->Step();
  EXPECT_EQ(row.status().code(), absl::StatusCode::kCancelled) << row.status();
  EXPECT_LT(absl::Now() - cancelled_at, absl::Milliseconds(100));
}

TEST_F(AbandonedWork, AnInterruptedWriteLeavesNothingBehind) {
  {
    auto conn = db_->Acquire();
    ASSERT_TRUE(conn.ok());
    CurrentCall call(absl::Now() + absl::Milliseconds(200), nullptr);
    auto tx = Transaction::Begin(conn->get(), Transaction::Mode::kWrite);
    ASSERT_TRUE(tx.ok());
    ASSERT_TRUE((*conn)->Prepare("INSERT INTO t (x) VALUES (1)")->Run().ok());
    // A write that takes seconds (a row every millionth number), cut off at the deadline,
    // inside the same transaction.
    auto bulk = (*conn)->Prepare(
        "INSERT INTO t (x) WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
        "WHERE i < 100000000) SELECT i FROM n WHERE i % 1000000 = 0");
    ASSERT_TRUE(bulk.ok());
    EXPECT_EQ(bulk->Run().code(), absl::StatusCode::kDeadlineExceeded);
    EXPECT_EQ(tx->Commit().code(), absl::StatusCode::kDeadlineExceeded);
  }
  EXPECT_EQ(Rows(), 0);
}

TEST_F(AbandonedWork, NothingStartsOrCommitsForACallerThatHasGone) {
  auto conn = db_->Acquire();
  ASSERT_TRUE(conn.ok());
  {
    std::atomic<bool> cancelled{false};
    CurrentCall call(absl::InfiniteFuture(), [&] { return cancelled.load(); });
    auto tx = Transaction::Begin(conn->get(), Transaction::Mode::kWrite);
    ASSERT_TRUE(tx.ok());
    ASSERT_TRUE((*conn)->Prepare("INSERT INTO t (x) VALUES (1)")->Run().ok());
    cancelled = true;
    EXPECT_EQ((*conn)->Prepare("INSERT INTO t (x) VALUES (2)")->Run().code(),
              absl::StatusCode::kCancelled);
    EXPECT_EQ(tx->Commit().code(), absl::StatusCode::kCancelled);
    EXPECT_EQ(Transaction::Begin(conn->get(), Transaction::Mode::kRead).status().code(),
              absl::StatusCode::kCancelled);
  }  // the transaction rolls back although its call is still gone
  EXPECT_EQ(Rows(), 0);
  // Outside any call, the same connection works as before.
  ASSERT_TRUE((*conn)->Prepare("INSERT INTO t (x) VALUES (3)")->Run().ok());
  EXPECT_EQ(Rows(), 1);
}

TEST_F(AbandonedWork, AWriterStopsWaitingForTheLockAtItsCallsDeadline) {
  auto holder = db_->Acquire();
  ASSERT_TRUE(holder.ok());
  auto held = Transaction::Begin(holder->get(), Transaction::Mode::kWrite);  // holds the write lock
  ASSERT_TRUE(held.ok());
  absl::Status waited;
  absl::Duration took;
  std::thread writer([&] {
    auto conn = db_->Acquire();
    ASSERT_TRUE(conn.ok());
    const absl::Time start = absl::Now();
    CurrentCall call(start + absl::Milliseconds(200), nullptr);  // the busy timeout is 30 s
    waited = Transaction::Begin(conn->get(), Transaction::Mode::kWrite).status();
    took = absl::Now() - start;
  });
  writer.join();
  EXPECT_EQ(waited.code(), absl::StatusCode::kDeadlineExceeded) << waited;
  EXPECT_LT(took, absl::Milliseconds(700));
}

TEST_F(AbandonedWork, NobodyWaitsForAConnectionPastTheirDeadline) {
  auto first = db_->Acquire();
  auto second = db_->Acquire();  // the pool (2) is empty now; its acquire timeout is 5 s
  ASSERT_TRUE(first.ok() && second.ok());
  const absl::Time start = absl::Now();
  CurrentCall call(start + absl::Milliseconds(100), nullptr);
  EXPECT_EQ(db_->Acquire().status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(600));
}

}  // namespace
}  // namespace kp::storage
