// Roles and the authorisation policy of DESIGN.md ("Security").
#include "common/auth/principal.h"

#include "absl/strings/str_cat.h"

namespace kp::auth {

const char* RoleName(Role role) {
  switch (role) {
    case Role::kReader: return "reader";
    case Role::kRegistrar: return "registrar";
    case Role::kEditor: return "editor";
    case Role::kAdmin: return "admin";
  }
  return "reader";
}

bool ParseRole(absl::string_view name, Role* role) {
  if (name == "reader") *role = Role::kReader;
  else if (name == "registrar") *role = Role::kRegistrar;
  else if (name == "editor") *role = Role::kEditor;
  else if (name == "admin") *role = Role::kAdmin;
  else return false;
  return true;
}

absl::Status Require(const Principal& p, Access access, absl::string_view action) {
  bool allowed = false;
  const char* needs = "";
  switch (access) {
    case Access::kRead: allowed = true; break;
    case Access::kWrite: allowed = p.role == Role::kEditor || p.role == Role::kAdmin; needs = "an editor or admin"; break;
    case Access::kDelete: allowed = p.role == Role::kAdmin; needs = "an admin"; break;
    case Access::kAudit: allowed = p.role == Role::kAdmin; needs = "an admin"; break;
  }
  if (allowed) return absl::OkStatus();
  return absl::PermissionDeniedError(
      absl::StrCat(action, " needs ", needs, "; principal '", p.name, "' is a ", RoleName(p.role)));
}

bool IsOwnOrganisation(const Principal& p, absl::string_view organisation) {
  return p.role == Role::kRegistrar && !p.organisation.empty() && p.organisation == organisation;
}

bool CanSeePersonalData(const Principal& p, absl::string_view organisation) {
  return p.role == Role::kEditor || p.role == Role::kAdmin || IsOwnOrganisation(p, organisation);
}

std::string View(const Principal& p) {
  switch (p.role) {
    case Role::kReader: return "public";
    case Role::kRegistrar: return absl::StrCat("org:", p.organisation);
    default: return "full";
  }
}

}  // namespace kp::auth
