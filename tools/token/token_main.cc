// kp-token: mints a bearer token and prints it with the keys-file line that admits it.
//   kp-token --principal=kenya-focal-point --role=registrar --organisation=organisations/kenya
//            [--expires=2027-01-01T00:00:00Z]
// The token goes to the client system (once); only the line (with its SHA-256) goes into the
// keys file.
//   kp-token check FILE
// checks a keys file before it is shipped: every malformed line with its number (the servers
// would skip them), exit status 1 if there is any.
#include <openssl/rand.h>

#include <fstream>
#include <iostream>
#include <sstream>

#include "absl/flags/flag.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/auth/keys.h"
#include "common/config.h"

ABSL_FLAG(std::string, principal, "", "Name of the client system, e.g. secretariat-portal.");
ABSL_FLAG(std::string, role, "reader", "reader, registrar, editor or admin.");
ABSL_FLAG(std::string, organisation, "", "For registrars: organisations/<id> they act for.");
ABSL_FLAG(std::string, expires, "", "Optional RFC 3339 expiry, e.g. 2027-01-01T00:00:00Z.");
ABSL_FLAG(bool, line_only, false, "Print only the keys-file line (the token goes to stderr).");
ABSL_FLAG(double, rate, -1, "Calls per second the gateway admits for this principal (0: unlimited; default: --rate_limit).");

namespace {

// kp-token check FILE: what the servers would load from FILE, and what they would skip.
int Check(const char* path) {
  std::ifstream in(path);
  if (!in) {
    std::cerr << "kp-token check: cannot read " << path << "\n";
    return 2;
  }
  std::stringstream text;
  text << in.rdbuf();
  const kp::auth::ParsedKeys parsed = kp::auth::ParseKeys(text.str());
  for (const auto& e : parsed.errors) std::cout << path << ": " << e << "\n";
  std::cout << path << ": " << parsed.keys.size() << " valid keys, " << parsed.errors.size()
            << " malformed lines" << (parsed.errors.empty() ? "" : " (servers skip them: fix before shipping)") << "\n";
  return parsed.errors.empty() ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<char*> args = kp::config::ParseFlags(
      argc, argv,
      "kp-token: mint a bearer token and its keys-file line (--principal, --role, ...), or check a keys "
      "file: kp-token check FILE.");
  if (args.size() >= 2 && std::string(args[1]) == "check") {
    if (args.size() != 3) {
      std::cerr << "usage: kp-token check FILE\n";
      return 2;
    }
    return Check(args[2]);
  }
  if (args.size() > 1) {
    std::cerr << "kp-token: unexpected argument '" << args[1] << "' (mint with flags, or: kp-token check FILE)\n";
    return 2;
  }
  kp::config::Validator v;
  const std::string principal = absl::GetFlag(FLAGS_principal);
  kp::auth::Role role;
  v.Check(!principal.empty() && principal.find_first_of(" \t#") == std::string::npos,
          "--principal is required (no spaces)");
  v.Check(kp::auth::ParseRole(absl::GetFlag(FLAGS_role), &role), "--role must be reader, registrar, editor or admin");
  const std::string org = absl::GetFlag(FLAGS_organisation);
  v.Check(absl::GetFlag(FLAGS_role) != "registrar" || absl::StartsWith(org, "organisations/"),
          "a registrar needs --organisation=organisations/<id>");
  absl::Time expires;
  std::string err;
  v.Check(absl::GetFlag(FLAGS_expires).empty() ||
              absl::ParseTime(absl::RFC3339_full, absl::GetFlag(FLAGS_expires), &expires, &err),
          "--expires must be an RFC 3339 time");
  v.Check(absl::GetFlag(FLAGS_rate) == -1 || kp::auth::ValidRate(absl::GetFlag(FLAGS_rate)),
          absl::StrFormat("--rate must be 0 (unlimited) or %g to %.0f calls per second", kp::auth::kMinRate,
                          kp::auth::kMaxRate));
  v.ExitIfInvalid("kp-token");

  unsigned char random[32];
  if (RAND_bytes(random, sizeof random) != 1) {
    std::cerr << "kp-token: no randomness available\n";
    return 1;
  }
  std::string token;
  absl::WebSafeBase64Escape(absl::string_view(reinterpret_cast<char*>(random), sizeof random), &token);
  token = absl::StrCat("kp_", token);
  std::string line = absl::StrCat(kp::auth::Sha256Hex(token), " ", principal, " ", absl::GetFlag(FLAGS_role));
  if (!org.empty()) absl::StrAppend(&line, " ", org);
  if (!absl::GetFlag(FLAGS_expires).empty()) absl::StrAppend(&line, " expires=", absl::GetFlag(FLAGS_expires));
  if (absl::GetFlag(FLAGS_rate) >= 0) absl::StrAppend(&line, " rate=", absl::GetFlag(FLAGS_rate));
  if (absl::GetFlag(FLAGS_line_only)) {
    std::cerr << token << "\n";
    std::cout << line << "\n";
  } else {
    std::cout << "token:          " << token << "\n" << "keys-file line: " << line << "\n";
  }
  return 0;
}
