// Authenticates every call with one library: `authorization: Bearer <token>` looked up in the
// keys file. Health, reflection and metrics never come here, so they stay open.
#pragma once

#include <memory>

#include <grpcpp/server_context.h>

#include "absl/status/statusor.h"
#include "common/auth/keys.h"
#include "common/config.h"

namespace kp::auth {

class Authenticator {
 public:
  // With `keys` null, authentication is disabled (local development): every caller is an
  // admin named "anonymous".
  explicit Authenticator(std::unique_ptr<KeyStore> keys) : keys_(std::move(keys)) {}
  absl::StatusOr<Principal> Authenticate(const grpc::ServerContextBase& ctx) const;
  bool enabled() const { return keys_ != nullptr; }

 private:
  std::unique_ptr<KeyStore> keys_;
};

// --auth (required | disabled), --keys_file, --keys_reload_interval.
void ValidateAuthFlags(config::Validator& v);
// Builds the process-wide authenticator from the flags; exits on an unreadable keys file.
void InitAuthFromFlags(const char* program);
// The process-wide authenticator (disabled until InitAuthFromFlags).
const Authenticator& CurrentAuthenticator();

}  // namespace kp::auth
