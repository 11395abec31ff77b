// Versioned schema migrations, applied in order at start-up and recorded in schema_migrations.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/storage/sqlite.h"

namespace kp::storage {

struct Migration {
  int version;
  std::string description;
  std::string sql;
};

// Applies every migration newer than the database's version, each in its own transaction.
// Fails if the database is newer than this binary knows (a downgrade).
absl::Status ApplyMigrations(Connection& conn, const std::vector<Migration>& migrations);

}  // namespace kp::storage
