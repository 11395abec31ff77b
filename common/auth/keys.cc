// KeyStore: see keys.h.
#include "common/auth/keys.h"

#include <openssl/sha.h>
#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/log.h"

namespace kp::auth {
namespace {

std::string Fingerprint(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return "";
  return absl::StrCat(st.st_ino, ":", st.st_size, ":", st.st_mtim.tv_sec, ".", st.st_mtim.tv_nsec);
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read keys file ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

std::string Sha256Hex(absl::string_view data) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest);
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<char*>(digest), sizeof digest));
}

absl::StatusOr<KeyMap> ParseKeys(absl::string_view text) {
  KeyMap keys;
  int number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++number;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#') continue;
    std::vector<absl::string_view> f = absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    auto bad = [&](absl::string_view why) {
      return absl::InvalidArgumentError(absl::StrCat("keys file line ", number, ": ", why));
    };
    if (f.size() < 3) return bad("want '<sha256> <principal> <role> [organisations/<id>] [expires=<time>]'");
    if (f[0].size() != 64 || !std::all_of(f[0].begin(), f[0].end(), [](char c) { return absl::ascii_isxdigit(c); })) {
      return bad("the first field must be the token's SHA-256 in hex (64 characters)");
    }
    Key key;
    key.principal.name = std::string(f[1]);
    if (!ParseRole(f[2], &key.principal.role)) return bad("role must be reader, registrar, editor or admin");
    for (size_t i = 3; i < f.size(); ++i) {
      if (absl::StartsWith(f[i], "organisations/")) {
        key.principal.organisation = std::string(f[i]);
      } else if (absl::StartsWith(f[i], "expires=")) {
        std::string err;
        if (!absl::ParseTime(absl::RFC3339_full, std::string(f[i].substr(8)), &key.expires, &err)) {
          return bad(absl::StrCat("expires: ", err));
        }
      } else {
        return bad(absl::StrCat("unexpected '", f[i], "'"));
      }
    }
    if (key.principal.role == Role::kRegistrar && key.principal.organisation.empty()) {
      return bad("a registrar must name its organisation (organisations/<id>)");
    }
    if (!keys.emplace(absl::AsciiStrToLower(f[0]), key).second) return bad("duplicate token hash");
  }
  return keys;
}

absl::StatusOr<std::unique_ptr<KeyStore>> KeyStore::Open(const std::string& path, absl::Duration reload_interval) {
  std::unique_ptr<KeyStore> store(new KeyStore(path, reload_interval));
  store->fingerprint_ = Fingerprint(path);
  auto text = ReadFile(path);
  if (!text.ok()) return text.status();
  auto keys = ParseKeys(*text);
  if (!keys.ok()) return absl::InvalidArgumentError(absl::StrCat(path, ": ", keys.status().message()));
  log::Info("keys loaded", {{"keys_file", path}, {"keys", static_cast<int>(keys->size())}});
  {
    absl::MutexLock lock(&store->mu_);
    store->keys_ = std::make_shared<const KeyMap>(std::move(*keys));
  }
  store->watcher_ = std::thread([s = store.get()] { s->Watch(); });
  return store;
}

KeyStore::~KeyStore() {
  stop_.Notify();
  if (watcher_.joinable()) watcher_.join();
}

void KeyStore::Watch() {
  while (!stop_.WaitForNotificationWithTimeout(interval_)) {
    const std::string fp = Fingerprint(path_);
    if (fp.empty() || fp == fingerprint_) continue;
    auto text = ReadFile(path_);
    auto keys = text.ok() ? ParseKeys(*text) : absl::StatusOr<KeyMap>(text.status());
    fingerprint_ = fp;
    if (!keys.ok()) {
      // A bad edit must not lock everyone out: keep serving the last good keys.
      log::Error("keys file not reloaded; keeping the previous keys", {{"error", keys.status().ToString()}});
      continue;
    }
    log::Info("keys reloaded", {{"keys_file", path_}, {"keys", static_cast<int>(keys->size())}});
    absl::MutexLock lock(&mu_);
    keys_ = std::make_shared<const KeyMap>(std::move(*keys));
  }
}

absl::StatusOr<Principal> KeyStore::Lookup(absl::string_view token) const {
  std::shared_ptr<const KeyMap> keys;
  {
    absl::MutexLock lock(&mu_);
    keys = keys_;
  }
  auto it = keys->find(Sha256Hex(token));
  if (it == keys->end()) return absl::UnauthenticatedError("the bearer token is not valid (unknown or revoked)");
  if (absl::Now() >= it->second.expires) return absl::UnauthenticatedError("the bearer token has expired");
  return it->second.principal;
}

}  // namespace kp::auth
