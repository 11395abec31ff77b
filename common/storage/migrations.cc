// The migration runner.
#include "common/storage/migrations.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "common/status.h"

namespace kp::storage {

absl::Status ApplyMigrations(Connection& conn, const std::vector<Migration>& unordered) {
  std::vector<Migration> migrations;
  for (const auto& m : unordered) {
    if (m.dialect == conn.dialect()) migrations.push_back(m);
  }
  std::sort(migrations.begin(), migrations.end(),
            [](const Migration& a, const Migration& b) { return a.version < b.version; });
  for (size_t i = 1; i < migrations.size(); ++i) {
    if (migrations[i].version == migrations[i - 1].version) {
      return absl::InternalError(absl::StrCat("two migrations have version ", migrations[i].version));
    }
  }
  ASSIGN_OR_RETURN(auto tx, Transaction::Begin(&conn, Transaction::Mode::kWrite));
  RETURN_IF_ERROR(conn.LockKey("schema_migrations"));
  RETURN_IF_ERROR(conn.Exec(
      "CREATE TABLE IF NOT EXISTS schema_migrations ("
      " version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at BIGINT NOT NULL)"));
  int current = 0;
  {
    ASSIGN_OR_RETURN(auto stmt, conn.Prepare("SELECT COALESCE(MAX(version), 0) FROM schema_migrations"));
    ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (row) current = static_cast<int>(stmt.Int(0));
  }
  int known = 0;
  for (const auto& m : migrations) known = std::max(known, m.version);
  if (current > known) {
    return absl::FailedPreconditionError(absl::StrCat(
        "database schema version ", current, " is newer than this binary's ", known));
  }
  for (const auto& m : migrations) {
    if (m.version <= current) continue;
    RETURN_IF_ERROR(conn.Exec(m.sql));
    ASSIGN_OR_RETURN(auto stmt, conn.Prepare(
        "INSERT INTO schema_migrations(version, description, applied_at) VALUES(?, ?, ?)"));
    stmt.Bind(1, static_cast<int64_t>(m.version)).Bind(2, m.description)
        .Bind(3, absl::ToUnixMicros(absl::Now()));
    RETURN_IF_ERROR(stmt.Run());
    log::Info("migration applied", {{"version", m.version}, {"description", m.description}});
  }
  return tx.Commit();
}

}  // namespace kp::storage
