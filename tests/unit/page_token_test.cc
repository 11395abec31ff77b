// Page tokens: round trip, and rejection of tampered, truncated and foreign tokens.
#include "common/resource/page_token.h"

#include <gtest/gtest.h>

#include "absl/strings/escaping.h"
#include "common/status.h"

namespace kp::resource {
namespace {

const PageTokenCodec kCodec("test-key");

std::string Fingerprint(const std::string& filter) {
  return PageTokenCodec::QueryFingerprint({"events", filter, "", "", "0"});
}

TEST(PageToken, RoundTripsEveryValueType) {
  const std::vector<storage::SqlValue> last{int64_t{-42}, 3.5e-7, std::string("b\0c", 3), std::monostate{}};
  const std::string fp = Fingerprint("kind = OTHER");
  auto decoded = kCodec.Decode(kCodec.Encode(fp, last), fp);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(*decoded, last);
}

TEST(PageToken, TokenFromAnotherQueryIsInvalidArgument) {
  const std::string token = kCodec.Encode(Fingerprint("a"), {int64_t{1}});
  auto decoded = kCodec.Decode(token, Fingerprint("b"));
  EXPECT_EQ(decoded.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(GetFieldViolations(decoded.status())[0].field, "page_token");
}

TEST(PageToken, EveryTamperedByteIsRejected) {
  const std::string fp = Fingerprint("a");
  const std::string token = kCodec.Encode(fp, {int64_t{1234}, std::string("keyset")});
  for (size_t i = 0; i < token.size(); ++i) {
    std::string t = token;
    t[i] = t[i] == 'A' ? 'B' : 'A';
    EXPECT_EQ(kCodec.Decode(t, fp).status().code(), absl::StatusCode::kInvalidArgument) << i;
  }
  EXPECT_FALSE(kCodec.Decode(token.substr(0, token.size() - 3), fp).ok());
  EXPECT_FALSE(kCodec.Decode("", fp).ok());
  EXPECT_FALSE(kCodec.Decode("!!!!", fp).ok());
}

TEST(PageToken, TokenSignedWithAnotherKeyIsRejected) {
  const std::string fp = Fingerprint("a");
  const PageTokenCodec other("another-key");
  EXPECT_FALSE(kCodec.Decode(other.Encode(fp, {int64_t{1}}), fp).ok());
}

// The signature is no defence once the key leaks (the built-in one is public): whatever a
// signed token carries must decode to INVALID_ARGUMENT, never throw.
TEST(PageToken, SignedGarbageBehindTheSignatureIsInvalidArgument) {
  const std::string fp = Fingerprint("a");
  const std::string cases[] = {
      std::string("\x01i") + "notanumber" + std::string(1, '\0'),
      std::string("\x01i") + "99999999999999999999999" + std::string(1, '\0'),
      std::string("\x01i") + "-99999999999999999999999" + std::string(1, '\0'),
      std::string("\x01") + "d-1" + std::string(1, '\0'),
      std::string("\x01") + "d184467440737095516160" + std::string(1, '\0'),
      std::string("\x01i") + std::string(1, '\0'),
      std::string("\x01i") + "12",               // no terminator
      std::string("\x02s") + "\xff\xff\xff\xff",  // a length beyond the payload
      std::string("\xffn"),                        // more values announced than present
      std::string("\x01x"),                        // unknown type
      std::string(""),                              // no count
  };
  for (const auto& body : cases) {
    auto decoded = kCodec.Decode(kCodec.Seal(fp + body), fp);
    EXPECT_EQ(decoded.status().code(), absl::StatusCode::kInvalidArgument) << absl::CEscape(body);
  }
  // What Encode writes still decodes.
  auto ok = kCodec.Decode(kCodec.Seal(fp + std::string("\x01i-7") + std::string(1, '\0')), fp);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(std::get<int64_t>((*ok)[0]), -7);
}

}  // namespace
}  // namespace kp::resource
