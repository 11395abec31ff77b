// The SQLite implementation of the storage interface: WAL connections with cached prepared
// statements; write transactions are BEGIN IMMEDIATE, so writers are serial and LockKey is free.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/storage/database.h"

namespace kp::storage {

// Opens (creating if missing) the SQLite file at `path`.
absl::StatusOr<std::unique_ptr<Connection>> OpenSqlite(const std::string& path, const DatabaseOptions& options);

// Maps an SQLite result code to a canonical status code.
absl::StatusCode SqliteCodeToStatus(int code);

}  // namespace kp::storage
