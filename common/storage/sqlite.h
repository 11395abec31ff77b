// RAII wrappers over SQLite: a pool of WAL connections with cached prepared statements,
// statements, and transactions (BEGIN IMMEDIATE for writes).
#pragma once

#include <sqlite3.h>

#include <memory>
#include <string>
#include "absl/strings/string_view.h"
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/storage/sql_value.h"

namespace kp::storage {

class Connection;

// A prepared statement borrowed from a connection's cache; reset when it goes out of scope.
class Statement {
 public:
  Statement(Connection* conn, sqlite3_stmt* stmt) : conn_(conn), stmt_(stmt) {}
  Statement(Statement&& o) noexcept : conn_(o.conn_), stmt_(o.stmt_) { o.stmt_ = nullptr; }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement();

  // Binds parameters 1..n in order.
  Statement& Bind(int index, const SqlValue& value);
  Statement& BindAll(const std::vector<SqlValue>& values, int first_index = 1);
  // true: a row is available; false: done.
  absl::StatusOr<bool> Step();
  // Runs to completion (for statements without rows).
  absl::Status Run();

  bool IsNull(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }
  int64_t Int(int col) const { return sqlite3_column_int64(stmt_, col); }
  double Double(int col) const { return sqlite3_column_double(stmt_, col); }
  std::string Text(int col) const;
  absl::string_view Blob(int col) const;
  SqlValue Value(int col) const;

 private:
  Connection* conn_;
  sqlite3_stmt* stmt_;
};

class Connection {
 public:
  static absl::StatusOr<std::unique_ptr<Connection>> Open(const std::string& path);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  absl::StatusOr<Statement> Prepare(absl::string_view sql);
  absl::Status Exec(absl::string_view sql);  // no parameters, may hold several statements
  sqlite3* handle() { return db_; }
  // The status for the connection's last error, with `context` in the message.
  absl::Status LastError(absl::string_view context) const;

 private:
  explicit Connection(sqlite3* db) : db_(db) {}
  sqlite3* db_;
  absl::flat_hash_map<std::string, sqlite3_stmt*> cache_;
};

// A transaction on one connection; rolled back unless committed.
class Transaction {
 public:
  enum class Mode { kDeferred, kImmediate };
  static absl::StatusOr<Transaction> Begin(Connection* conn, Mode mode);
  Transaction(Transaction&& o) noexcept : conn_(o.conn_) { o.conn_ = nullptr; }
  Transaction(const Transaction&) = delete;
  ~Transaction();
  absl::Status Commit();
  Connection& conn() { return *conn_; }

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

class Database {
 public:
  // Opens `path` (created if missing) with `pool_size` connections.
  static absl::StatusOr<std::unique_ptr<Database>> Open(const std::string& path, int pool_size);
  PooledConnection Acquire();

 private:
  friend class PooledConnection;
  void Release(std::unique_ptr<Connection> conn);
  absl::Mutex mu_;
  std::vector<std::unique_ptr<Connection>> idle_ ABSL_GUARDED_BY(mu_);
};

// Maps an SQLite result code to a canonical status code.
absl::StatusCode SqliteCodeToStatus(int code);

}  // namespace kp::storage
