// Configuration by flags, each with a KP_* environment fallback (flag > environment > default),
// validated at start-up with a clear error.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace kp::config {

// Applies KP_<FLAG_NAME> environment variables, then parses argv (which wins). Exits with a
// usage error on unknown flags or unparsable values. Returns the positional arguments.
std::vector<char*> ParseFlags(int argc, char** argv, const char* usage);

// Collects start-up validation errors and exits with status 2 naming all of them.
class Validator {
 public:
  void Check(bool ok, std::string message);
  void Check(const absl::Status& status);
  // Prints every error and exits if any check failed.
  void ExitIfInvalid(const char* program) const;

 private:
  std::vector<std::string> errors_;
};

// The environment variable read for a flag: "drain_timeout" -> "KP_DRAIN_TIMEOUT".
std::string EnvName(const std::string& flag_name);

}  // namespace kp::config
