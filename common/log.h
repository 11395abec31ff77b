// One small logging facade: each line is a JSON object on stderr.
#pragma once

#include <initializer_list>
#include <string>
#include "absl/strings/string_view.h"
#include <utility>

namespace kp::log {

enum class Level { kDebug, kInfo, kWarning, kError };

// A field of a log line; numbers are written unquoted.
struct Field {
  Field(absl::string_view k, absl::string_view v) : key(k), value(v), quoted(true) {}
  Field(absl::string_view k, const char* v) : key(k), value(v), quoted(true) {}
  Field(absl::string_view k, const std::string& v) : key(k), value(v), quoted(true) {}
  Field(absl::string_view k, long long v) : key(k), value(std::to_string(v)), quoted(false) {}
  Field(absl::string_view k, int v) : key(k), value(std::to_string(v)), quoted(false) {}
  Field(absl::string_view k, double v);
  std::string key;
  std::string value;
  bool quoted;
};

void SetMinLevel(Level level);
bool ParseLevel(absl::string_view name, Level* level);
void Write(Level level, absl::string_view message, std::initializer_list<Field> fields = {});

inline void Info(absl::string_view m, std::initializer_list<Field> f = {}) { Write(Level::kInfo, m, f); }
inline void Warn(absl::string_view m, std::initializer_list<Field> f = {}) { Write(Level::kWarning, m, f); }
inline void Error(absl::string_view m, std::initializer_list<Field> f = {}) { Write(Level::kError, m, f); }

// JSON string escaping, exposed for tests.
std::string JsonEscape(absl::string_view s);

}  // namespace kp::log
