// The storage interface and the connection pool: see database.h.
#include "common/storage/database.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/current_call.h"
#include "common/metrics.h"
#include "common/status.h"
#include "common/storage/postgres.h"
#include "common/storage/sqlite.h"

namespace kp::storage {

Statement& Statement::BindAll(const std::vector<SqlValue>& values, int first_index) {
  for (size_t i = 0; i < values.size(); ++i) impl_->Bind(first_index + static_cast<int>(i), values[i]);
  return *this;
}

absl::StatusOr<bool> Statement::Step() {
  if (executed_) return impl_->Step();
  // A statement does not start for a caller that has gone: many short statements (a batch's
  // inserts) would each finish before any interruption inside one of them.
  RETURN_IF_ERROR(CurrentCall::Check());
  executed_ = true;
  const absl::Time start = absl::Now();
  auto row = impl_->Step();
  metrics::DbQuery(absl::ToDoubleSeconds(absl::Now() - start));
  return row;
}

absl::Status Statement::Run() {
  while (true) {
    auto row = Step();
    if (!row.ok()) {
      impl_->Reset();
      executed_ = false;
      return row.status();
    }
    if (!*row) {
      impl_->Reset();
      executed_ = false;  // bound and run again
      return absl::OkStatus();
    }
  }
}

absl::StatusOr<Statement> Connection::Prepare(absl::string_view sql) {
  if (auto it = statements_.find(sql); it != statements_.end()) return Statement(it->second.get());
  if (statements_.size() >= kMaxCachedStatements) {
    statements_.clear();
    if (auto s = ForgetPrepared(); !s.ok()) return s;
  }
  auto prepared = PrepareUncached(sql);
  if (!prepared.ok()) return prepared.status();
  auto& slot = statements_[std::string(sql)];
  slot = std::move(*prepared);
  return Statement(slot.get());
}

absl::StatusOr<Transaction> Transaction::Begin(Connection* conn, Mode mode) {
  RETURN_IF_ERROR(CurrentCall::Check());
  if (auto s = conn->Begin(mode); !s.ok()) return s;
  return Transaction(conn);
}

absl::Status Transaction::Commit() {
  // A caller that has gone gets nothing written (the destructor rolls back); once started, the
  // commit runs to its end.
  RETURN_IF_ERROR(CurrentCall::Check());
  CurrentCall::Shield shield;
  auto status = conn_->Commit();
  if (status.ok()) conn_ = nullptr;
  return status;
}

Transaction::~Transaction() {
  if (conn_ == nullptr) return;
  CurrentCall::Shield shield;  // the rollback is what undoes an interrupted write
  conn_->Rollback();
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

bool IsPostgresUrl(absl::string_view url) {
  return absl::StartsWith(url, "postgresql://") || absl::StartsWith(url, "postgres://");
}

Database::Database(Dialect dialect, Connector connect, DatabaseOptions options, std::string display_name)
    : dialect_(dialect), connect_(std::move(connect)), options_(std::move(options)),
      display_name_(std::move(display_name)) {}

Database::~Database() = default;

absl::StatusOr<std::unique_ptr<Database>> Database::Open(const std::string& url, const DatabaseOptions& options) {
  std::unique_ptr<Database> db;
  if (IsPostgresUrl(url)) {
    db.reset(new Database(Dialect::kPostgres, [url, options] { return ConnectPostgres(url, options); }, options,
                          PostgresDisplayName(url)));
  } else {
    std::string path = absl::StartsWith(url, "sqlite://") ? url.substr(9) : url;
    if (absl::StrContains(path, "://")) {
      return absl::InvalidArgumentError(absl::StrCat(
          "unsupported database URL '", url, "': use a SQLite file path or postgresql://…"));
    }
    db.reset(new Database(Dialect::kSqlite, [path, options] { return OpenSqlite(path, options); }, options, path));
  }
  absl::MutexLock lock(&db->mu_);
  // Every connection opened now: a database that cannot be reached fails the start.
  for (int i = 0; i < options.pool_size; ++i) {
    auto conn = db->connect_();
    if (!conn.ok()) return conn.status();
    db->idle_.push_back(std::move(*conn));
  }
  db->available_ = options.pool_size;
  metrics::DbPoolSize(options.pool_size);
  return db;
}

absl::StatusOr<PooledConnection> Database::Acquire() {
  std::unique_ptr<Connection> conn;
  {
    absl::MutexLock lock(&mu_);
    auto available = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return available_ > 0; };
    // Nobody waits for a connection past the deadline of the call it is for.
    const absl::Time deadline = std::min(absl::Now() + options_.acquire_timeout, CurrentCall::Deadline());
    if (!mu_.AwaitWithDeadline(absl::Condition(&available), deadline)) {
      RETURN_IF_ERROR(CurrentCall::Check());
      return absl::UnavailableError(absl::StrCat("no database connection free within ",
                                                 absl::FormatDuration(options_.acquire_timeout)));
    }
    --available_;
    if (!idle_.empty()) {
      conn = std::move(idle_.back());
      idle_.pop_back();
    }
  }
  if (conn == nullptr || !conn->Healthy()) {
    auto fresh = connect_();
    if (!fresh.ok()) {
      absl::MutexLock lock(&mu_);
      ++available_;  // the slot stays, to be opened by a later call
      return absl::UnavailableError(fresh.status().message());
    }
    conn = std::move(*fresh);
  }
  return PooledConnection(this, std::move(conn));
}

void Database::Release(std::unique_ptr<Connection> conn) {
  absl::MutexLock lock(&mu_);
  if (conn->Healthy()) idle_.push_back(std::move(conn));
  ++available_;
}

std::string JsonArrayValues(Dialect dialect, absl::string_view param) {
  if (dialect == Dialect::kPostgres) return absl::StrCat("SELECT json_array_elements_text(CAST(", param, " AS json))");
  return absl::StrCat("SELECT value FROM json_each(", param, ")");
}

const char* ForUpdate(Dialect dialect) { return dialect == Dialect::kPostgres ? " FOR UPDATE" : ""; }

}  // namespace kp::storage
