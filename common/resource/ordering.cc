// order_by parsing.
#include "absl/strings/string_view.h"
#include "common/resource/ordering.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/status.h"

namespace kp::resource {

absl::StatusOr<std::vector<OrderKey>> ParseOrderBy(absl::string_view order_by, const Catalog& catalog) {
  std::vector<OrderKey> keys;
  if (absl::StripAsciiWhitespace(order_by).empty()) return keys;
  if (order_by.size() > 512) return InvalidField("order_by", "is longer than 512 characters");
  for (absl::string_view item : absl::StrSplit(order_by, ',')) {
    std::vector<absl::string_view> words = absl::StrSplit(item, ' ', absl::SkipWhitespace());
    if (words.empty() || words.size() > 2) {
      return InvalidField("order_by", absl::StrCat("'", absl::StripAsciiWhitespace(item),
                                                   "' is not 'field' or 'field desc'"));
    }
    const Column* column = catalog.Find(words[0]);
    if (column == nullptr || column->type == ColumnType::kRepeatedString) {
      return InvalidField("order_by", absl::StrCat("cannot order by '", words[0], "'"));
    }
    bool desc = false;
    if (words.size() == 2) {
      if (words[1] == "desc") desc = true;
      else if (words[1] != "asc") {
        return InvalidField("order_by", absl::StrCat("'", words[1], "' must be 'asc' or 'desc'"));
      }
    }
    for (const auto& k : keys) {
      if (k.column == column) return InvalidField("order_by", absl::StrCat("'", words[0], "' appears twice"));
    }
    keys.push_back({column, desc});
  }
  return keys;
}

}  // namespace kp::resource
