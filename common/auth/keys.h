// The keys file: tokens are never stored, only their SHA-256 hashes, each bound to a
// principal. Loaded at start and reloaded when the file changes (a Kubernetes Secret update).
//
// One key per line; blank lines and lines starting with '#' are ignored:
//   <sha256 hex of the token> <principal> <role> [organisations/<id>] [expires=<RFC 3339 time>]
//   [rate=<calls per second at the gateway: 0 (unlimited), or 0.001 to 1000000>]
// role is reader, registrar, editor or admin; a registrar line names its organisation.
// Revoking a token = deleting its line.
#pragma once

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/auth/principal.h"

namespace kp::auth {

struct Key {
  Principal principal;
  absl::Time expires = absl::InfiniteFuture();
};

using KeyMap = absl::flat_hash_map<std::string, Key>;  // by sha256 hex

// A keys file's valid lines, and one message per malformed line ("line 7: ..."), which is
// skipped: one bad edit never locks out the other keys, nor stops a process from starting.
struct ParsedKeys {
  KeyMap keys;
  std::vector<std::string> errors;
};
ParsedKeys ParseKeys(absl::string_view text);
std::string Sha256Hex(absl::string_view data);

// A principal's `rate=`: 0 (unlimited), or kMinRate to kMaxRate calls per second. Anything
// else (1e-12: one call in 30,000 years) is a mistake, refused as a malformed line.
inline constexpr double kMinRate = 0.001;  // one call in about 17 minutes
inline constexpr double kMaxRate = 1e6;
bool ValidRate(double rate);

class KeyStore {
 public:
  // Loads `path` and watches it every `reload_interval`. Fails when the file cannot be read or
  // holds no valid key (empty, comments only, or every line malformed: a server started on it
  // would refuse every caller while it reports SERVING). Malformed lines are logged with their
  // numbers, counted in the metrics (kp_auth_keys_malformed_lines) and skipped, at start and on
  // every reload alike. A reload that finds the file gone, not a regular file, empty, or with
  // malformed lines and no valid key keeps the previous keys (a half-done edit or a mounting
  // mistake); a file of comments alone revokes every key.
  static absl::StatusOr<std::unique_ptr<KeyStore>> Open(const std::string& path, absl::Duration reload_interval);
  ~KeyStore();

  // The principal of `token`; UNAUTHENTICATED if unknown, revoked or expired.
  absl::StatusOr<Principal> Lookup(absl::string_view token) const;

 private:
  KeyStore(std::string path, absl::Duration interval) : path_(std::move(path)), interval_(interval) {}
  void Watch();
  // Installs the keys parsed from the file, logging and counting its malformed lines.
  void Install(ParsedKeys parsed, bool reload);
  std::string path_;
  absl::Duration interval_;
  mutable absl::Mutex mu_;
  std::shared_ptr<const KeyMap> keys_ ABSL_GUARDED_BY(mu_);
  std::string fingerprint_;  // mtime/size/inode of the loaded file; only the watcher touches it
  std::string bad_fingerprint_;  // of the last file refused (to say so once)
  absl::Notification stop_;
  std::thread watcher_;
};

}  // namespace kp::auth
