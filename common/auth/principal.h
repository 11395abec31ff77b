// Who is calling: a principal with a role and, for registrars, the organisation they act for.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace kp::auth {

enum class Role { kReader, kRegistrar, kEditor, kAdmin };

struct Principal {
  std::string name;          // e.g. "kenya-focal-point"
  Role role = Role::kReader;
  std::string organisation;  // registrars: "organisations/{id}"
  // Calls per second the gateway admits for this principal (`rate=` in the keys file; 0: no
  // limit); negative: the gateway's default.
  double rate_limit = -1;
};

const char* RoleName(Role role);
bool ParseRole(absl::string_view name, Role* role);

// What an action needs.
enum class Access {
  kRead,    // every role
  kWrite,   // editor, admin (registrars: only what a service scopes to their organisation)
  kDelete,  // admin: delete and undelete
  kAudit,   // admin: read the audit log
};

// OK, or PERMISSION_DENIED saying which role the action needs.
absl::Status Require(const Principal& p, Access access, absl::string_view action);
// Whether a registrar of `p` may write a resource owned by `organisation`.
bool IsOwnOrganisation(const Principal& p, absl::string_view organisation);
// Whether `p` may see the personal data (email, phone) of a participant of `organisation`.
bool CanSeePersonalData(const Principal& p, absl::string_view organisation);
// The cache view: "public" (readers), "org:<organisation>" (registrars), "full" (editors, admins).
std::string View(const Principal& p);

}  // namespace kp::auth
