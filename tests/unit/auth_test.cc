// Authentication: deny by default, and keys files whose malformed lines are skipped (with their
// numbers) rather than failing the whole file.
#include "common/auth/authenticator.h"

#include <string>
#include <vector>

#include <grpcpp/server_context.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "common/auth/keys.h"

namespace kp::auth {
namespace {

TEST(Authenticator, AProcessThatConfiguredNothingDeniesEveryCall) {
  grpc::ServerContext ctx;
  // The process-wide authenticator before InitAuthFromFlags: nobody is let in.
  auto principal = CurrentAuthenticator().Authenticate(ctx);
  EXPECT_EQ(principal.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_TRUE(CurrentAuthenticator().enabled());
  EXPECT_EQ(Authenticator::DenyAll()->Authenticate(ctx).status().code(), absl::StatusCode::kUnauthenticated);
}

TEST(Authenticator, OnlyAnExplicitDisableLetsEveryoneIn) {
  grpc::ServerContext ctx;
  auto disabled = Authenticator::Disabled();
  EXPECT_FALSE(disabled->enabled());
  auto principal = disabled->Authenticate(ctx);
  ASSERT_TRUE(principal.ok());
  EXPECT_EQ(principal->role, Role::kAdmin);
}

TEST(Keys, MalformedLinesAreSkippedAndNamedByNumber) {
  const std::string good = Sha256Hex("token-a");
  const std::string text = absl::StrCat(
      "# comment\n",
      good, " alice editor\n",                                   // 2: fine
      "not-a-hash bob reader\n",                                 // 3
      Sha256Hex("token-c"), " carol superuser\n",                // 4: unknown role
      Sha256Hex("token-d"), " dave registrar\n",                 // 5: registrar without organisation
      Sha256Hex("token-e"), " erin reader expires=tomorrow\n",   // 6
      good, " mallory admin\n",                                  // 7: the same token again
      Sha256Hex("token-f"), " frank registrar organisations/kenya\n");  // 8: fine
  const ParsedKeys parsed = ParseKeys(text);
  EXPECT_EQ(parsed.keys.size(), 2u);
  ASSERT_EQ(parsed.errors.size(), 5u);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(parsed.errors[i].rfind(absl::StrCat("line ", i + 3, ": "), 0), 0u) << parsed.errors[i];
  // The first line for a token wins: a later duplicate cannot raise its role.
  EXPECT_EQ(parsed.keys.at(good).principal.role, Role::kEditor);
}

// rate= is 0 (unlimited) or a sensible number of calls per second: an absurd one is a
// malformed line, reported by kp-token check and skipped, like any other.
TEST(Keys, RateMustBeZeroOrWithinBounds) {
  std::string text;
  const std::vector<std::string> bad = {"1e-12", "4.9e-324", "0.0009", "-1", "-0.5", "nan", "inf", "0x10", "1e7", "",
                                        "two"};
  const std::vector<std::string> good = {"0", "-0", "0.001", "0.5", "2", "1e6", "1000000"};
  int line = 0;
  for (const auto& rate : bad) {
    ++line;
    absl::StrAppend(&text, Sha256Hex(absl::StrCat("bad-", line)), " p", line, " reader rate=", rate, "\n");
  }
  for (const auto& rate : good) {
    ++line;
    absl::StrAppend(&text, Sha256Hex(absl::StrCat("good-", line)), " p", line, " reader rate=", rate, "\n");
  }
  const ParsedKeys parsed = ParseKeys(text);
  ASSERT_EQ(parsed.errors.size(), bad.size());
  for (size_t i = 0; i < bad.size(); ++i) {
    EXPECT_EQ(parsed.errors[i].rfind(absl::StrCat("line ", i + 1, ": rate="), 0), 0u) << bad[i] << ": " << parsed.errors[i];
  }
  ASSERT_EQ(parsed.keys.size(), good.size());
  EXPECT_EQ(parsed.keys.at(Sha256Hex(absl::StrCat("good-", bad.size() + 3))).principal.rate_limit, 0.001);
  for (const auto& [hash, key] : parsed.keys) EXPECT_TRUE(ValidRate(key.principal.rate_limit)) << key.principal.name;
}

}  // namespace
}  // namespace kp::auth
