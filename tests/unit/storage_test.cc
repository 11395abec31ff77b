// The dialect-independent parts of the PostgreSQL storage: placeholders, error codes, and
// passwords kept out of logs. (The PostgreSQL storage itself runs in the integration suite.)
#include <gtest/gtest.h>

#include "common/storage/database.h"
#include "common/storage/postgres.h"

namespace kp::storage {
namespace {

TEST(Postgres, PlaceholdersBecomeNumberedOutsideQuotes) {
  EXPECT_EQ(ToDollarPlaceholders("SELECT a FROM t WHERE b = ? AND c > ? LIMIT ?"),
            "SELECT a FROM t WHERE b = $1 AND c > $2 LIMIT $3");
  EXPECT_EQ(ToDollarPlaceholders("WHERE x IN (?1) AND y <> ?2 AND z = ?1"), "WHERE x IN ($1) AND y <> $2 AND z = $1");
  EXPECT_EQ(ToDollarPlaceholders("SELECT '?', \"a?b\", 'it''s ?' WHERE v = ?"),
            "SELECT '?', \"a?b\", 'it''s ?' WHERE v = $1");
}

TEST(Postgres, SqlStatesMapToCanonicalCodes) {
  EXPECT_EQ(SqlStateToStatus("23505"), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(SqlStateToStatus("23503"), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(SqlStateToStatus("40001"), absl::StatusCode::kAborted);
  EXPECT_EQ(SqlStateToStatus("40P01"), absl::StatusCode::kAborted);
  EXPECT_EQ(SqlStateToStatus("57014"), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(SqlStateToStatus("55P03"), absl::StatusCode::kUnavailable);
  EXPECT_EQ(SqlStateToStatus("08006"), absl::StatusCode::kUnavailable);
  EXPECT_EQ(SqlStateToStatus("57P01"), absl::StatusCode::kUnavailable);
  EXPECT_EQ(SqlStateToStatus("53300"), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(SqlStateToStatus("42P01"), absl::StatusCode::kInternal);
}

TEST(Postgres, PasswordsAreHiddenInDisplayNames) {
  EXPECT_EQ(PostgresDisplayName("postgresql://kp:s3cret@db:5432/kp_events?sslmode=require"),
            "postgresql://kp:***@db:5432/kp_events?sslmode=require");
  EXPECT_EQ(PostgresDisplayName("postgresql://kp@db/kp_events"), "postgresql://kp@db/kp_events");
}

TEST(Database, UnreachableOrUnknownDatabasesFailToOpen) {
  EXPECT_EQ(Database::Open("mysql://x/y", {}).status().code(), absl::StatusCode::kInvalidArgument);
  auto pg = Database::Open("postgresql://kp@127.0.0.1:1/none", {.connect_timeout = absl::Seconds(1)});
  EXPECT_EQ(pg.status().code(), absl::StatusCode::kUnavailable);
}

TEST(Dialect, JsonArraysAndRowLocks) {
  EXPECT_EQ(JsonArrayValues(Dialect::kSqlite, "?1"), "SELECT value FROM json_each(?1)");
  EXPECT_EQ(JsonArrayValues(Dialect::kPostgres, "?"), "SELECT json_array_elements_text(CAST(? AS json))");
  EXPECT_STREQ(ForUpdate(Dialect::kSqlite), "");
  EXPECT_STREQ(ForUpdate(Dialect::kPostgres), " FOR UPDATE");
}

}  // namespace
}  // namespace kp::storage
