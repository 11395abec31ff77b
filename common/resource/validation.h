// Field validators shared by every service. Each adds a violation to `v` naming the field
// path and what to change; none stops at the first problem.
#pragma once

#include <string>
#include "absl/strings/string_view.h"

#include <google/protobuf/message.h>

#include "common/status.h"

namespace kp::resource {

inline constexpr int kMaxRepeated = 100;

// ids match ^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$
bool IsValidId(absl::string_view id);
// "collection/{id}" -> id; false when the name is not of that form.
bool ParseName(absl::string_view collection, absl::string_view name, std::string* id);
// A fresh random id (lower-case, 16 characters).
std::string NewId();

void CheckRequired(FieldViolations& v, const std::string& field, absl::string_view value);
// Length in Unicode characters; also rejects invalid UTF-8.
void CheckLength(FieldViolations& v, const std::string& field, absl::string_view value, size_t max);
void CheckCountryCode(FieldViolations& v, const std::string& field, absl::string_view code);
bool IsCountryCode(absl::string_view code);
// A khartoum.type.v1.Date: real calendar date; `required` reports an unset date.
void CheckDate(FieldViolations& v, const std::string& field, const google::protobuf::Message& date,
               bool required);
void CheckSlug(FieldViolations& v, const std::string& field, absl::string_view slug);
void CheckEmail(FieldViolations& v, const std::string& field, absl::string_view email);
void CheckPhone(FieldViolations& v, const std::string& field, absl::string_view phone);
void CheckHttpUri(FieldViolations& v, const std::string& field, absl::string_view uri);
// A JSON array of validated resource names, for SQL `IN (SELECT value FROM json_each(?))`.
// Resource names hold only [a-z0-9/-], so nothing needs escaping.
template <typename Names>
std::string JsonNames(const Names& names) {
  std::string json = "[";
  bool first = true;
  for (const auto& n : names) {
    json.append(first ? "\"" : ",\"").append(n).append("\"");
    first = false;
  }
  return json + "]";
}

void CheckResourceName(FieldViolations& v, const std::string& field, absl::string_view collection,
                       absl::string_view name);
// An enum field must hold a declared value; `required` rejects the zero value.
void CheckEnum(FieldViolations& v, const std::string& field, const google::protobuf::Message& m,
               absl::string_view name, bool required);

}  // namespace kp::resource
