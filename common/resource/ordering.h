// AIP-132 order_by: "field [asc|desc], ..." over a resource's scalar fields.
#pragma once

#include "absl/strings/string_view.h"
#include <vector>

#include "absl/status/statusor.h"
#include "common/resource/catalog.h"

namespace kp::resource {

struct OrderKey {
  const Column* column;
  bool descending;
};

// Errors are INVALID_ARGUMENT with an `order_by` field violation.
absl::StatusOr<std::vector<OrderKey>> ParseOrderBy(absl::string_view order_by, const Catalog& catalog);

}  // namespace kp::resource
