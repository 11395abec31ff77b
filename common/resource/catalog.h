// What a resource exposes to queries: its filterable/orderable fields, the SQL column each is
// stored in, and how to read those values out of a message by reflection.
#pragma once

#include "absl/strings/string_view.h"
#include <memory>
#include <string>
#include <vector>

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>

#include "common/storage/sql_value.h"

namespace kp::resource {

enum class ColumnType { kString, kInt, kEnum, kDate, kTimestamp, kRepeatedString };

struct Column {
  std::string path;    // API path, e.g. "location.country_code"
  std::string column;  // SQL column, the path with '.' -> '_' (repeated: rows in <table>_values)
  ColumnType type;
  const google::protobuf::FieldDescriptor* leaf;
};

// Describes one resource type to the generic machinery. Storage follows a convention that the
// service's migrations create: table <collection> (seq, name, data, etag, create_time,
// update_time, delete_time, one column per scalar field), <collection>_values (seq, field,
// value) for repeated fields and, when search_paths is set, the FTS5 table <collection>_fts.
struct ResourceSpec {
  std::string collection;                      // "events": names are events/{id}
  std::string singular;                        // "event": request/response field name
  const google::protobuf::Descriptor* descriptor = nullptr;
  std::vector<std::string> fields = {};        // filterable/orderable paths (create_time implied)
  std::vector<std::string> search_paths = {};  // text fields indexed for `search`
  std::vector<std::string> output_only = {};   // besides name, times and etag
  std::vector<std::string> immutable = {};     // top-level fields fixed after create
};

class Catalog {
 public:
  // Aborts on a spec that names fields the message does not have (a programming error).
  explicit Catalog(const ResourceSpec& spec);
  const Column* Find(absl::string_view path) const;
  const std::vector<Column>& columns() const { return columns_; }
  const std::string& table() const { return table_; }
  std::string ValuesTable() const { return table_ + "_values"; }
  std::string FtsTable() const { return table_ + "_fts"; }

  // The SQL value a scalar column stores for `message`.
  storage::SqlValue Extract(const google::protobuf::Message& message, const Column& column) const;
  // The values a repeated column stores.
  std::vector<std::string> ExtractRepeated(const google::protobuf::Message& message,
                                           const Column& column) const;

 private:
  std::string table_;
  std::vector<Column> columns_;
};

// Resolves an enum literal by its full name (EVENT_KIND_TRAINING) or short name (TRAINING).
const google::protobuf::EnumValueDescriptor* FindEnumValue(const google::protobuf::EnumDescriptor* e,
                                                           absl::string_view literal);
// The enum's value prefix: EventKind -> "EVENT_KIND_".
std::string EnumPrefix(const google::protobuf::EnumDescriptor* e);

}  // namespace kp::resource
