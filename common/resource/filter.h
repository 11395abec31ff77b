// AIP-160 filter subset compiled to parameterised SQL: comparisons (= != < <= > >=) on scalar
// fields, `:` (has) on repeated fields, AND / OR / NOT and parentheses. No text from the
// filter is ever placed in the SQL; literals become bound parameters.
#pragma once

#include <string>
#include "absl/strings/string_view.h"
#include <vector>

#include "absl/status/statusor.h"
#include "common/resource/catalog.h"
#include "common/storage/sql_value.h"

namespace kp::resource {

struct SqlFragment {
  std::string sql;                        // empty when the filter is empty
  std::vector<storage::SqlValue> params;  // bound in order of the ? in sql
};

inline constexpr size_t kMaxFilterLength = 4096;
inline constexpr int kMaxFilterTerms = 64;
inline constexpr int kMaxFilterDepth = 16;

// Compiles `filter` over `catalog`'s columns; the table is aliased `t`.
// Errors are INVALID_ARGUMENT with a `filter` field violation naming the position.
absl::StatusOr<SqlFragment> CompileFilter(absl::string_view filter, const Catalog& catalog);

}  // namespace kp::resource
