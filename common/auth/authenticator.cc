// Authenticator: see authenticator.h.
#include "common/auth/authenticator.h"

#include <cstdio>
#include <cstdlib>

#include "absl/flags/flag.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/log.h"

ABSL_FLAG(std::string, auth, "required",
          "required: every call needs a bearer token from --keys_file; disabled: no authentication "
          "(local development only: every caller is an admin).");
ABSL_FLAG(std::string, keys_file, "", "The keys file (token hashes and principals); see common/auth/keys.h.");
ABSL_FLAG(absl::Duration, keys_reload_interval, absl::Seconds(2), "How often the keys file is checked for changes.");

namespace kp::auth {
namespace {
std::unique_ptr<Authenticator>& Global() {
  static auto* a = new std::unique_ptr<Authenticator>(Authenticator::DenyAll());
  return *a;
}
}  // namespace

std::unique_ptr<Authenticator> Authenticator::DenyAll() {
  return std::unique_ptr<Authenticator>(new Authenticator(Mode::kDenyAll, nullptr));
}
std::unique_ptr<Authenticator> Authenticator::Disabled() {
  return std::unique_ptr<Authenticator>(new Authenticator(Mode::kDisabled, nullptr));
}
std::unique_ptr<Authenticator> Authenticator::WithKeys(std::unique_ptr<KeyStore> keys) {
  return std::unique_ptr<Authenticator>(new Authenticator(Mode::kKeys, std::move(keys)));
}

absl::StatusOr<Principal> Authenticator::Authenticate(const grpc::ServerContextBase& ctx) const {
  switch (mode_) {
    case Mode::kDisabled: return Principal{"anonymous", Role::kAdmin, ""};
    case Mode::kDenyAll:
      return absl::UnauthenticatedError("authentication is not configured on this server; every call is refused");
    case Mode::kKeys: break;
  }
  const auto& md = ctx.client_metadata();
  auto it = md.find("authorization");
  if (it == md.end()) {
    return absl::UnauthenticatedError("missing credentials: send 'authorization: Bearer <token>'");
  }
  absl::string_view value(it->second.data(), it->second.size());
  if (value.size() < 7 || !absl::EqualsIgnoreCase(value.substr(0, 7), "bearer ")) {
    return absl::UnauthenticatedError("the authorization header must be 'Bearer <token>'");
  }
  return keys_->Lookup(absl::StripAsciiWhitespace(value.substr(7)));
}

void ValidateAuthFlags(config::Validator& v) {
  const std::string mode = absl::GetFlag(FLAGS_auth);
  v.Check(mode == "required" || mode == "disabled", "--auth must be 'required' or 'disabled'");
  v.Check(mode != "required" || !absl::GetFlag(FLAGS_keys_file).empty(),
          "--auth=required needs --keys_file (or --auth=disabled for local development)");
  v.Check(absl::GetFlag(FLAGS_keys_reload_interval) >= absl::Milliseconds(100),
          "--keys_reload_interval must be at least 100ms");
}

void InitAuthFromFlags(const char* program) {
  if (absl::GetFlag(FLAGS_auth) == "disabled") {
    log::Warn("authentication disabled (--auth=disabled): every caller is an admin");
    Global() = Authenticator::Disabled();
    return;
  }
  auto keys = KeyStore::Open(absl::GetFlag(FLAGS_keys_file), absl::GetFlag(FLAGS_keys_reload_interval));
  if (!keys.ok()) {
    std::fprintf(stderr, "%s: configuration error: %s\n", program, std::string(keys.status().message()).c_str());
    std::exit(2);
  }
  Global() = Authenticator::WithKeys(std::move(*keys));
}

const Authenticator& CurrentAuthenticator() { return *Global(); }

}  // namespace kp::auth
