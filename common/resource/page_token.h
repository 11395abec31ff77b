// Opaque keyset page tokens: the last row's sort values, bound to the query that produced
// them and signed, so a tampered or foreign token is rejected with INVALID_ARGUMENT.
#pragma once

#include <cstdint>
#include <string>
#include "absl/strings/string_view.h"
#include <vector>

#include "absl/status/statusor.h"
#include "common/storage/sql_value.h"

namespace kp::resource {

class PageTokenCodec {
 public:
  explicit PageTokenCodec(std::string key) : key_(std::move(key)) {}

  // A fingerprint of everything that must stay the same between pages.
  static std::string QueryFingerprint(const std::vector<absl::string_view>& parts);

  std::string Encode(absl::string_view fingerprint, const std::vector<storage::SqlValue>& last) const;
  // The token carrying `payload` as it is (Encode builds a payload, then seals it). Public so
  // that tests and fuzzers can reach the decoder behind the signature with any bytes.
  std::string Seal(absl::string_view payload) const;
  // INVALID_ARGUMENT (field `page_token`) when malformed, tampered with or from another query.
  absl::StatusOr<std::vector<storage::SqlValue>> Decode(absl::string_view token,
                                                        absl::string_view fingerprint) const;

 private:
  std::string Mac(absl::string_view data) const;
  std::string key_;
};

// The codec every service uses; its key comes from --page_token_key.
const PageTokenCodec& DefaultPageTokenCodec();
// Whether --page_token_key is the built-in key. That key is public (it is in the source), so
// anyone could sign tokens with it: a server with TLS on refuses to start on it.
bool UsingBuiltInPageTokenKey();

}  // namespace kp::resource
