// The generic repository on a real SQLite file: etags change on every write, stale etags are
// refused, soft delete hides rows, keyset pages cover every row once.
#include "common/resource/repository.h"

#include <unistd.h>

#include <filesystem>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "common/storage/migrations.h"
#include "khartoum/organisations/v1/organisations.pb.h"

namespace kp::resource {
namespace {

using khartoum::organisations::v1::Organisation;

const Actor kActor{"tester", "admin", "Test", ""};

constexpr char kSchema[] = R"(
CREATE TABLE organisations (seq INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, data BLOB NOT NULL,
  etag TEXT NOT NULL, create_time INTEGER NOT NULL, update_time INTEGER NOT NULL, delete_time INTEGER,
  kind INTEGER NOT NULL DEFAULT 0, display_name TEXT NOT NULL DEFAULT '');
CREATE VIRTUAL TABLE organisations_fts USING fts5(body);
CREATE TABLE idempotency_keys (collection TEXT NOT NULL, principal TEXT NOT NULL, request_id TEXT NOT NULL,
  request_hash TEXT NOT NULL, response BLOB NOT NULL, create_time INTEGER NOT NULL,
  PRIMARY KEY (collection, principal, request_id));
CREATE TABLE audit_log (seq INTEGER PRIMARY KEY, time INTEGER NOT NULL, principal TEXT NOT NULL,
  role TEXT NOT NULL, method TEXT NOT NULL, resource TEXT NOT NULL, old_etag TEXT NOT NULL,
  new_etag TEXT NOT NULL, request_id TEXT NOT NULL);
)";

class RepositoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = absl::StrCat(::testing::TempDir(), "/repo-", getpid(), "-", counter_++, ".db");
    auto db = storage::Database::Open(path_, {.pool_size = 2});
    ASSERT_TRUE(db.ok()) << db.status();
    db_ = std::move(*db);
    auto conn = db_->Acquire();
    ASSERT_TRUE(conn.ok()) << conn.status();
    ASSERT_TRUE(storage::ApplyMigrations(**conn, {{1, "test", kSchema}}).ok());
    repo_ = std::make_unique<Repository>(db_.get(), ResourceSpec{
        .collection = "organisations",
        .singular = "organisation",
        .descriptor = Organisation::descriptor(),
        .fields = {"kind", "display_name"},
        .search_paths = {"display_name"},
    });
  }
  void TearDown() override {
    repo_.reset();
    db_.reset();
    std::filesystem::remove(path_);
  }

  Organisation Insert(const std::string& id, const std::string& display_name) {
    Organisation o;
    o.set_name("organisations/" + id);
    o.set_display_name(display_name);
    EXPECT_TRUE(repo_->Insert(o, {}, {}, kActor).ok());
    return o;
  }

  static inline int counter_ = 0;
  std::string path_;
  std::unique_ptr<storage::Database> db_;
  std::unique_ptr<Repository> repo_;
};

TEST_F(RepositoryTest, EtagChangesOnEveryWriteAndStaleEtagIsAborted) {
  Organisation o = Insert("a", "A");
  const std::string first = o.etag();
  ASSERT_FALSE(first.empty());
  o.set_display_name("B");
  ASSERT_TRUE(repo_->Replace(o, first, {}, kActor).ok());
  const std::string second = o.etag();
  EXPECT_NE(second, first);
  o.set_display_name("C");
  EXPECT_EQ(repo_->Replace(o, first, {}, kActor).code(), absl::StatusCode::kAborted);
  auto stored = repo_->Get("organisations/a", false);
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(static_cast<Organisation&>(**stored).display_name(), "B");
  EXPECT_EQ(static_cast<Organisation&>(**stored).etag(), second);
}

TEST_F(RepositoryTest, FailedTransactionCheckWritesNothing) {
  Organisation o;
  o.set_name("organisations/x");
  auto status = repo_->Insert(o, {"req-1", "hash-1"}, [](storage::Connection&) {
    return absl::ResourceExhaustedError("full");
  }, kActor);
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(repo_->Get("organisations/x", true).status().code(), absl::StatusCode::kNotFound);
  auto earlier = repo_->FindByRequestId(kActor.principal, {"req-1", "hash-1"});
  ASSERT_TRUE(earlier.ok());
  EXPECT_EQ(*earlier, nullptr);
}

TEST_F(RepositoryTest, SameRequestIdReturnsTheFirstResult) {
  Organisation a;
  a.set_name("organisations/first");
  ASSERT_TRUE(repo_->Insert(a, {"req", "h"}, {}, kActor).ok());
  Organisation b;
  b.set_name("organisations/second");
  ASSERT_TRUE(repo_->Insert(b, {"req", "h"}, {}, kActor).ok());
  EXPECT_EQ(b.name(), "organisations/first");
  EXPECT_EQ(repo_->Get("organisations/second", true).status().code(), absl::StatusCode::kNotFound);
}

// AIP-155: the id belongs to its principal and its request.
TEST_F(RepositoryTest, RequestIdIsScopedToThePrincipalAndBoundToTheRequest) {
  Organisation a;
  a.set_name("organisations/mine");
  ASSERT_TRUE(repo_->Insert(a, {"req", "h1"}, {}, kActor).ok());
  // The same id with another request: refused, nothing written, nobody's resource returned.
  Organisation b;
  b.set_name("organisations/other-request");
  const absl::Status reused = repo_->Insert(b, {"req", "h2"}, {}, kActor);
  EXPECT_EQ(reused.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(GetFieldViolations(reused)[0].field, "request_id");
  EXPECT_EQ(repo_->Get("organisations/other-request", true).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(repo_->FindByRequestId(kActor.principal, {"req", "h2"}).status().code(),
            absl::StatusCode::kInvalidArgument);
  // Another principal's id is another request.
  Actor other = kActor;
  other.principal = "someone-else";
  Organisation c;
  c.set_name("organisations/theirs");
  ASSERT_TRUE(repo_->Insert(c, {"req", "h1"}, {}, other).ok());
  EXPECT_EQ(c.name(), "organisations/theirs");
  EXPECT_TRUE(repo_->Get("organisations/theirs", false).ok());
}

TEST_F(RepositoryTest, KeysetPagesCoverEveryRowOnceUnderInsertsBetweenPages) {
  for (int i = 0; i < 25; ++i) Insert(absl::StrCat("o", i), absl::StrCat("name ", i % 5));
  std::vector<std::string> seen;
  ListParams params;
  params.page_size = 4;
  params.order_by = "display_name desc";
  int inserted = 0;
  do {
    auto page = repo_->List(params);
    ASSERT_TRUE(page.ok()) << page.status();
    for (auto& m : page->items) seen.push_back(static_cast<Organisation&>(*m).name());
    params.page_token = page->next_page_token;
    // A row sorting before the cursor appears on no later page; rows already listed stay unique.
    Insert(absl::StrCat("late", inserted++), "aaa");
  } while (!params.page_token.empty());
  std::set<std::string> unique(seen.begin(), seen.end());
  EXPECT_EQ(unique.size(), seen.size());
  for (int i = 0; i < 25; ++i) EXPECT_TRUE(unique.count(absl::StrCat("organisations/o", i))) << i;
}

TEST_F(RepositoryTest, SoftDeletedRowsAreHiddenUnlessAsked) {
  Organisation o = Insert("gone", "Gone");
  o.mutable_delete_time()->set_seconds(1);
  ASSERT_TRUE(repo_->Replace(o, o.etag(), {}, kActor).ok());
  EXPECT_EQ(repo_->Get("organisations/gone", false).status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(repo_->Get("organisations/gone", true).ok());
  ListParams params;
  EXPECT_EQ(repo_->List(params)->total_size, 0);
  params.show_deleted = true;
  EXPECT_EQ(repo_->List(params)->total_size, 1);
}

TEST(FtsQuery, QuotesEveryTermAndDropsSyntax) {
  constexpr auto kSqlite = storage::Dialect::kSqlite;
  EXPECT_EQ(FtsQuery(kSqlite, "climate data"), "\"climate\"* \"data\"*");
  EXPECT_EQ(FtsQuery(kSqlite, "\"a\" OR (b* NEAR c)"), "\"a\"* \"OR\"* \"b\"* \"NEAR\"* \"c\"*");
  EXPECT_EQ(FtsQuery(kSqlite, "  ---  "), "");
  EXPECT_EQ(FtsQuery(kSqlite, "Université"), "\"Université\"*");
  constexpr auto kPostgres = storage::Dialect::kPostgres;
  EXPECT_EQ(FtsQuery(kPostgres, "climate data"), "'climate':* & 'data':*");
  EXPECT_EQ(FtsQuery(kPostgres, "a' | !b & (c:*)"), "'a':* & 'b':* & 'c':*");
  EXPECT_EQ(FtsQuery(kPostgres, "  ---  "), "");
}

}  // namespace
}  // namespace kp::resource
