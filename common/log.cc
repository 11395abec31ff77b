// JSON-lines logger: one write(2) per line so lines from concurrent threads never interleave.
#include "absl/strings/string_view.h"
#include "common/log.h"

#include <unistd.h>

#include <atomic>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace kp::log {
namespace {
std::atomic<int> g_min_level{static_cast<int>(Level::kInfo)};

const char* LevelName(Level l) {
  switch (l) {
    case Level::kDebug: return "debug";
    case Level::kInfo: return "info";
    case Level::kWarning: return "warning";
    case Level::kError: return "error";
  }
  return "info";
}
}  // namespace

Field::Field(absl::string_view k, double v)
    : key(k), value(absl::StrFormat("%.3f", v)), quoted(false) {}

void SetMinLevel(Level level) { g_min_level = static_cast<int>(level); }

bool ParseLevel(absl::string_view name, Level* level) {
  if (name == "debug") *level = Level::kDebug;
  else if (name == "info") *level = Level::kInfo;
  else if (name == "warning") *level = Level::kWarning;
  else if (name == "error") *level = Level::kError;
  else return false;
  return true;
}

std::string JsonEscape(absl::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) absl::StrAppendFormat(&out, "\\u%04x", c);
        else out.push_back(static_cast<char>(c));
    }
  }
  return out;
}

// Now as 2026-11-29T08:15:02.123456Z; the part up to the second is formatted once a second per
// thread (a line is written for every call).
static std::string Timestamp() {
  thread_local int64_t second = -1;
  thread_local std::string prefix;
  const absl::Time now = absl::Now();
  const int64_t micros = absl::ToUnixMicros(now);
  const int64_t s = absl::ToUnixSeconds(now);  // rounds down
  if (s != second) {
    second = s;
    prefix = absl::FormatTime("%Y-%m-%dT%H:%M:%S", absl::FromUnixSeconds(s), absl::UTCTimeZone());
  }
  return absl::StrFormat("%s.%06dZ", prefix, micros - s * 1000000);
}

void Write(Level level, absl::string_view message, std::initializer_list<Field> fields) {
  if (static_cast<int>(level) < g_min_level.load(std::memory_order_relaxed)) return;
  std::string line = absl::StrCat(
      "{\"ts\":\"", Timestamp(),
      "\",\"level\":\"", LevelName(level), "\",\"msg\":\"", JsonEscape(message), "\"");
  for (const auto& f : fields) {
    absl::StrAppend(&line, ",\"", JsonEscape(f.key), "\":");
    if (f.quoted) absl::StrAppend(&line, "\"", JsonEscape(f.value), "\"");
    else absl::StrAppend(&line, f.value);
  }
  line += "}\n";
  ssize_t unused = ::write(STDERR_FILENO, line.data(), line.size());
  (void)unused;
}

}  // namespace kp::log
