// Trace context: see trace.h.
#include "common/trace.h"

#include "absl/random/random.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace kp::trace {
namespace {

bool IsLowerHex(absl::string_view s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

bool AllZero(absl::string_view s) { return s.find_first_not_of('0') == absl::string_view::npos; }

std::string RandomHex(int bytes) {
  thread_local absl::BitGen gen;
  std::string out;
  for (int i = 0; i < bytes; i += 8) absl::StrAppendFormat(&out, "%016x", absl::Uniform<uint64_t>(gen));
  return out.substr(0, bytes * 2);
}

}  // namespace

bool IsValid(absl::string_view t) {
  // version(2) - trace id(32) - parent id(16) - flags(2)
  if (t.size() < 55 || t[2] != '-' || t[35] != '-' || t[52] != '-') return false;
  const absl::string_view version = t.substr(0, 2), trace_id = t.substr(3, 32), parent = t.substr(36, 16),
                          flags = t.substr(53, 2);
  if (!IsLowerHex(version) || version == "ff" || !IsLowerHex(trace_id) || !IsLowerHex(parent) || !IsLowerHex(flags)) {
    return false;
  }
  if (version == "00" && t.size() != 55) return false;
  return !AllZero(trace_id) && !AllZero(parent);
}

std::string NewTraceparent() { return absl::StrCat("00-", RandomHex(16), "-", RandomHex(8), "-01"); }

std::string Child(absl::string_view parent) {
  if (!IsValid(parent)) return NewTraceparent();
  return absl::StrCat("00-", parent.substr(3, 32), "-", RandomHex(8), "-", parent.substr(53, 2));
}

std::string TraceId(absl::string_view t) { return IsValid(t) ? std::string(t.substr(3, 32)) : ""; }

}  // namespace kp::trace
