// SQLite wrappers: see sqlite.h.
#include "common/storage/sqlite.h"

#include <sqlite3.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/current_call.h"

namespace kp::storage {

absl::StatusCode SqliteCodeToStatus(int code) {
  switch (code & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED: return absl::StatusCode::kUnavailable;
    case SQLITE_CONSTRAINT: return absl::StatusCode::kAlreadyExists;
    case SQLITE_FULL:
    case SQLITE_NOMEM: return absl::StatusCode::kResourceExhausted;
    default: return absl::StatusCode::kInternal;
  }
}

namespace {

absl::Status LastError(sqlite3* db, absl::string_view context) {
  // Interrupted (progress handler) or given up waiting for the lock (busy handler) because the
  // call's caller has gone: say so, with the call's code.
  const int code = sqlite3_extended_errcode(db) & 0xff;
  if (code == SQLITE_INTERRUPT || code == SQLITE_BUSY) {
    if (absl::Status abandoned = CurrentCall::Check(); !abandoned.ok()) return abandoned;
  }
  return absl::Status(SqliteCodeToStatus(sqlite3_extended_errcode(db)),
                      absl::StrCat("database ", context, ": ", sqlite3_errmsg(db)));
}

// How many virtual machine instructions run between two looks at the current call: about a
// tenth of a millisecond of work, for a look that costs a clock read.
constexpr int kProgressInstructions = 4096;

// SQLite's progress handler: non-zero interrupts the running statement (SQLITE_INTERRUPT; a
// write's whole transaction is rolled back).
int StopAbandoned(void*) { return CurrentCall::Abandoned() ? 1 : 0; }

// SQLite's busy handler, in place of sqlite3_busy_timeout: waits for another connection's lock
// at most `timeout` in all, and not at all for a call whose caller has gone.
struct BusyWait {
  absl::Duration timeout;
  absl::Time since;  // this wait's start
};

int WaitWhileBusy(void* arg, int attempts) {
  auto* wait = static_cast<BusyWait*>(arg);
  const absl::Time now = absl::Now();
  if (attempts == 0) wait->since = now;
  if (CurrentCall::Abandoned()) return 0;
  const absl::Time end = std::min(wait->since + wait->timeout, CurrentCall::Deadline());
  if (now >= end) return 0;
  // 1, 2, 4 ... ms, then every 20 ms: a lock is usually held for a short write.
  const absl::Duration pause = std::min(absl::Milliseconds(1) * (1 << std::min(attempts, 5)), absl::Milliseconds(20));
  absl::SleepFor(std::min(pause, end - now));
  return 1;
}

class SqliteStatement final : public StatementImpl {
 public:
  SqliteStatement(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  ~SqliteStatement() override { sqlite3_finalize(stmt_); }

  void Bind(int index, const SqlValue& value) override {
    if (std::holds_alternative<std::monostate>(value)) {
      sqlite3_bind_null(stmt_, index);
    } else if (const auto* i = std::get_if<int64_t>(&value)) {
      sqlite3_bind_int64(stmt_, index, *i);
    } else if (const auto* d = std::get_if<double>(&value)) {
      sqlite3_bind_double(stmt_, index, *d);
    } else {
      const auto& s = std::get<std::string>(value);
      sqlite3_bind_text(stmt_, index, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
    }
  }
  absl::StatusOr<bool> Step() override {
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return LastError(db_, "step");
  }
  void Reset() override {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  bool IsNull(int col) const override { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }
  int64_t Int(int col) const override { return sqlite3_column_int64(stmt_, col); }
  double Double(int col) const override { return sqlite3_column_double(stmt_, col); }
  absl::string_view Bytes(int col) const override {
    const void* p = sqlite3_column_blob(stmt_, col);
    if (p == nullptr) return {};
    return absl::string_view(static_cast<const char*>(p), sqlite3_column_bytes(stmt_, col));
  }
  SqlValue Value(int col) const override {
    switch (sqlite3_column_type(stmt_, col)) {
      case SQLITE_INTEGER: return Int(col);
      case SQLITE_FLOAT: return Double(col);
      case SQLITE_NULL: return std::monostate{};
      default: return std::string(Bytes(col));
    }
  }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_;
};

class SqliteConnection final : public Connection {
 public:
  SqliteConnection(sqlite3* db, absl::Duration busy_timeout) : db_(db), busy_{busy_timeout, absl::Now()} {
    sqlite3_busy_handler(db_, WaitWhileBusy, &busy_);
    sqlite3_progress_handler(db_, kProgressInstructions, StopAbandoned, nullptr);
  }
  ~SqliteConnection() override {
    ClearStatements();
    sqlite3_close_v2(db_);
  }

  Dialect dialect() const override { return Dialect::kSqlite; }
  bool Healthy() const override { return true; }

  absl::Status Exec(absl::string_view sql) override {
    char* err = nullptr;
    const std::string s(sql);
    if (sqlite3_exec(db_, s.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
      absl::Status status(SqliteCodeToStatus(sqlite3_extended_errcode(db_)),
                          absl::StrCat("database exec: ", err ? err : "unknown error"));
      sqlite3_free(err);
      return status;
    }
    return absl::OkStatus();
  }

  absl::Status LockKey(absl::string_view) override { return absl::OkStatus(); }

  absl::Status Begin(TxMode mode) override { return Run(mode == TxMode::kWrite ? "BEGIN IMMEDIATE" : "BEGIN"); }
  absl::Status Commit() override { return Run("COMMIT"); }
  void Rollback() override { (void)Run("ROLLBACK"); }

 protected:
  absl::StatusOr<std::unique_ptr<StatementImpl>> PrepareUncached(absl::string_view sql) override {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT, &stmt,
                           nullptr) != SQLITE_OK) {
      return LastError(db_, absl::StrCat("prepare [", sql, "]"));
    }
    return std::make_unique<SqliteStatement>(db_, stmt);
  }

 private:
  absl::Status Run(absl::string_view sql) {
    auto stmt = Prepare(sql);
    if (!stmt.ok()) return stmt.status();
    return stmt->Run();
  }

  sqlite3* db_;
  BusyWait busy_;
};

// Replaces SQLite's automatic checkpoint (PASSIVE, every 1,000 pages). Under a steady stream
// of writers a PASSIVE checkpoint never catches up with the frames appended meanwhile, so the
// WAL never restarts and grows without bound (the benchmark's 1M-registration load grew it past
// 12 GB). Past kWalRestartPages, the committing connection waits for the other writers and
// readers (busy timeout) and restarts the WAL from its beginning.
constexpr int kWalCheckpointPages = 1000;
constexpr int kWalRestartPages = 16384;  // 64 MiB of 4 KiB pages

int WalHook(void*, sqlite3* db, const char* schema, int pages) {
  if (pages >= kWalRestartPages) {
    sqlite3_wal_checkpoint_v2(db, schema, SQLITE_CHECKPOINT_RESTART, nullptr, nullptr);
  } else if (pages >= kWalCheckpointPages) {
    sqlite3_wal_checkpoint_v2(db, schema, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
  }
  return SQLITE_OK;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Connection>> OpenSqlite(const std::string& path, const DatabaseOptions& options) {
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &db,
                                 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close(db);
    return absl::UnavailableError(absl::StrCat("cannot open database ", path, ": ", msg));
  }
  auto conn = std::make_unique<SqliteConnection>(db, options.statement_timeout);
  sqlite3_extended_result_codes(db, 1);
  // WAL: readers never block the writer. synchronous=NORMAL in WAL keeps every committed
  // transaction across a process crash (kill -9); only an OS crash can lose the last ones.
  // Memory stays bounded: 4 MiB of page cache per connection (the OS caches the file too),
  // and temporary b-trees (DISTINCT, GROUP BY over a million registrations) spill to files
  // past that instead of growing the heap (temp_store=MEMORY took the participants service
  // to 475 MiB during the statistics benchmark).
  auto status = conn->Exec(
      "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;"
      "PRAGMA temp_store=FILE; PRAGMA cache_size=-4000;");
  if (!status.ok()) return status;
  sqlite3_wal_hook(db, WalHook, nullptr);
  return std::unique_ptr<Connection>(std::move(conn));
}

}  // namespace kp::storage
