// The AIP-160 filter compiler: valid filters become parameterised SQL, invalid ones name the
// position, and no literal text ever reaches the SQL.
#include "common/resource/filter.h"

#include <gtest/gtest.h>

#include "common/status.h"
#include "common/utf8.h"
#include "khartoum/events/v1/events.pb.h"

namespace kp::resource {
namespace {

const Catalog& Events() {
  static const Catalog* catalog = new Catalog(ResourceSpec{
      .collection = "events",
      .singular = "event",
      .descriptor = khartoum::events::v1::Event::descriptor(),
      .fields = {"kind", "status", "start_date", "location.country_code", "hosts", "co_hosts", "title",
                 "capacity"},
  });
  return *catalog;
}

TEST(Filter, EmptyFilterIsNoCondition) {
  auto f = CompileFilter("   ", Events());
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->sql, "");
  EXPECT_TRUE(f->params.empty());
}

TEST(Filter, ComparisonBecomesABoundParameter) {
  auto f = CompileFilter(R"(title = "Workshop")", Events());
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->sql, "t.title = ?");
  ASSERT_EQ(f->params.size(), 1u);
  EXPECT_EQ(std::get<std::string>(f->params[0]), "Workshop");
}

TEST(Filter, EnumShortAndFullNamesAreEqual) {
  auto a = CompileFilter("kind = THEMATIC_WORKSHOP", Events());
  auto b = CompileFilter("kind = EVENT_KIND_THEMATIC_WORKSHOP", Events());
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->sql, b->sql);
  EXPECT_EQ(std::get<int64_t>(a->params[0]), 5);
  EXPECT_EQ(std::get<int64_t>(b->params[0]), 5);
}

TEST(Filter, PrecedenceNotAndOrAndParentheses) {
  auto f = CompileFilter(
      R"(kind = THEMATIC_WORKSHOP AND start_date >= "2023-01-01" AND (hosts:"organisations/kenya" OR co_hosts:"organisations/kenya"))",
      Events());
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->sql,
            "(t.kind = ? AND t.start_date >= ? AND (EXISTS (SELECT 1 FROM events_values v WHERE v.seq = "
            "t.seq AND v.field = ? AND v.value = ?) OR EXISTS (SELECT 1 FROM events_values v WHERE "
            "v.seq = t.seq AND v.field = ? AND v.value = ?)))");
  EXPECT_EQ(f->params.size(), 6u);
  auto g = CompileFilter("NOT kind = TRAINING OR status = HELD AND capacity > 10", Events());
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(g->sql, "((NOT t.kind = ?) OR (t.status = ? AND t.capacity > ?))");
  auto h = CompileFilter("-kind = TRAINING kind != OTHER", Events());  // juxtaposition = AND
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->sql, "((NOT t.kind = ?) AND t.kind <> ?)");
}

TEST(Filter, NestedFieldsMapToColumns) {
  auto f = CompileFilter(R"(location.country_code = "KE")", Events());
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->sql, "t.location_country_code = ?");
}

TEST(Filter, InjectionAttemptStaysInsideTheParameter) {
  auto f = CompileFilter(R"(title = "x\" OR 1=1 --")", Events());
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->sql, "t.title = ?");
  EXPECT_EQ(std::get<std::string>(f->params[0]), "x\" OR 1=1 --");
  auto g = CompileFilter(R"(title = "'; DROP TABLE events; --")", Events());
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(g->sql, "t.title = ?");
}

TEST(Filter, UnquotedInjectionIsASyntaxError) {
  auto f = CompileFilter("title = x OR 1=1 --", Events());
  EXPECT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument);
  auto g = CompileFilter("title = \"a\"; DROP TABLE events", Events());
  EXPECT_EQ(g.status().code(), absl::StatusCode::kInvalidArgument);
}

struct BadCase {
  const char* filter;
  const char* message_part;
};

class FilterErrors : public ::testing::TestWithParam<BadCase> {};

TEST_P(FilterErrors, AreInvalidArgumentWithPosition) {
  auto f = CompileFilter(GetParam().filter, Events());
  ASSERT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument) << GetParam().filter;
  EXPECT_NE(f.status().message().find(GetParam().message_part), std::string::npos) << f.status();
  const auto violations = GetFieldViolations(f.status());
  ASSERT_EQ(violations.size(), 1u);
  EXPECT_EQ(violations[0].field, "filter");
}

INSTANTIATE_TEST_SUITE_P(
    Cases, FilterErrors,
    ::testing::Values(BadCase{"colour = \"red\"", "position 1: unknown field 'colour'"},
                      BadCase{"kind = NOPE", "position 8: 'NOPE' is not a value of kind"},
                      BadCase{"kind =", "position 7: expected a value"},
                      BadCase{"(kind = OTHER", "expected ')'"},
                      BadCase{"kind = OTHER)", "position 13: unexpected ')'"},
                      BadCase{"title = \"open", "unterminated string"},
                      BadCase{"start_date > \"2023-02-29\"", "is not a date"},
                      BadCase{"start_date > \"soon\"", "is not a date"},
                      BadCase{"hosts = \"organisations/kenya\"", "is a list"},
                      BadCase{"title : \"x\"", "applies to list fields"},
                      BadCase{"kind < OTHER", "is an enum"},
                      BadCase{"capacity > ten", "is not an integer"},
                      BadCase{"kind ! OTHER", "'!' must be followed by '='"},
                      BadCase{"title = \"x\" AND", "expected a field name"},
                      BadCase{"title ~ \"x\"", "unexpected character '~'"}),
    [](const ::testing::TestParamInfo<BadCase>& info) { return "Case" + std::to_string(info.index); });

TEST(Filter, LimitsLengthTermsAndDepth) {
  EXPECT_FALSE(CompileFilter(std::string(kMaxFilterLength + 1, ' '), Events()).ok());
  std::string many = "kind = OTHER";
  for (int i = 0; i < kMaxFilterTerms; ++i) many += " OR kind = OTHER";
  EXPECT_EQ(CompileFilter(many, Events()).status().code(), absl::StatusCode::kInvalidArgument);
  std::string deep = std::string(kMaxFilterDepth + 2, '(') + "kind = OTHER" + std::string(kMaxFilterDepth + 2, ')');
  EXPECT_EQ(CompileFilter(deep, Events()).status().code(), absl::StatusCode::kInvalidArgument);
}

// Error messages quote the filter: whole characters only (a lone byte of "é" is invalid UTF-8
// and breaks other clients' decoders), and positions count characters.
TEST(Filter, ErrorsQuoteWholeCharactersAtCharacterPositions) {
  auto f = CompileFilter("\xC3\xA9t\xC3\xA9 = \"x\"", Events());
  ASSERT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument);
  const std::string message(f.status().message());
  EXPECT_NE(message.find("at position 1: unexpected character '\xC3\xA9'"), std::string::npos) << message;
  EXPECT_TRUE(utf8::IsValid(message));
  for (const auto& v : GetFieldViolations(f.status())) EXPECT_TRUE(utf8::IsValid(v.description));
  // A character later in the filter: its position counts characters, not bytes.
  auto g = CompileFilter("title = \"\xC3\xA9\" \xE2\x82\xAC", Events());
  ASSERT_EQ(g.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(g.status().message()).find("at position 13: unexpected character '\xE2\x82\xAC'"),
            std::string::npos)
      << g.status();
  // Bytes that are no UTF-8 at all are named, not echoed.
  auto h = CompileFilter("title = \"x\" \xFF", Events());
  EXPECT_TRUE(utf8::IsValid(h.status().message())) << h.status();
}

TEST(Utf8, ValidKeepsTextAndReplacesBadBytes) {
  EXPECT_EQ(utf8::Valid("Ad\xC3\xA9ma \xE2\x82\xAC"), "Ad\xC3\xA9ma \xE2\x82\xAC");
  EXPECT_EQ(utf8::Valid("a\xC3"), "a\xEF\xBF\xBD");
  EXPECT_EQ(utf8::Valid("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // a surrogate
  EXPECT_EQ(utf8::Valid("\xC0\xAF"), "\xEF\xBF\xBD\xEF\xBF\xBD");                // overlong '/'
  EXPECT_FALSE(utf8::IsValid("\xF4\x90\x80\x80"));                                  // beyond U+10FFFF
  EXPECT_TRUE(utf8::IsValid("\xF0\x9F\x98\x80"));
}

TEST(Utf8, StatusesLeaveAsValidUtf8) {
  FieldViolations v;
  v.Add("filter", "unexpected '\xC3'");
  const grpc::Status s = ToGrpcStatus(v.ToStatus());
  EXPECT_TRUE(utf8::IsValid(s.error_message())) << s.error_message();
  for (const auto& fv : GetFieldViolations(FromGrpcStatus(s))) EXPECT_TRUE(utf8::IsValid(fv.description));
}

}  // namespace
}  // namespace kp::resource
