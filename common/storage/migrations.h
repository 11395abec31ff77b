// Versioned schema migrations, applied in order at start-up and recorded in schema_migrations.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/storage/database.h"

namespace kp::storage {

struct Migration {
  int version;
  std::string description;
  std::string sql;
  Dialect dialect = Dialect::kSqlite;  // a service keeps one list per dialect, same versions
};

// Applies every migration of the connection's dialect newer than the database's version, all
// in one transaction that holds a lock, so replicas starting together apply each once.
// Fails if the database is newer than this binary knows (a downgrade).
absl::Status ApplyMigrations(Connection& conn, const std::vector<Migration>& migrations);

}  // namespace kp::storage
