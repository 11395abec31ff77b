// kp-backup: online, consistent backups of a service's SQLite database, and their restore.
//
//   kp-backup backup --database=var/db/events.db --to=backups/events-2026-11-30.db
//       while the service runs and writes: SQLite's backup API copies one consistent snapshot
//       (every transaction committed before it started, none after), checked with
//       PRAGMA integrity_check before it is renamed into place.
//   kp-backup restore --from=backups/events-2026-11-30.db --database=var/db/events.db
//       into a deployment whose service is stopped. Refuses a target that holds data or has a
//       write-ahead log (its service may be running) unless --force.
//
// PostgreSQL deployments use pg_dump and pg_restore (deploy/README.md, Backups).
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>

#include "absl/flags/flag.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/config.h"

ABSL_FLAG(std::string, database, "", "The service's SQLite database file.");
ABSL_FLAG(std::string, to, "", "backup: the file to write.");
ABSL_FLAG(std::string, from, "", "restore: the backup to restore.");
ABSL_FLAG(bool, force, false, "restore: overwrite a database that holds data.");

namespace {

bool Exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

// An open SQLite handle, closed on scope exit.
struct Db {
  sqlite3* db = nullptr;
  ~Db() { sqlite3_close_v2(db); }
};

bool Open(const std::string& path, int flags, Db& out) {
  if (sqlite3_open_v2(path.c_str(), &out.db, flags, nullptr) != SQLITE_OK) {
    std::cerr << "kp-backup: cannot open " << path << ": " << sqlite3_errmsg(out.db) << "\n";
    return false;
  }
  sqlite3_busy_timeout(out.db, 10000);
  return true;
}

// The first column of the first row of `sql`, as text ("" if none).
std::string Scalar(sqlite3* db, const char* sql) {
  sqlite3_stmt* stmt = nullptr;
  std::string out;
  if (sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr) == SQLITE_OK && sqlite3_step(stmt) == SQLITE_ROW) {
    if (const auto* text = sqlite3_column_text(stmt, 0)) out = reinterpret_cast<const char*>(text);
  }
  sqlite3_finalize(stmt);
  return out;
}

// Copies `from` (main) into `to` (main) in one step: one read transaction on the source, so the
// copy is one consistent snapshot however much the source's writers do meanwhile.
bool Copy(sqlite3* from, sqlite3* to) {
  sqlite3_backup* backup = sqlite3_backup_init(to, "main", from, "main");
  if (backup == nullptr) {
    std::cerr << "kp-backup: " << sqlite3_errmsg(to) << "\n";
    return false;
  }
  int rc;
  const absl::Time deadline = absl::Now() + absl::Minutes(5);
  while ((rc = sqlite3_backup_step(backup, -1)) == SQLITE_BUSY || rc == SQLITE_LOCKED) {
    if (absl::Now() > deadline) break;
    sqlite3_sleep(50);  // a writer holds the lock: try again shortly
  }
  sqlite3_backup_finish(backup);
  if (rc != SQLITE_DONE) {
    std::cerr << "kp-backup: copy failed: " << sqlite3_errstr(rc) << "\n";
    return false;
  }
  return true;
}

// Copies `from_path` to `to_path` through a temporary file, checked, then renamed into place.
bool CopyFile(const std::string& from_path, const std::string& to_path, int* version) {
  Db from;
  if (!Open(from_path, SQLITE_OPEN_READONLY, from)) return false;
  const std::string tmp = to_path + ".partial";
  std::remove(tmp.c_str());
  {
    Db to;
    if (!Open(tmp, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, to)) return false;
    if (!Copy(from.db, to.db)) return false;
    const std::string integrity = Scalar(to.db, "PRAGMA integrity_check");
    if (integrity != "ok") {
      std::cerr << "kp-backup: the copy fails its integrity check: " << integrity << "\n";
      return false;
    }
    // A standalone file: no write-ahead log to carry along.
    Scalar(to.db, "PRAGMA journal_mode = DELETE");
    *version = std::atoi(Scalar(to.db, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations").c_str());
  }
  if (std::rename(tmp.c_str(), to_path.c_str()) != 0) {
    std::perror("kp-backup: rename");
    return false;
  }
  return true;
}

int Backup() {
  const std::string database = absl::GetFlag(FLAGS_database), to = absl::GetFlag(FLAGS_to);
  if (database.empty() || to.empty()) {
    std::cerr << "usage: kp-backup backup --database=FILE --to=FILE\n";
    return 2;
  }
  if (absl::StrContains(database, "://") && !absl::StartsWith(database, "sqlite://")) {
    std::cerr << "kp-backup: " << database << " is not SQLite; back PostgreSQL up with pg_dump (deploy/README.md)\n";
    return 2;
  }
  if (!Exists(database)) {
    std::cerr << "kp-backup: no database at " << database << "\n";
    return 1;
  }
  // Never over a live database: the service's own file, or any file with a write-ahead log.
  char real_db[PATH_MAX], real_to[PATH_MAX];
  if ((realpath(to.c_str(), real_to) != nullptr && realpath(database.c_str(), real_db) != nullptr &&
       std::string(real_to) == real_db) ||
      Exists(to + "-wal")) {
    std::cerr << "kp-backup: " << to << " is a live database; write the backup elsewhere\n";
    return 1;
  }
  const absl::Time start = absl::Now();
  int version = 0;
  if (!CopyFile(database, to, &version)) return 1;
  std::cout << "backed up " << database << " to " << to << " (schema version " << version << ", "
            << absl::ToInt64Milliseconds(absl::Now() - start) << " ms); integrity ok\n";
  return 0;
}

int Restore() {
  const std::string database = absl::GetFlag(FLAGS_database), from = absl::GetFlag(FLAGS_from);
  if (database.empty() || from.empty()) {
    std::cerr << "usage: kp-backup restore --from=FILE --database=FILE [--force]\n";
    return 2;
  }
  if (!absl::GetFlag(FLAGS_force)) {
    if (Exists(database + "-wal")) {
      std::cerr << "kp-backup: " << database << " has a write-ahead log: is its service running? Stop it "
                << "(or pass --force)\n";
      return 1;
    }
    if (Exists(database)) {
      Db target;
      if (!Open(database, SQLITE_OPEN_READONLY, target)) return 1;
      if (Scalar(target.db, "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'") != "0") {
        std::cerr << "kp-backup: " << database << " already holds a database; restore into an empty "
                  << "deployment (or pass --force)\n";
        return 1;
      }
    }
  }
  int version = 0;
  if (!CopyFile(from, database, &version)) return 1;
  std::remove((database + "-wal").c_str());
  std::remove((database + "-shm").c_str());
  std::cout << "restored " << from << " into " << database << " (schema version " << version << ")\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<char*> args = kp::config::ParseFlags(
      argc, argv,
      "kp-backup: online backup of a service's SQLite database (kp-backup backup --database=F --to=F), "
      "and restore into a stopped deployment (kp-backup restore --from=F --database=F).");
  const std::string command = args.size() == 2 ? args[1] : "";
  if (command == "backup") return Backup();
  if (command == "restore") return Restore();
  std::cerr << "usage: kp-backup backup --database=FILE --to=FILE | kp-backup restore --from=FILE --database=FILE\n";
  return 2;
}
