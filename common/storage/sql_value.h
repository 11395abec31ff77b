// A value bound to, or read from, a SQL statement.
#pragma once

#include <cstdint>
#include <string>
#include <variant>

namespace kp::storage {

using SqlValue = std::variant<std::monostate, int64_t, double, std::string>;

}  // namespace kp::storage
