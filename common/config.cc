// Flag parsing with KP_* environment fallbacks.
#include "common/config.h"

#include "absl/synchronization/mutex.h"

#include <cstdio>
#include <cstdlib>

#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace kp::config {

std::string EnvName(const std::string& flag_name) {
  return absl::StrCat("KP_", absl::AsciiStrToUpper(flag_name));
}

std::vector<char*> ParseFlags(int argc, char** argv, const char* usage) {
  // Debian's Abseil checks every Mutex acquisition for lock-order cycles (a debugging aid that
  // showed up in the gateway's profile under load); the locking here is flat, so it is off.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  absl::SetProgramUsageMessage(usage);
  bool env_error = false;
  for (auto& [name, flag] : absl::GetAllFlags()) {
    const std::string env = EnvName(std::string(name));
    const char* value = std::getenv(env.c_str());
    if (value == nullptr) continue;
    std::string error;
    if (!flag->ParseFrom(value, &error)) {
      std::fprintf(stderr, "%s: invalid %s=%s: %s\n", argv[0], env.c_str(), value,
                   error.c_str());
      env_error = true;
    }
  }
  if (env_error) std::exit(2);
  return absl::ParseCommandLine(argc, argv);
}

void Validator::Check(bool ok, std::string message) {
  if (!ok) errors_.push_back(std::move(message));
}

void Validator::Check(const absl::Status& status) {
  if (!status.ok()) errors_.push_back(std::string(status.message()));
}

void Validator::ExitIfInvalid(const char* program) const {
  if (errors_.empty()) return;
  for (const auto& e : errors_) std::fprintf(stderr, "%s: configuration error: %s\n", program, e.c_str());
  std::exit(2);
}

}  // namespace kp::config
