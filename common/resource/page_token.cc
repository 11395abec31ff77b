// Page token encoding: base64url(payload || HMAC-SHA256(payload)[0:16]).
#include "absl/strings/string_view.h"
#include "common/resource/page_token.h"

#include <openssl/crypto.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <cstring>

#include "absl/flags/flag.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"

namespace {
constexpr char kBuiltInPageTokenKey[] = "kp-page-token-v1";
}  // namespace

ABSL_FLAG(std::string, page_token_key, kBuiltInPageTokenKey,
          "Secret that signs page tokens; the same on every replica of a service. The built-in "
          "default is public: only for --plaintext development.");

namespace kp::resource {
namespace {

constexpr size_t kMacBytes = 16;
constexpr size_t kFingerprintBytes = 16;

void PutU32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
bool GetU32(absl::string_view& in, uint32_t* v) {
  if (in.size() < 4) return false;
  *v = 0;
  for (int i = 0; i < 4; ++i) *v |= static_cast<uint32_t>(static_cast<unsigned char>(in[i])) << (8 * i);
  in.remove_prefix(4);
  return true;
}

absl::Status BadToken() {
  return InvalidField("page_token",
                      "is not a token returned by this query; pass next_page_token unchanged "
                      "with the same filter, order_by, search and show_deleted");
}

}  // namespace

std::string PageTokenCodec::QueryFingerprint(const std::vector<absl::string_view>& parts) {
  std::string joined;
  for (auto p : parts) {
    PutU32(joined, static_cast<uint32_t>(p.size()));
    joined.append(p.data(), p.size());
  }
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(joined.data()), joined.size(), digest);
  return std::string(reinterpret_cast<char*>(digest), kFingerprintBytes);
}

std::string PageTokenCodec::Mac(absl::string_view data) const {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key_.data(), static_cast<int>(key_.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac, &len);
  return std::string(reinterpret_cast<char*>(mac), kMacBytes);
}

std::string PageTokenCodec::Encode(absl::string_view fingerprint,
                                   const std::vector<storage::SqlValue>& last) const {
  std::string payload(fingerprint);
  payload.push_back(static_cast<char>(last.size()));
  for (const auto& v : last) {
    if (const auto* i = std::get_if<int64_t>(&v)) {
      payload.push_back('i');
      payload.append(std::to_string(*i));
      payload.push_back('\0');
    } else if (const auto* d = std::get_if<double>(&v)) {
      payload.push_back('d');
      uint64_t bits;
      std::memcpy(&bits, d, sizeof bits);
      payload.append(std::to_string(bits));
      payload.push_back('\0');
    } else if (const auto* s = std::get_if<std::string>(&v)) {
      payload.push_back('s');
      PutU32(payload, static_cast<uint32_t>(s->size()));
      payload.append(*s);
    } else {
      payload.push_back('n');
    }
  }
  return Seal(payload);
}

std::string PageTokenCodec::Seal(absl::string_view payload) const {
  std::string token;
  absl::WebSafeBase64Escape(absl::StrCat(payload, Mac(payload)), &token);
  return token;
}

absl::StatusOr<std::vector<storage::SqlValue>> PageTokenCodec::Decode(
    absl::string_view token, absl::string_view fingerprint) const {
  std::string raw;
  if (token.size() > 4096 || !absl::WebSafeBase64Unescape(token, &raw) ||
      raw.size() < kFingerprintBytes + 1 + kMacBytes) {
    return BadToken();
  }
  absl::string_view payload(raw.data(), raw.size() - kMacBytes);
  const std::string expected = Mac(payload);
  if (CRYPTO_memcmp(expected.data(), raw.data() + payload.size(), kMacBytes) != 0) return BadToken();
  if (payload.substr(0, kFingerprintBytes) != fingerprint) return BadToken();
  payload.remove_prefix(kFingerprintBytes);
  const size_t count = static_cast<unsigned char>(payload[0]);
  payload.remove_prefix(1);
  std::vector<storage::SqlValue> values;
  for (size_t k = 0; k < count; ++k) {
    if (payload.empty()) return BadToken();
    const char type = payload[0];
    payload.remove_prefix(1);
    if (type == 'i' || type == 'd') {
      const size_t end = payload.find('\0');
      if (end == absl::string_view::npos) return BadToken();
      const absl::string_view digits = payload.substr(0, end);
      payload.remove_prefix(end + 1);
      // Checked parsing: a signed token may still carry any bytes here (the key could leak).
      if (type == 'i') {
        int64_t i;
        if (!absl::SimpleAtoi(digits, &i)) return BadToken();
        values.emplace_back(i);
      } else {
        uint64_t bits;
        if (!absl::SimpleAtoi(digits, &bits)) return BadToken();
        double d;
        std::memcpy(&d, &bits, sizeof d);
        values.emplace_back(d);
      }
    } else if (type == 's') {
      uint32_t n;
      if (!GetU32(payload, &n) || payload.size() < n) return BadToken();
      values.emplace_back(std::string(payload.substr(0, n)));
      payload.remove_prefix(n);
    } else if (type == 'n') {
      values.emplace_back(std::monostate{});
    } else {
      return BadToken();
    }
  }
  if (!payload.empty()) return BadToken();
  return values;
}

bool UsingBuiltInPageTokenKey() { return absl::GetFlag(FLAGS_page_token_key) == kBuiltInPageTokenKey; }

const PageTokenCodec& DefaultPageTokenCodec() {
  static const auto* codec = new PageTokenCodec(absl::GetFlag(FLAGS_page_token_key));
  return *codec;
}

}  // namespace kp::resource
