// Reflection helpers over resource messages: field paths, the standard fields every resource
// carries (name, etag, times), dates and timestamps.
#pragma once

#include <cstdint>
#include <string>
#include "absl/strings/string_view.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>

#include "absl/time/time.h"

namespace kp::resource {

inline constexpr absl::string_view kTimestampType = "google.protobuf.Timestamp";

// The leaf field of a dotted path through singular message fields, or nullptr.
const google::protobuf::FieldDescriptor* FindPath(const google::protobuf::Descriptor* d,
                                                  absl::string_view path);
// The message holding the leaf of `path` (default instances for unset parents).
const google::protobuf::Message* WalkToParent(const google::protobuf::Message& m,
                                              absl::string_view path);

std::string GetString(const google::protobuf::Message& m, absl::string_view field);
void SetString(google::protobuf::Message& m, absl::string_view field, const std::string& value);
// Times as microseconds since the epoch; 0 when unset.
int64_t GetTime(const google::protobuf::Message& m, absl::string_view field);
void SetTime(google::protobuf::Message& m, absl::string_view field, int64_t micros);
void ClearField(google::protobuf::Message& m, absl::string_view field);
bool HasTime(const google::protobuf::Message& m, absl::string_view field);

int64_t TimestampMicros(const google::protobuf::Message& timestamp);
// "YYYY-MM-DD" for a khartoum.type.v1.Date, "" when it is all zero.
std::string DateString(const google::protobuf::Message& date);
// Whether y-m-d is a real calendar date (year 1..9999).
bool IsValidDate(int year, int month, int day);
// Parses "YYYY-MM-DD" (a real date) into its canonical form.
bool ParseDateLiteral(absl::string_view s, std::string* canonical);
// Parses an RFC 3339 timestamp or a date (midnight UTC).
bool ParseTimeLiteral(absl::string_view s, int64_t* micros);

}  // namespace kp::resource
