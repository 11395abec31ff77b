// SQLite wrappers: see sqlite.h.
#include "absl/strings/string_view.h"
#include "common/storage/sqlite.h"

#include "absl/strings/str_cat.h"
#include "common/metrics.h"

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

Statement::~Statement() {
  if (stmt_ != nullptr) {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
}

Statement& Statement::Bind(int index, const SqlValue& value) {
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
  return *this;
}

Statement& Statement::BindAll(const std::vector<SqlValue>& values, int first_index) {
  for (size_t i = 0; i < values.size(); ++i) Bind(first_index + static_cast<int>(i), values[i]);
  return *this;
}

absl::StatusOr<bool> Statement::Step() {
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return conn_->LastError("step");
}

absl::Status Statement::Run() {
  while (true) {
    auto row = Step();
    if (!row.ok()) return row.status();
    if (!*row) {
      sqlite3_reset(stmt_);  // ready to be bound and run again
      return absl::OkStatus();
    }
  }
}

std::string Statement::Text(int col) const {
  const auto* p = sqlite3_column_text(stmt_, col);
  if (p == nullptr) return "";
  return std::string(reinterpret_cast<const char*>(p), sqlite3_column_bytes(stmt_, col));
}

absl::string_view Statement::Blob(int col) const {
  const void* p = sqlite3_column_blob(stmt_, col);
  if (p == nullptr) return {};
  return absl::string_view(static_cast<const char*>(p), sqlite3_column_bytes(stmt_, col));
}

SqlValue Statement::Value(int col) const {
  switch (sqlite3_column_type(stmt_, col)) {
    case SQLITE_INTEGER: return Int(col);
    case SQLITE_FLOAT: return Double(col);
    case SQLITE_NULL: return std::monostate{};
    default: return Text(col);
  }
}

absl::StatusOr<std::unique_ptr<Connection>> Connection::Open(const std::string& path) {
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &db,
                                 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                                 nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close(db);
    return absl::UnavailableError(absl::StrCat("cannot open database ", path, ": ", msg));
  }
  std::unique_ptr<Connection> conn(new Connection(db));
  sqlite3_busy_timeout(db, 10000);
  sqlite3_extended_result_codes(db, 1);
  // WAL: readers never block the writer. synchronous=NORMAL in WAL keeps every committed
  // transaction across a process crash (kill -9); only an OS crash can lose the last ones.
  auto status = conn->Exec(
      "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;"
      "PRAGMA temp_store=MEMORY; PRAGMA cache_size=-16000;");
  if (!status.ok()) return status;
  return conn;
}

Connection::~Connection() {
  for (auto& [sql, stmt] : cache_) sqlite3_finalize(stmt);
  sqlite3_close_v2(db_);
}

absl::Status Connection::LastError(absl::string_view context) const {
  const int code = sqlite3_extended_errcode(db_);
  return absl::Status(SqliteCodeToStatus(code),
                      absl::StrCat("database ", context, ": ", sqlite3_errmsg(db_)));
}

absl::StatusOr<Statement> Connection::Prepare(absl::string_view sql) {
  auto it = cache_.find(sql);
  if (it != cache_.end()) return Statement(this, it->second);
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT,
                         &stmt, nullptr) != SQLITE_OK) {
    return LastError(absl::StrCat("prepare [", sql, "]"));
  }
  // Bounded: generated list queries vary with filters, so don't let the cache grow forever.
  if (cache_.size() > 512) {
    for (auto& [s, st] : cache_) sqlite3_finalize(st);
    cache_.clear();
  }
  cache_.emplace(std::string(sql), stmt);
  return Statement(this, stmt);
}

absl::Status Connection::Exec(absl::string_view sql) {
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

absl::StatusOr<Transaction> Transaction::Begin(Connection* conn, Mode mode) {
  auto stmt = conn->Prepare(mode == Mode::kImmediate ? "BEGIN IMMEDIATE" : "BEGIN");
  if (!stmt.ok()) return stmt.status();
  if (auto s = stmt->Run(); !s.ok()) return s;
  return Transaction(conn);
}

Transaction::~Transaction() {
  if (conn_ != nullptr) {
    auto stmt = conn_->Prepare("ROLLBACK");
    if (stmt.ok()) (void)stmt->Run();
  }
}

absl::Status Transaction::Commit() {
  auto stmt = conn_->Prepare("COMMIT");
  if (!stmt.ok()) return stmt.status();
  auto status = stmt->Run();
  if (status.ok()) conn_ = nullptr;
  return status;
}

PooledConnection::PooledConnection(Database* db, std::unique_ptr<Connection> conn)
    : db_(db), conn_(std::move(conn)), acquired_(absl::Now()) {
  metrics::DbAcquired();
}

PooledConnection::~PooledConnection() {
  if (conn_) {
    metrics::DbReleased(absl::ToDoubleSeconds(absl::Now() - acquired_));
    db_->Release(std::move(conn_));
  }
}

absl::StatusOr<std::unique_ptr<Database>> Database::Open(const std::string& path, int pool_size) {
  auto db = std::make_unique<Database>();
  absl::MutexLock lock(&db->mu_);
  for (int i = 0; i < pool_size; ++i) {
    auto conn = Connection::Open(path);
    if (!conn.ok()) return conn.status();
    db->idle_.push_back(std::move(*conn));
  }
  metrics::DbPoolSize(pool_size);
  return db;
}

PooledConnection Database::Acquire() {
  absl::MutexLock lock(&mu_);
  auto available = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !idle_.empty(); };
  mu_.Await(absl::Condition(&available));
  auto conn = std::move(idle_.back());
  idle_.pop_back();
  return PooledConnection(this, std::move(conn));
}

void Database::Release(std::unique_ptr<Connection> conn) {
  absl::MutexLock lock(&mu_);
  idle_.push_back(std::move(conn));
}

}  // namespace kp::storage
