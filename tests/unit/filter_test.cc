// The AIP-160 filter compiler: valid filters become parameterised SQL, invalid ones name the
// position, and no literal text ever reaches the SQL.
#include "common/resource/filter.h"

#include <gtest/gtest.h>

#include "common/status.h"
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

}  // namespace
}  // namespace kp::resource
