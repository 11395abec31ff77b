// KeyStore: see keys.h.
#include "common/auth/keys.h"

#include <openssl/sha.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "common/metrics.h"

namespace kp::auth {
namespace {

std::string Fingerprint(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return "";
  return absl::StrCat(st.st_ino, ":", st.st_size, ":", st.st_mtim.tv_sec, ".", st.st_mtim.tv_nsec);
}

// The file's text, if `path` is a regular file. Opened without blocking and checked before it
// is read: a FIFO or a directory at the path (a mounting mistake) must neither hang the reload
// nor read as an empty file that revokes every key.
absl::StatusOr<std::string> ReadFile(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return absl::NotFoundError(absl::StrCat("cannot read keys file ", path, ": ", std::strerror(errno)));
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return absl::FailedPreconditionError(absl::StrCat("keys file ", path, " is not a regular file"));
  }
  std::string text;
  char buf[1 << 16];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) text.append(buf, static_cast<size_t>(n));
  close(fd);
  if (n < 0) return absl::UnavailableError(absl::StrCat("reading keys file ", path, ": ", std::strerror(errno)));
  return text;
}

}  // namespace

std::string Sha256Hex(absl::string_view data) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest);
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<char*>(digest), sizeof digest));
}

bool ValidRate(double rate) { return rate == 0 || (rate >= kMinRate && rate <= kMaxRate); }

ParsedKeys ParseKeys(absl::string_view text) {
  ParsedKeys out;
  int number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++number;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#') continue;
    std::vector<absl::string_view> f = absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    auto bad = [&](absl::string_view why) { out.errors.push_back(absl::StrCat("line ", number, ": ", why)); };
    if (f.size() < 3) {
      bad("want '<sha256> <principal> <role> [organisations/<id>] [expires=<time>] [rate=<per second>]'");
      continue;
    }
    if (f[0].size() != 64 || !std::all_of(f[0].begin(), f[0].end(), [](char c) { return absl::ascii_isxdigit(c); })) {
      bad("the first field must be the token's SHA-256 in hex (64 characters)");
      continue;
    }
    Key key;
    key.principal.name = std::string(f[1]);
    if (!ParseRole(f[2], &key.principal.role)) {
      bad("role must be reader, registrar, editor or admin");
      continue;
    }
    bool ok = true;
    for (size_t i = 3; ok && i < f.size(); ++i) {
      if (absl::StartsWith(f[i], "organisations/") && f[i].size() > 14) {
        key.principal.organisation = std::string(f[i]);
      } else if (absl::StartsWith(f[i], "expires=")) {
        std::string err;
        if (!absl::ParseTime(absl::RFC3339_full, std::string(f[i].substr(8)), &key.expires, &err)) {
          bad(absl::StrCat("expires: ", err));
          ok = false;
        }
      } else if (absl::StartsWith(f[i], "rate=")) {
        const absl::string_view text = f[i].substr(5);
        double rate;
        // Decimal only: SimpleAtod also reads "0x10" and "inf", which no one means here.
        if (text.find_first_not_of("0123456789.eE+-") != absl::string_view::npos || !absl::SimpleAtod(text, &rate) ||
            !ValidRate(rate)) {
          bad(absl::StrFormat("rate= must be 0 (unlimited) or %g to %.0f calls per second", kMinRate, kMaxRate));
          ok = false;
        } else {
          key.principal.rate_limit = rate;
        }
      } else {
        bad(absl::StrCat("unexpected '", f[i], "'"));
        ok = false;
      }
    }
    if (!ok) continue;
    if (key.principal.role == Role::kRegistrar && key.principal.organisation.empty()) {
      bad("a registrar must name its organisation (organisations/<id>)");
      continue;
    }
    // The first line for a token wins; a later one is a mistake to report, not a role change.
    if (!out.keys.emplace(absl::AsciiStrToLower(f[0]), key).second) bad("duplicate token hash (the first line for it is used)");
  }
  return out;
}

absl::StatusOr<std::unique_ptr<KeyStore>> KeyStore::Open(const std::string& path, absl::Duration reload_interval) {
  std::unique_ptr<KeyStore> store(new KeyStore(path, reload_interval));
  store->fingerprint_ = Fingerprint(path);
  auto text = ReadFile(path);
  if (!text.ok()) return text.status();
  ParsedKeys parsed = ParseKeys(*text);
  if (parsed.keys.empty()) {
    // What running processes keep their keys through (see Watch) must not start one that
    // refuses everyone while it says SERVING: it stops, naming the file.
    for (const auto& e : parsed.errors) log::Error("keys file: malformed line", {{"keys_file", path}, {"error", e}});
    return absl::FailedPreconditionError(absl::StrCat(
        "keys file ", path, " holds no valid key (",
        text->empty()           ? std::string("it is empty")
        : parsed.errors.empty() ? std::string("only comments and blank lines")
                                : absl::StrCat(parsed.errors.size(), " malformed lines, logged above"),
        "): every caller would be refused; add a key (kp-token), or check it with kp-token check"));
  }
  store->Install(std::move(parsed), /*reload=*/false);
  store->watcher_ = std::thread([s = store.get()] { s->Watch(); });
  return store;
}

KeyStore::~KeyStore() {
  stop_.Notify();
  if (watcher_.joinable()) watcher_.join();
}

void KeyStore::Install(ParsedKeys parsed, bool reload) {
  for (const auto& e : parsed.errors) {
    log::Error("keys file: malformed line skipped", {{"keys_file", path_}, {"error", e}});
  }
  metrics::KeysLoaded(static_cast<int64_t>(parsed.keys.size()), static_cast<int64_t>(parsed.errors.size()));
  log::Info(reload ? "keys reloaded" : "keys loaded", {{"keys_file", path_},
                                                       {"keys", static_cast<int>(parsed.keys.size())},
                                                       {"malformed_lines", static_cast<int>(parsed.errors.size())}});
  absl::MutexLock lock(&mu_);
  keys_ = std::make_shared<const KeyMap>(std::move(parsed.keys));
}

void KeyStore::Watch() {
  while (!stop_.WaitForNotificationWithTimeout(interval_)) {
    const std::string fp = Fingerprint(path_);
    if (fp.empty() || fp == fingerprint_) continue;
    auto text = ReadFile(path_);
    if (!text.ok()) {
      // Gone, replaced by something that is not a file, or unreadable: the keys stay as they
      // are (said once per change) and the next round looks again.
      if (fp != bad_fingerprint_) log::Error("keys file not reloaded; keeping the previous keys", {{"error", text.status().ToString()}});
      bad_fingerprint_ = fp;
      continue;
    }
    if (text->empty()) {
      // An empty file is a write caught half way far more often than a wish to revoke every
      // key (a file of comments alone does that).
      if (fp != bad_fingerprint_) log::Error("keys file is empty; keeping the previous keys", {{"keys_file", path_}});
      bad_fingerprint_ = fp;
      continue;
    }
    ParsedKeys parsed = ParseKeys(*text);
    if (parsed.keys.empty() && !parsed.errors.empty()) {
      // Every line malformed: an edit gone wrong, not a revocation (that is a file of comments
      // alone); a restarted process would refuse to start on it.
      if (fp != bad_fingerprint_) {
        for (const auto& e : parsed.errors) log::Error("keys file: malformed line", {{"keys_file", path_}, {"error", e}});
        log::Error("keys file holds no valid key; keeping the previous keys", {{"keys_file", path_}});
        absl::MutexLock lock(&mu_);
        metrics::KeysLoaded(static_cast<int64_t>(keys_->size()), static_cast<int64_t>(parsed.errors.size()));
      }
      bad_fingerprint_ = fp;
      continue;
    }
    fingerprint_ = fp;
    // What a restarted process would load: the valid lines, whatever the others say.
    Install(std::move(parsed), /*reload=*/true);
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
