// Reflection helpers: see reflection.h.
#include "absl/strings/string_view.h"
#include "common/resource/reflection.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"

namespace kp::resource {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;

const FieldDescriptor* FindPath(const Descriptor* d, absl::string_view path) {
  const FieldDescriptor* field = nullptr;
  for (absl::string_view part : absl::StrSplit(path, '.')) {
    if (d == nullptr) return nullptr;
    field = d->FindFieldByName(std::string(part));
    if (field == nullptr) return nullptr;
    d = (field->message_type() != nullptr && !field->is_repeated()) ? field->message_type() : nullptr;
  }
  return field;
}

const Message* WalkToParent(const Message& m, absl::string_view path) {
  const Message* current = &m;
  std::vector<absl::string_view> parts = absl::StrSplit(path, '.');
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    const auto* f = current->GetDescriptor()->FindFieldByName(std::string(parts[i]));
    current = &current->GetReflection()->GetMessage(*current, f);
  }
  return current;
}

namespace {
const FieldDescriptor* Field(const Message& m, absl::string_view name) {
  return m.GetDescriptor()->FindFieldByName(std::string(name));
}
}  // namespace

std::string GetString(const Message& m, absl::string_view field) {
  const auto* f = Field(m, field);
  return f ? m.GetReflection()->GetString(m, f) : std::string();
}

void SetString(Message& m, absl::string_view field, const std::string& value) {
  if (const auto* f = Field(m, field)) m.GetReflection()->SetString(&m, f, value);
}

int64_t TimestampMicros(const Message& ts) {
  const auto* d = ts.GetDescriptor();
  const auto* r = ts.GetReflection();
  const int64_t seconds = r->GetInt64(ts, d->FindFieldByName("seconds"));
  const int32_t nanos = r->GetInt32(ts, d->FindFieldByName("nanos"));
  return seconds * 1000000 + nanos / 1000;
}

int64_t GetTime(const Message& m, absl::string_view field) {
  const auto* f = Field(m, field);
  if (f == nullptr || !m.GetReflection()->HasField(m, f)) return 0;
  return TimestampMicros(m.GetReflection()->GetMessage(m, f));
}

bool HasTime(const Message& m, absl::string_view field) {
  const auto* f = Field(m, field);
  return f != nullptr && m.GetReflection()->HasField(m, f);
}

void SetTime(Message& m, absl::string_view field, int64_t micros) {
  const auto* f = Field(m, field);
  if (f == nullptr) return;
  Message* ts = m.GetReflection()->MutableMessage(&m, f);
  const auto* d = ts->GetDescriptor();
  int64_t seconds = micros / 1000000;
  int64_t rem = micros % 1000000;
  if (rem < 0) { rem += 1000000; --seconds; }
  ts->GetReflection()->SetInt64(ts, d->FindFieldByName("seconds"), seconds);
  ts->GetReflection()->SetInt32(ts, d->FindFieldByName("nanos"), static_cast<int32_t>(rem * 1000));
}

void ClearField(Message& m, absl::string_view field) {
  if (const auto* f = Field(m, field)) m.GetReflection()->ClearField(&m, f);
}

std::string DateString(const Message& date) {
  const auto* d = date.GetDescriptor();
  const auto* r = date.GetReflection();
  const int y = r->GetInt32(date, d->FindFieldByName("year"));
  const int mo = r->GetInt32(date, d->FindFieldByName("month"));
  const int da = r->GetInt32(date, d->FindFieldByName("day"));
  if (y == 0 && mo == 0 && da == 0) return "";
  return absl::StrFormat("%04d-%02d-%02d", y, mo, da);
}

bool IsValidDate(int year, int month, int day) {
  if (year < 1 || year > 9999 || month < 1 || month > 12 || day < 1) return false;
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  const int max_day = (month == 2 && leap) ? 29 : kDays[month - 1];
  return day <= max_day;
}

bool ParseDateLiteral(absl::string_view s, std::string* canonical) {
  if (s.size() != 10 || s[4] != '-' || s[7] != '-') return false;
  int y, m, d;
  if (!absl::SimpleAtoi(s.substr(0, 4), &y) || !absl::SimpleAtoi(s.substr(5, 2), &m) ||
      !absl::SimpleAtoi(s.substr(8, 2), &d)) {
    return false;
  }
  for (size_t i : {0, 1, 2, 3, 5, 6, 8, 9}) {
    if (s[i] < '0' || s[i] > '9') return false;
  }
  if (!IsValidDate(y, m, d)) return false;
  *canonical = absl::StrFormat("%04d-%02d-%02d", y, m, d);
  return true;
}

bool ParseTimeLiteral(absl::string_view s, int64_t* micros) {
  std::string date;
  if (ParseDateLiteral(s, &date)) {
    absl::Time t;
    std::string err;
    if (!absl::ParseTime("%Y-%m-%d", date, absl::UTCTimeZone(), &t, &err)) return false;
    *micros = absl::ToUnixMicros(t);
    return true;
  }
  absl::Time t;
  std::string err;
  if (!absl::ParseTime(absl::RFC3339_full, std::string(s), &t, &err)) return false;
  *micros = absl::ToUnixMicros(t);
  return true;
}

}  // namespace kp::resource
