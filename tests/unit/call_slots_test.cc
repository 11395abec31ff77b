// The gateway's bounds on calls in progress: in all, per principal and per connection, exact
// under concurrency, each refusal with its code and nothing taken.
#include "common/call_slots.h"

#include <atomic>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace kp {
namespace {

TEST(CallSlots, EachBoundRefusesWithItsCodeAndTakesNothing) {
  CallSlots slots({.total = 5, .per_principal = 3, .per_connection = 2});
  ASSERT_TRUE(slots.Acquire("a", "c1").ok());
  ASSERT_TRUE(slots.Acquire("a", "c1").ok());
  // The connection is full: another connection of the same principal still gets one.
  const absl::Status connection = slots.Acquire("a", "c1");
  EXPECT_EQ(connection.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(connection.message().find("connection"), absl::string_view::npos) << connection;
  ASSERT_TRUE(slots.Acquire("a", "c2").ok());
  // The principal has its share: refused on any connection, other principals are not.
  const absl::Status principal = slots.Acquire("a", "c3");
  EXPECT_EQ(principal.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(principal.message().find("principal"), absl::string_view::npos) << principal;
  ASSERT_TRUE(slots.Acquire("b", "c3").ok());
  ASSERT_TRUE(slots.Acquire("b", "c4").ok());
  // The gateway is full: UNAVAILABLE (retry), for everyone.
  const absl::Status total = slots.Acquire("c", "c5");
  EXPECT_EQ(total.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(slots.in_progress(), 5);
  // Refusals took nothing: releasing what was taken frees everything.
  slots.Release("a", "c1");
  EXPECT_TRUE(slots.Acquire("c", "c5").ok());
  for (const auto& [p, c] : std::vector<std::pair<const char*, const char*>>{
           {"a", "c1"}, {"a", "c2"}, {"b", "c3"}, {"b", "c4"}, {"c", "c5"}}) {
    slots.Release(p, c);
  }
  EXPECT_EQ(slots.in_progress(), 0);
  for (int i = 0; i < 2; ++i) EXPECT_TRUE(slots.Acquire("a", "c1").ok());
}

TEST(CallSlots, ExactUnderConcurrency) {
  // Eight threads, one principal each on its own connections, racing for a gateway of 100 with
  // shares of 30: every principal gets exactly its share or what is left, never more in all.
  CallSlots slots({.total = 100, .per_principal = 30, .per_connection = 10});
  std::atomic<int> granted{0};
  std::vector<int> mine(8, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        if (slots.Acquire("p" + std::to_string(t), "conn" + std::to_string(t) + "-" + std::to_string(i % 5)).ok()) {
          ++mine[t];
          granted.fetch_add(1);
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(granted.load(), 100);
  EXPECT_EQ(slots.in_progress(), 100);
  for (int t = 0; t < 8; ++t) EXPECT_LE(mine[t], 30) << "principal " << t;
  // Released concurrently, every count returns to zero.
  threads.clear();
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      // (The connections a thread's grants used, in the order it was granted them.)
      for (int i = 0, left = mine[t]; left > 0; ++i, --left) {
        slots.Release("p" + std::to_string(t), "conn" + std::to_string(t) + "-" + std::to_string(i % 5));
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(slots.in_progress(), 0);
  EXPECT_TRUE(slots.Acquire("p0", "conn0-0").ok());
}

}  // namespace
}  // namespace kp
