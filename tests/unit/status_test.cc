// Errors as they leave for the wire: a NOT_FOUND naming missing resources keeps its details
// within what every client accepts, whatever the length of the names.
#include "common/status.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"

namespace kp {
namespace {

// `n` names of the longest valid ids (63 characters): "participants/<id>", 76 bytes.
std::vector<std::string> LongNames(int n) {
  std::vector<std::string> names;
  for (int i = 0; i < n; ++i) {
    std::string id = absl::StrCat("p", i, "-");
    id.resize(63, 'x');
    names.push_back(absl::StrCat("participants/", id));
  }
  return names;
}

TEST(Status, NotFoundListsTheFirstNamesThatFitAndCountsThemAll) {
  for (const int n : {1, 10, 26, 27, 45, 50, 100, 1000}) {
    const std::vector<std::string> names = LongNames(n);
    const grpc::Status wire = ToGrpcStatus(ResourcesNotFound("participants", names));
    ASSERT_EQ(wire.error_code(), grpc::StatusCode::NOT_FOUND);
    ASSERT_FALSE(wire.error_details().empty()) << n << " names: the details were dropped";
    EXPECT_LE(wire.error_details().size(), 4096u) << n;
    const absl::Status back = FromGrpcStatus(wire);
    const std::vector<std::string> listed = GetMissingNames(back);
    EXPECT_EQ(GetMissingCount(back), static_cast<size_t>(n));
    ASSERT_FALSE(listed.empty()) << n;
    EXPECT_LE(listed.size(), kMaxListedNames);
    EXPECT_EQ(listed, std::vector<std::string>(names.begin(), names.begin() + listed.size())) << n;
    if (n <= 26) {
      EXPECT_EQ(listed.size(), static_cast<size_t>(n));  // 26 of 76 bytes fit in 2 KiB
    }
  }
  // Short names: the count bound.
  std::vector<std::string> short_names;
  for (int i = 0; i < 300; ++i) short_names.push_back(absl::StrCat("organisations/o", i));
  const absl::Status status = ResourcesNotFound("organisations", short_names);
  EXPECT_EQ(GetMissingNames(status).size(), kMaxListedNames);
  EXPECT_EQ(GetMissingCount(status), 300u);
  EXPECT_EQ(GetMissingCount(absl::NotFoundError("no details")), 0u);
}

}  // namespace
}  // namespace kp
