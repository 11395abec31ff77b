// Shared field validators.
#include "absl/strings/string_view.h"
#include "common/resource/validation.h"

#include <regex>

#include "absl/random/random.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/resource/reflection.h"

namespace kp::resource {

bool IsValidId(absl::string_view id) {
  if (id.empty() || id.size() > 63) return false;
  auto ok = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!ok(id.front()) || !ok(id.back())) return false;
  for (char c : id) {
    if (!ok(c) && c != '-') return false;
  }
  return true;
}

bool ParseName(absl::string_view collection, absl::string_view name, std::string* id) {
  if (name.size() <= collection.size() + 1 || !absl::StartsWith(name, collection) ||
      name[collection.size()] != '/') {
    return false;
  }
  absl::string_view rest = name.substr(collection.size() + 1);
  if (!IsValidId(rest)) return false;
  if (id != nullptr) *id = std::string(rest);
  return true;
}

std::string NewId() {
  static constexpr char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  thread_local absl::BitGen gen;
  std::string id(16, 'a');
  for (auto& c : id) c = kAlphabet[absl::Uniform(gen, 0u, 36u)];
  return id;
}

void CheckRequired(FieldViolations& v, const std::string& field, absl::string_view value) {
  if (absl::StripAsciiWhitespace(value).empty()) v.Add(field, "is required");
}

namespace {
// Number of code points, or -1 for invalid UTF-8.
long Utf8Length(absl::string_view s) {
  long n = 0;
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
    if (len == 0 || i + len > s.size()) return -1;
    for (size_t k = 1; k < len; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) >> 6) != 0x2) return -1;
    }
    i += len;
    ++n;
  }
  return n;
}
}  // namespace

void CheckLength(FieldViolations& v, const std::string& field, absl::string_view value, size_t max) {
  const long n = Utf8Length(value);
  if (n < 0) v.Add(field, "is not valid UTF-8");
  else if (static_cast<size_t>(n) > max) {
    v.Add(field, absl::StrCat("must be at most ", max, " characters (got ", n, ")"));
  }
}

void CheckCountryCode(FieldViolations& v, const std::string& field, absl::string_view code) {
  if (!code.empty() && !IsCountryCode(code)) {
    v.Add(field, absl::StrCat("'", code, "' is not an ISO 3166-1 alpha-2 code (upper case, e.g. KE)"));
  }
}

void CheckDate(FieldViolations& v, const std::string& field, const google::protobuf::Message& date,
               bool required) {
  const auto* d = date.GetDescriptor();
  const auto* r = date.GetReflection();
  const int y = r->GetInt32(date, d->FindFieldByName("year"));
  const int m = r->GetInt32(date, d->FindFieldByName("month"));
  const int day = r->GetInt32(date, d->FindFieldByName("day"));
  if (y == 0 && m == 0 && day == 0) {
    if (required) v.Add(field, "is required");
    return;
  }
  if (!IsValidDate(y, m, day)) {
    v.Add(field, absl::StrCat("{year: ", y, ", month: ", m, ", day: ", day, "} is not a calendar date"));
  }
}

void CheckSlug(FieldViolations& v, const std::string& field, absl::string_view slug) {
  static const std::regex kSlug("^[a-z0-9]+(-[a-z0-9]+)*$");
  if (slug.size() > 64 || !std::regex_match(slug.begin(), slug.end(), kSlug)) {
    v.Add(field, absl::StrCat("'", slug, "' must be a lower-case slug such as 'trafficking-in-persons'"));
  }
}

void CheckEmail(FieldViolations& v, const std::string& field, absl::string_view email) {
  static const std::regex kEmail("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$");
  if (!email.empty() && (email.size() > 254 || !std::regex_match(email.begin(), email.end(), kEmail))) {
    v.Add(field, "must be an email address such as name@example.org");
  }
}

void CheckPhone(FieldViolations& v, const std::string& field, absl::string_view phone) {
  static const std::regex kPhone("^\\+?[0-9][0-9 ()-]{4,30}$");
  if (!phone.empty() && !std::regex_match(phone.begin(), phone.end(), kPhone)) {
    v.Add(field, "must be a phone number in international format, e.g. +254 20 123 4567");
  }
}

void CheckHttpUri(FieldViolations& v, const std::string& field, absl::string_view uri) {
  static const std::regex kUri("^https?://[A-Za-z0-9.-]+(:[0-9]+)?([/?#][^\\s]*)?$");
  if (!uri.empty() && (uri.size() > 2000 || !std::regex_match(uri.begin(), uri.end(), kUri))) {
    v.Add(field, "must be an absolute http or https URI");
  }
}

void CheckResourceName(FieldViolations& v, const std::string& field, absl::string_view collection,
                       absl::string_view name) {
  if (!ParseName(collection, name, nullptr)) {
    v.Add(field, absl::StrCat("'", name, "' is not a resource name of the form ", collection, "/{id}"));
  }
}

void CheckEnum(FieldViolations& v, const std::string& field, const google::protobuf::Message& m,
               absl::string_view name, bool required) {
  const auto* f = m.GetDescriptor()->FindFieldByName(std::string(name));
  const int value = m.GetReflection()->GetEnumValue(m, f);
  if (f->enum_type()->FindValueByNumber(value) == nullptr) {
    v.Add(field, absl::StrCat(value, " is not a value of ", f->enum_type()->name()));
  } else if (required && value == 0) {
    v.Add(field, absl::StrCat("is required (one of the ", f->enum_type()->name(), " values)"));
  }
}

}  // namespace kp::resource
