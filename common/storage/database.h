// The storage interface the services use, with two implementations: SQLite (embedded, the
// default) and PostgreSQL (shared by replicas). A Database is a pool of connections; a
// Connection prepares statements (cached per connection, `?` or `?N` placeholders in both
// dialects) and runs transactions. What differs between the dialects' SQL is asked of Dialect
// helpers here, so services and the resource layer hold one copy of their queries.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/storage/sql_value.h"

namespace kp::storage {

enum class Dialect { kSqlite, kPostgres };

// One prepared statement of a connection, reused across calls; Reset after each use.
class StatementImpl {
 public:
  virtual ~StatementImpl() = default;
  virtual void Bind(int index, const SqlValue& value) = 0;  // 1-based
  virtual absl::StatusOr<bool> Step() = 0;                 // true: a row is available
  virtual void Reset() = 0;                                // results and bindings dropped
  virtual bool IsNull(int col) const = 0;
  virtual int64_t Int(int col) const = 0;  // integers and booleans
  virtual double Double(int col) const = 0;
  virtual absl::string_view Bytes(int col) const = 0;  // text or blob, valid until the next Step
  virtual SqlValue Value(int col) const = 0;
};

// A prepared statement borrowed from a connection's cache; reset when it goes out of scope.
class Statement {
 public:
  explicit Statement(StatementImpl* impl) : impl_(impl) {}
  Statement(Statement&& o) noexcept : impl_(o.impl_), executed_(o.executed_) { o.impl_ = nullptr; }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement() {
    if (impl_ != nullptr) impl_->Reset();
  }

  Statement& Bind(int index, const SqlValue& value) {
    impl_->Bind(index, value);
    return *this;
  }
  Statement& BindAll(const std::vector<SqlValue>& values, int first_index = 1);
  // The first step executes the statement (timed: kp_db_query_seconds).
  absl::StatusOr<bool> Step();
  // Runs to completion (for statements without rows); the statement can then be bound and
  // run again.
  absl::Status Run();

  bool IsNull(int col) const { return impl_->IsNull(col); }
  int64_t Int(int col) const { return impl_->Int(col); }
  double Double(int col) const { return impl_->Double(col); }
  std::string Text(int col) const { return std::string(impl_->Bytes(col)); }
  absl::string_view Blob(int col) const { return impl_->Bytes(col); }
  SqlValue Value(int col) const { return impl_->Value(col); }

 private:
  StatementImpl* impl_;
  bool executed_ = false;
};

class Connection {
 public:
  virtual ~Connection() = default;
  virtual Dialect dialect() const = 0;
  // `sql` with `?` (numbered in order) or `?N` placeholders; prepared once per connection and
  // cached (bounded: generated list queries vary with their filters).
  absl::StatusOr<Statement> Prepare(absl::string_view sql);
  // Runs `sql` without parameters; it may hold several statements (migrations).
  virtual absl::Status Exec(absl::string_view sql) = 0;
  // Within a write transaction: waits until no other transaction, in any process, holds
  // `key`, and holds it until this one ends. SQLite's write transactions are already serial,
  // so there it is free.
  virtual absl::Status LockKey(absl::string_view key) = 0;
  // false once the connection broke (the pool then opens a new one).
  virtual bool Healthy() const = 0;

  enum class TxMode {
    kRead,   // one consistent snapshot for several queries
    kWrite,  // a read-modify-write: see LockKey and Dialect helpers for row locks
  };
  virtual absl::Status Begin(TxMode mode) = 0;
  virtual absl::Status Commit() = 0;
  virtual void Rollback() = 0;
 protected:
  // Prepares `sql` on the database (Prepare caches the result).
  virtual absl::StatusOr<std::unique_ptr<StatementImpl>> PrepareUncached(absl::string_view sql) = 0;
  // The cache is about to be emptied: release what the database holds for it.
  virtual absl::Status ForgetPrepared() { return absl::OkStatus(); }
  // Subclasses call this first in their destructor, before closing their handle.
  void ClearStatements() { statements_.clear(); }

 private:
  static constexpr size_t kMaxCachedStatements = 512;
  absl::flat_hash_map<std::string, std::unique_ptr<StatementImpl>> statements_;
};

// A transaction on one connection; rolled back unless committed. Statements of a call whose
// caller has gone (CurrentCall) fail DEADLINE_EXCEEDED or CANCELLED, the transaction with them:
// an interrupted write leaves nothing behind.
class Transaction {
 public:
  using Mode = Connection::TxMode;
  static absl::StatusOr<Transaction> Begin(Connection* conn, Mode mode);
  Transaction(Transaction&& o) noexcept : conn_(o.conn_) { o.conn_ = nullptr; }
  Transaction(const Transaction&) = delete;
  ~Transaction();  // rolls back unless committed
  absl::Status Commit();

 private:
  explicit Transaction(Connection* conn) : conn_(conn) {}
  Connection* conn_;
};

class Database;

// A connection checked out of the pool; returned on destruction.
class PooledConnection {
 public:
  PooledConnection(Database* db, std::unique_ptr<Connection> conn);
  PooledConnection(PooledConnection&&) = default;
  ~PooledConnection();
  Connection* operator->() { return conn_.get(); }
  Connection& operator*() { return *conn_; }
  Connection* get() { return conn_.get(); }

 private:
  Database* db_;
  std::unique_ptr<Connection> conn_;
  absl::Time acquired_;
};

struct DatabaseOptions {
  int pool_size = 4;
  absl::Duration acquire_timeout = absl::Seconds(5);     // waiting for a free connection
  absl::Duration connect_timeout = absl::Seconds(5);     // PostgreSQL
  absl::Duration statement_timeout = absl::Seconds(10);  // PostgreSQL; SQLite: busy timeout
  std::string application_name = "kp";
};

// A fixed-size pool. Connections that broke are replaced when next acquired.
class Database {
 public:
  // `url`: a SQLite file path (or sqlite:///path), or postgresql://… (libpq's URI).
  static absl::StatusOr<std::unique_ptr<Database>> Open(const std::string& url, const DatabaseOptions& options);
  ~Database();

  // UNAVAILABLE if no connection frees up within the acquire timeout, or none can be opened.
  absl::StatusOr<PooledConnection> Acquire();
  Dialect dialect() const { return dialect_; }
  // The URL without its password, for logs.
  const std::string& display_name() const { return display_name_; }

 private:
  using Connector = std::function<absl::StatusOr<std::unique_ptr<Connection>>()>;
  Database(Dialect dialect, Connector connect, DatabaseOptions options, std::string display_name);
  friend class PooledConnection;
  void Release(std::unique_ptr<Connection> conn);

  const Dialect dialect_;
  const Connector connect_;
  const DatabaseOptions options_;
  const std::string display_name_;
  absl::Mutex mu_;
  int available_ ABSL_GUARDED_BY(mu_) = 0;  // idle connections plus slots to open anew
  std::vector<std::unique_ptr<Connection>> idle_ ABSL_GUARDED_BY(mu_);
};

bool IsPostgresUrl(absl::string_view url);

// SQL that differs between the dialects.
// The elements of the JSON array of strings bound to `param` (e.g. "?2"), as a subquery body:
// `x IN (<JsonArrayValues>)`.
std::string JsonArrayValues(Dialect dialect, absl::string_view param);
// Appended to a SELECT of one row that the transaction will rewrite.
const char* ForUpdate(Dialect dialect);

}  // namespace kp::storage
