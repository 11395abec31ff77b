// Field catalog and reflection-based column extraction.
#include "absl/strings/string_view.h"
#include "common/resource/catalog.h"

#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "common/log.h"
#include "common/resource/reflection.h"

namespace kp::resource {

using google::protobuf::FieldDescriptor;

std::string EnumPrefix(const google::protobuf::EnumDescriptor* e) {
  std::string out;
  for (char c : e->name()) {
    if (absl::ascii_isupper(c) && !out.empty()) out.push_back('_');
    out.push_back(absl::ascii_toupper(c));
  }
  return out + "_";
}

const google::protobuf::EnumValueDescriptor* FindEnumValue(const google::protobuf::EnumDescriptor* e,
                                                           absl::string_view literal) {
  if (const auto* v = e->FindValueByName(std::string(literal))) return v;
  return e->FindValueByName(EnumPrefix(e) + std::string(literal));
}

Catalog::Catalog(const ResourceSpec& spec) : table_(spec.collection) {
  std::vector<std::string> paths = spec.fields;
  paths.push_back("create_time");
  for (const auto& path : paths) {
    const FieldDescriptor* leaf = FindPath(spec.descriptor, path);
    if (leaf == nullptr) {
      log::Error("resource spec names an unknown field", {{"resource", spec.collection}, {"path", path}});
      std::abort();
    }
    ColumnType type;
    if (leaf->is_repeated()) {
      type = ColumnType::kRepeatedString;
    } else if (leaf->enum_type() != nullptr) {
      type = ColumnType::kEnum;
    } else if (leaf->message_type() != nullptr) {
      type = leaf->message_type()->full_name() == kTimestampType ? ColumnType::kTimestamp
                                                                 : ColumnType::kDate;
    } else if (leaf->cpp_type() == FieldDescriptor::CPPTYPE_STRING) {
      type = ColumnType::kString;
    } else {
      type = ColumnType::kInt;
    }
    columns_.push_back({path, absl::StrReplaceAll(path, {{".", "_"}}), type, leaf});
  }
}

const Column* Catalog::Find(absl::string_view path) const {
  for (const auto& c : columns_) {
    if (c.path == path) return &c;
  }
  return nullptr;
}

storage::SqlValue Catalog::Extract(const google::protobuf::Message& message,
                                   const Column& column) const {
  const google::protobuf::Message* parent = WalkToParent(message, column.path);
  const auto* refl = parent->GetReflection();
  switch (column.type) {
    case ColumnType::kString: return refl->GetString(*parent, column.leaf);
    case ColumnType::kEnum: return static_cast<int64_t>(refl->GetEnumValue(*parent, column.leaf));
    case ColumnType::kInt:
      return column.leaf->cpp_type() == FieldDescriptor::CPPTYPE_INT64
                 ? refl->GetInt64(*parent, column.leaf)
                 : static_cast<int64_t>(refl->GetInt32(*parent, column.leaf));
    case ColumnType::kTimestamp:
      return TimestampMicros(refl->GetMessage(*parent, column.leaf));
    case ColumnType::kDate: return DateString(refl->GetMessage(*parent, column.leaf));
    case ColumnType::kRepeatedString: break;
  }
  return std::monostate{};
}

std::vector<std::string> Catalog::ExtractRepeated(const google::protobuf::Message& message,
                                                  const Column& column) const {
  const google::protobuf::Message* parent = WalkToParent(message, column.path);
  const auto* refl = parent->GetReflection();
  std::vector<std::string> out;
  const int n = refl->FieldSize(*parent, column.leaf);
  for (int i = 0; i < n; ++i) out.push_back(refl->GetRepeatedString(*parent, column.leaf, i));
  return out;
}

}  // namespace kp::resource
