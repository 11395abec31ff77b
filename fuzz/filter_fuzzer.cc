// libFuzzer target: the AIP-160 filter compiler and the order_by parser on arbitrary input.
// Input: "<filter>\n<order_by>". Properties: never crashes; every '?' in the SQL has a
// parameter; errors are INVALID_ARGUMENT.
#include <cstdlib>

#include "common/resource/filter.h"
#include "common/resource/ordering.h"
#include "khartoum/events/v1/events.pb.h"

namespace {
const kp::resource::Catalog& Events() {
  static const auto* catalog = new kp::resource::Catalog(kp::resource::ResourceSpec{
      .collection = "events",
      .singular = "event",
      .descriptor = khartoum::events::v1::Event::descriptor(),
      .fields = {"kind", "level", "status", "start_date", "end_date", "location.country_code", "location.city",
                 "hosts", "co_hosts", "partners", "topics", "title", "capacity"},
  });
  return *catalog;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  const auto newline = input.find('\n');
  const std::string filter = input.substr(0, newline);
  const std::string order_by = newline == std::string::npos ? "" : input.substr(newline + 1);
  auto compiled = kp::resource::CompileFilter(filter, Events());
  if (compiled.ok()) {
    size_t marks = 0;
    for (char c : compiled->sql) marks += c == '?';
    if (marks != compiled->params.size()) std::abort();
    // No literal text of the filter reaches the SQL: it only holds column names and operators.
    if (compiled->sql.find('"') != std::string::npos || compiled->sql.find('\'') != std::string::npos) std::abort();
  } else if (compiled.status().code() != absl::StatusCode::kInvalidArgument) {
    std::abort();
  }
  auto order = kp::resource::ParseOrderBy(order_by, Events());
  if (!order.ok() && order.status().code() != absl::StatusCode::kInvalidArgument) std::abort();
  return 0;
}
