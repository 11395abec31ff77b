// The PostgreSQL implementation of the storage interface (libpq): statements prepared once
// per connection with `?`/`?N` turned into `$N`, parameters sent as text (numbers) or binary
// (strings, so that bytea needs no escaping), results read in binary. Write transactions run
// at READ COMMITTED with row locks (Dialect ForUpdate) and transaction-scoped advisory locks
// (LockKey) for rules that span rows; read transactions are REPEATABLE READ snapshots.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/storage/database.h"

namespace kp::storage {

absl::StatusOr<std::unique_ptr<Connection>> ConnectPostgres(const std::string& url, const DatabaseOptions& options);

// `url` with any password replaced by "***".
std::string PostgresDisplayName(const std::string& url);

// `sql` with `?` and `?N` placeholders as `$N` (outside quoted strings and identifiers).
std::string ToDollarPlaceholders(absl::string_view sql);

// The canonical code for a SQLSTATE (https://www.postgresql.org/docs/15/errcodes-appendix.html).
absl::StatusCode SqlStateToStatus(absl::string_view sqlstate);

}  // namespace kp::storage
