// Shared validators: ids, names, dates, country codes, lengths, formats.
#include "common/resource/validation.h"

#include <gtest/gtest.h>

#include "common/resource/reflection.h"
#include "khartoum/type/v1/date.pb.h"

namespace kp::resource {
namespace {

TEST(Validation, Ids) {
  for (const std::string& ok : std::vector<std::string>{"a", "kenya", "south-sudan", "2024-nairobi-law",
                                                       std::string(63, 'a')}) {
    EXPECT_TRUE(IsValidId(ok)) << ok;
  }
  for (const std::string& bad : std::vector<std::string>{"", "-a", "a-", "A", "a_b", "a b", "é",
                                                        std::string(64, 'a')}) {
    EXPECT_FALSE(IsValidId(bad)) << bad;
  }
  EXPECT_TRUE(IsValidId(NewId()));
  EXPECT_NE(NewId(), NewId());
}

TEST(Validation, ResourceNames) {
  std::string id;
  EXPECT_TRUE(ParseName("events", "events/x-1", &id));
  EXPECT_EQ(id, "x-1");
  EXPECT_FALSE(ParseName("events", "events/", &id));
  EXPECT_FALSE(ParseName("events", "eventsx/a", &id));
  EXPECT_FALSE(ParseName("events", "organisations/a", &id));
  EXPECT_FALSE(ParseName("events", "events/a/b", &id));
}

TEST(Validation, Dates) {
  EXPECT_TRUE(IsValidDate(2024, 2, 29));
  EXPECT_FALSE(IsValidDate(2023, 2, 29));
  EXPECT_FALSE(IsValidDate(1900, 2, 29));
  EXPECT_TRUE(IsValidDate(2000, 2, 29));
  EXPECT_FALSE(IsValidDate(2024, 4, 31));
  EXPECT_FALSE(IsValidDate(2024, 13, 1));
  EXPECT_FALSE(IsValidDate(0, 1, 1));
  khartoum::type::v1::Date d;
  FieldViolations v;
  CheckDate(v, "start_date", d, true);
  EXPECT_EQ(v.list().size(), 1u);
  d.set_year(2024);
  d.set_month(2);
  d.set_day(30);
  CheckDate(v, "start_date", d, true);
  EXPECT_EQ(v.list().size(), 2u);
  std::string canonical;
  EXPECT_TRUE(ParseDateLiteral("2024-02-29", &canonical));
  EXPECT_FALSE(ParseDateLiteral("2024-2-29", &canonical));
  EXPECT_FALSE(ParseDateLiteral("2024-02-3x", &canonical));
}

TEST(Validation, CountryCodesUseTheFullIsoList) {
  for (const char* ok : {"KE", "DE", "SS", "ER", "AX", "ZW"}) EXPECT_TRUE(IsCountryCode(ok)) << ok;
  for (const char* bad : {"ke", "XX", "UK", "KEN", ""}) EXPECT_FALSE(IsCountryCode(bad)) << bad;
}

TEST(Validation, LengthCountsCharactersAndRejectsBadUtf8) {
  FieldViolations v;
  CheckLength(v, "f", "Côte d’Ivoire", 13);
  EXPECT_TRUE(v.empty());
  CheckLength(v, "f", "Côte d’Ivoire", 12);
  EXPECT_EQ(v.list().size(), 1u);
  CheckLength(v, "f", std::string("\xff\xfe", 2), 10);
  EXPECT_EQ(v.list().size(), 2u);
  EXPECT_EQ(v.list()[1].description, "is not valid UTF-8");
}

TEST(Validation, Formats) {
  FieldViolations v;
  CheckEmail(v, "email", "a.b@example.org");
  CheckPhone(v, "phone", "+254 20 123 4567");
  CheckHttpUri(v, "uri", "https://www.khartoumprocess.net/about?x=1");
  CheckSlug(v, "topic", "trafficking-in-persons");
  EXPECT_TRUE(v.empty());
  CheckEmail(v, "email", "no-at-sign");
  CheckPhone(v, "phone", "phone me");
  CheckHttpUri(v, "uri", "javascript:alert(1)");
  CheckSlug(v, "topic", "Trafficking in persons");
  CheckSlug(v, "topic", "double--dash");
  EXPECT_EQ(v.list().size(), 5u);
}

TEST(Validation, ViolationsBecomeOneInvalidArgumentWithAll) {
  FieldViolations v;
  v.Add("a", "is required");
  v.Add("b", "is too long");
  absl::Status s = v.ToStatus();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "invalid fields: a: is required; b: is too long");
  auto back = GetFieldViolations(s);
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(back[1].field, "b");
  grpc::Status wire = ToGrpcStatus(s);
  EXPECT_EQ(wire.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(GetFieldViolations(FromGrpcStatus(wire)).size(), 2u);
}

}  // namespace
}  // namespace kp::resource
