// Authenticates every call with one library: `authorization: Bearer <token>` looked up in the
// keys file. Health, reflection and metrics never come here, so they stay open. Deny by
// default: until a process configures it, every call is refused.
#pragma once

#include <memory>

#include <grpcpp/server_context.h>

#include "absl/status/statusor.h"
#include "common/auth/keys.h"
#include "common/config.h"

namespace kp::auth {

class Authenticator {
 public:
  // Every call UNAUTHENTICATED: what a process gets that never configured authentication.
  static std::unique_ptr<Authenticator> DenyAll();
  // No authentication (--auth=disabled, local development only): every caller is an admin
  // named "anonymous".
  static std::unique_ptr<Authenticator> Disabled();
  // Bearer tokens looked up in `keys`.
  static std::unique_ptr<Authenticator> WithKeys(std::unique_ptr<KeyStore> keys);

  absl::StatusOr<Principal> Authenticate(const grpc::ServerContextBase& ctx) const;
  // False only when disabled.
  bool enabled() const { return mode_ != Mode::kDisabled; }

 private:
  enum class Mode { kDenyAll, kDisabled, kKeys };
  Authenticator(Mode mode, std::unique_ptr<KeyStore> keys) : mode_(mode), keys_(std::move(keys)) {}
  Mode mode_;
  std::unique_ptr<KeyStore> keys_;
};

// --auth (required | disabled), --keys_file, --keys_reload_interval.
void ValidateAuthFlags(config::Validator& v);
// Builds the process-wide authenticator from the flags; exits on an unreadable keys file.
void InitAuthFromFlags(const char* program);
// The process-wide authenticator: denies every call until InitAuthFromFlags.
const Authenticator& CurrentAuthenticator();

}  // namespace kp::auth
