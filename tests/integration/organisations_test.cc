// OrganisationService against the real binary: every standard method, bad input, paging,
// idempotency, optimistic concurrency and soft delete.
#include <algorithm>
#include <thread>

#include <gtest/gtest.h>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "tests/integration/test_util.h"

namespace kp::testing {
namespace {

int CountOrganisations(const std::string& filter = "", bool show_deleted = false) {
  ov1::ListOrganisationsRequest req;
  req.set_filter(filter);
  req.set_show_deleted(show_deleted);
  req.set_page_size(1);
  ov1::ListOrganisationsResponse resp;
  grpc::Status s = S().org().ListOrganisations(Ctx().get(), req, &resp);
  EXPECT_TRUE(s.ok()) << s.error_message();
  return resp.total_size();
}

ov1::Organisation Get(const std::string& name, grpc::Status* status = nullptr) {
  ov1::GetOrganisationRequest req;
  req.set_name(name);
  ov1::GetOrganisationResponse resp;
  grpc::Status s = S().org().GetOrganisation(Ctx().get(), req, &resp);
  if (status) *status = s;
  return resp.organisation();
}

grpc::Status Update(const ov1::Organisation& o, std::vector<std::string> paths,
                    ov1::Organisation* out = nullptr) {
  ov1::UpdateOrganisationRequest req;
  *req.mutable_organisation() = o;
  for (auto& p : paths) req.mutable_update_mask()->add_paths(p);
  ov1::UpdateOrganisationResponse resp;
  grpc::Status s = S().org().UpdateOrganisation(Ctx().get(), req, &resp);
  if (out) *out = resp.organisation();
  return s;
}

TEST(Organisations, Create_ReturnsResourceWithOutputOnlyFieldsSet) {
  const std::string id = UniqueId("org");
  ov1::CreateOrganisationRequest req;
  req.set_organisation_id(id);
  req.mutable_organisation()->set_display_name("International Centre for Migration Policy Development");
  req.mutable_organisation()->set_acronym("ICMPD");
  req.mutable_organisation()->set_kind(ov1::ORGANISATION_KIND_INTERNATIONAL_ORGANISATION);
  req.mutable_organisation()->set_etag("ignored");
  req.mutable_organisation()->set_name("organisations/ignored");
  (*req.mutable_organisation()->mutable_external_ids())["wikidata"] = "Q1664155";
  ov1::CreateOrganisationResponse resp;
  ASSERT_TRUE(S().org().CreateOrganisation(Ctx().get(), req, &resp).ok());
  EXPECT_EQ(resp.organisation().name(), "organisations/" + id);
  EXPECT_FALSE(resp.organisation().etag().empty());
  EXPECT_NE(resp.organisation().etag(), "ignored");
  EXPECT_GT(resp.organisation().create_time().seconds(), 0);
  EXPECT_EQ(resp.organisation().create_time().seconds(), resp.organisation().update_time().seconds());
  EXPECT_FALSE(resp.organisation().has_delete_time());
  const auto got = Get("organisations/" + id);
  EXPECT_EQ(got.SerializeAsString(), resp.organisation().SerializeAsString());
  EXPECT_EQ(got.external_ids().at("wikidata"), "Q1664155");
}

TEST(Organisations, BatchCreate_CreatesEveryOneInOrder) {
  ov1::BatchCreateOrganisationsRequest req;
  std::vector<std::string> ids;
  for (int i = 0; i < 20; ++i) {
    ids.push_back(UniqueId("batch"));
    auto* r = req.add_requests();
    r->set_organisation_id(ids.back());
    r->mutable_organisation()->set_display_name("Batch member " + std::to_string(i));
    r->mutable_organisation()->set_country_code("SD");
  }
  ov1::BatchCreateOrganisationsResponse resp;
  ASSERT_TRUE(S().org().BatchCreateOrganisations(Ctx().get(), req, &resp).ok());
  ASSERT_EQ(resp.organisations_size(), 20);
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(resp.organisations(i).name(), "organisations/" + ids[i]);
    EXPECT_FALSE(resp.organisations(i).etag().empty());
  }
  ov1::BatchGetOrganisationsRequest get;
  for (const auto& id : ids) get.add_names("organisations/" + id);
  ov1::BatchGetOrganisationsResponse got;
  EXPECT_TRUE(S().org().BatchGetOrganisations(Ctx().get(), get, &got).ok());
}

TEST(Organisations, BatchCreate_OneBadRequestCreatesNone) {
  const std::string good = UniqueId("good"), dup = UniqueId("dup");
  ov1::BatchCreateOrganisationsRequest req;
  auto* a = req.add_requests();
  a->set_organisation_id(good);
  a->mutable_organisation()->set_display_name("Fine");
  auto* b = req.add_requests();
  b->set_organisation_id(dup);  // no display name
  auto* c = req.add_requests();
  c->set_organisation_id(dup);
  c->mutable_organisation()->set_display_name("Same id again");
  ov1::BatchCreateOrganisationsResponse resp;
  grpc::Status s = S().org().BatchCreateOrganisations(Ctx().get(), req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  const auto fields = ViolationFields(s);
  EXPECT_NE(std::find(fields.begin(), fields.end(), "requests[1].organisation.display_name"), fields.end()) << s.error_message();
  EXPECT_NE(std::find(fields.begin(), fields.end(), "requests[2].organisation_id"), fields.end()) << s.error_message();
  ov1::GetOrganisationRequest get;
  get.set_name("organisations/" + good);
  ov1::GetOrganisationResponse got;
  EXPECT_EQ(S().org().GetOrganisation(Ctx().get(), get, &got).error_code(), grpc::StatusCode::NOT_FOUND);
  // An existing id fails the whole batch at commit time too, naming the request.
  req.clear_requests();
  req.add_requests()->mutable_organisation()->set_display_name("Would be new");
  auto* existing = req.add_requests();
  existing->set_organisation_id(CreateOrganisation(UniqueId("exists")).name().substr(14));
  existing->mutable_organisation()->set_display_name("Clash");
  s = S().org().BatchCreateOrganisations(Ctx().get(), req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_NE(s.error_message().find("requests[1]"), std::string::npos) << s.error_message();
  ov1::BatchCreateOrganisationsRequest empty;
  EXPECT_EQ(S().org().BatchCreateOrganisations(Ctx().get(), empty, &resp).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST(Organisations, Create_GeneratesAnIdWhenNoneIsGiven) {
  ov1::CreateOrganisationRequest req;
  req.mutable_organisation()->set_display_name("Generated id");
  ov1::CreateOrganisationResponse resp;
  ASSERT_TRUE(S().org().CreateOrganisation(Ctx().get(), req, &resp).ok());
  EXPECT_TRUE(absl::StartsWith(resp.organisation().name(), "organisations/"));
  grpc::Status s;
  Get(resp.organisation().name(), &s);
  EXPECT_TRUE(s.ok());
}

TEST(Organisations, Create_DuplicateIdIsAlreadyExists) {
  const std::string id = UniqueId("dup");
  CreateOrganisation(id);
  ov1::CreateOrganisationRequest req;
  req.set_organisation_id(id);
  req.mutable_organisation()->set_display_name("Second");
  ov1::CreateOrganisationResponse resp;
  grpc::Status s = S().org().CreateOrganisation(Ctx().get(), req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_EQ(Get("organisations/" + id).display_name(), "Organisation " + id);
}

TEST(Organisations, Create_ReportsEveryInvalidFieldAtOnceAndCreatesNothing) {
  const int before = CountOrganisations();
  ov1::CreateOrganisationRequest req;
  req.set_organisation_id("Not_An_Id");
  auto* o = req.mutable_organisation();
  o->set_acronym(std::string(33, 'A'));
  o->set_kind(ov1::ORGANISATION_KIND_GOVERNMENT);
  o->set_country_code("ke");
  o->set_website_uri("ftp://example.org");
  (*o->mutable_external_ids())["Bad Key"] = "x";
  ov1::CreateOrganisationResponse resp;
  grpc::Status s = S().org().CreateOrganisation(Ctx().get(), req, &resp);
  ASSERT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  auto fields = ViolationFields(s);
  for (const char* f : {"organisation_id", "organisation.display_name", "organisation.acronym",
                        "organisation.country_code", "organisation.website_uri"}) {
    EXPECT_NE(std::find(fields.begin(), fields.end(), f), fields.end()) << f << " in " << s.error_message();
  }
  EXPECT_EQ(CountOrganisations(), before);
}

TEST(Organisations, Create_GovernmentRequiresACountry) {
  ov1::CreateOrganisationRequest req;
  req.mutable_organisation()->set_display_name("Somewhere");
  req.mutable_organisation()->set_kind(ov1::ORGANISATION_KIND_GOVERNMENT);
  ov1::CreateOrganisationResponse resp;
  grpc::Status s = S().org().CreateOrganisation(Ctx().get(), req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ViolationFields(s), std::vector<std::string>{"organisation.country_code"});
}

TEST(Organisations, Create_RetriedWithSameRequestIdMakesOneRecord) {
  const std::string marker = UniqueId("idem");
  const std::string request_id = UniqueId("req");
  std::vector<std::string> names(10);
  std::vector<std::thread> threads;
  for (int i = 0; i < 10; ++i) {
    threads.emplace_back([&, i] {
      ov1::CreateOrganisationRequest req;
      req.set_request_id(request_id);  // no id: the server would generate a new one per record
      req.mutable_organisation()->set_display_name(marker);
      ov1::CreateOrganisationResponse resp;
      grpc::Status s = S().org().CreateOrganisation(Ctx().get(), req, &resp);
      EXPECT_TRUE(s.ok()) << s.error_message();
      names[i] = resp.organisation().name();
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& n : names) EXPECT_EQ(n, names[0]);
  EXPECT_EQ(CountOrganisations(absl::StrCat("display_name = \"", marker, "\"")), 1);
}

TEST(Organisations, Get_MissingIsNotFoundAndMalformedIsInvalid) {
  grpc::Status s;
  Get("organisations/does-not-exist", &s);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  Get("events/x", &s);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ViolationFields(s), std::vector<std::string>{"name"});
  Get("", &s);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST(Organisations, BatchGet_ReturnsRequestOrderAndNamesMissingOnes) {
  const auto a = CreateOrganisation(UniqueId("ba"));
  const auto b = CreateOrganisation(UniqueId("bb"));
  ov1::BatchGetOrganisationsRequest req;
  req.add_names(b.name());
  req.add_names(a.name());
  ov1::BatchGetOrganisationsResponse resp;
  ASSERT_TRUE(S().org().BatchGetOrganisations(Ctx().get(), req, &resp).ok());
  ASSERT_EQ(resp.organisations_size(), 2);
  EXPECT_EQ(resp.organisations(0).name(), b.name());
  EXPECT_EQ(resp.organisations(1).name(), a.name());

  req.add_names("organisations/missing-one");
  req.add_names("organisations/missing-two");
  grpc::Status s = S().org().BatchGetOrganisations(Ctx().get(), req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_NE(s.error_message().find("organisations/missing-one"), std::string::npos);
  EXPECT_NE(s.error_message().find("organisations/missing-two"), std::string::npos);

  ov1::BatchGetOrganisationsRequest too_many;
  for (int i = 0; i < 1001; ++i) too_many.add_names(absl::StrCat("organisations/o", i));
  s = S().org().BatchGetOrganisations(Ctx().get(), too_many, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST(Organisations, List_EnumFilterAcceptsShortAndFullNames) {
  const std::string tag = UniqueId("t").substr(0, 30);
  for (auto kind : {ov1::ORGANISATION_KIND_ACADEMIA, ov1::ORGANISATION_KIND_ACADEMIA,
                    ov1::ORGANISATION_KIND_CIVIL_SOCIETY}) {
    ov1::CreateOrganisationRequest req;
    req.mutable_organisation()->set_display_name("x");
    req.mutable_organisation()->set_acronym(tag);
    req.mutable_organisation()->set_kind(kind);
    ov1::CreateOrganisationResponse resp;
    ASSERT_TRUE(S().org().CreateOrganisation(Ctx().get(), req, &resp).ok());
  }
  const std::string scope = absl::StrCat("acronym = \"", tag, "\" AND ");
  EXPECT_EQ(CountOrganisations(scope + "kind = ACADEMIA"), 2);
  EXPECT_EQ(CountOrganisations(scope + "kind = ORGANISATION_KIND_ACADEMIA"), 2);
  EXPECT_EQ(CountOrganisations(scope + "kind != ACADEMIA"), 1);
  EXPECT_EQ(CountOrganisations(scope + "(kind = ACADEMIA OR kind = CIVIL_SOCIETY)"), 3);
  EXPECT_EQ(CountOrganisations(scope + "NOT kind = ACADEMIA"), 1);
}

TEST(Organisations, List_BadFiltersAreInvalidArgumentNamingThePosition) {
  for (const char* filter : {"colour = \"red\"", "kind = ", "kind = NOT_A_KIND", "(kind = GOVERNMENT",
                             "create_time > \"yesterday\"", "display_name : \"x\"", "kind == GOVERNMENT"}) {
    ov1::ListOrganisationsRequest req;
    req.set_filter(filter);
    ov1::ListOrganisationsResponse resp;
    grpc::Status s = S().org().ListOrganisations(Ctx().get(), req, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << filter;
    EXPECT_NE(s.error_message().find("position"), std::string::npos) << s.error_message();
    EXPECT_EQ(ViolationFields(s), std::vector<std::string>{"filter"});
  }
}

TEST(Organisations, List_InjectionAttemptIsJustAStringLiteral) {
  CreateOrganisation(UniqueId("inj"));
  ov1::ListOrganisationsRequest req;
  req.set_filter(R"(display_name = "x\" OR 1=1 --")");
  ov1::ListOrganisationsResponse resp;
  ASSERT_TRUE(S().org().ListOrganisations(Ctx().get(), req, &resp).ok());
  EXPECT_EQ(resp.total_size(), 0);
  EXPECT_EQ(resp.organisations_size(), 0);
  req.set_filter(R"(display_name = "'; DROP TABLE organisations; --")");
  ASSERT_TRUE(S().org().ListOrganisations(Ctx().get(), req, &resp).ok());
  EXPECT_GT(CountOrganisations(), 0);
}

TEST(Organisations, List_Pages2500RowsExactlyOnceInOrder) {
  const std::string tag = UniqueId("page").substr(0, 30);
  std::vector<std::string> created;
  for (int i = 0; i < 2500; ++i) {
    ov1::CreateOrganisationRequest req;
    req.mutable_organisation()->set_display_name(absl::StrFormat("Paged %04d", (i * 7919) % 2500));
    req.mutable_organisation()->set_acronym(tag);
    ov1::CreateOrganisationResponse resp;
    ASSERT_TRUE(S().org().CreateOrganisation(Ctx().get(), req, &resp).ok());
    created.push_back(resp.organisation().name());
  }
  // Default order (creation order), then by display_name descending with an odd page size.
  for (auto [order_by, page_size] : std::vector<std::pair<std::string, int>>{{"", 100}, {"display_name desc", 77}}) {
    std::vector<std::string> seen_names, seen_display;
    std::string token;
    int pages = 0;
    do {
      ov1::ListOrganisationsRequest req;
      req.set_filter(absl::StrCat("acronym = \"", tag, "\""));
      req.set_order_by(order_by);
      req.set_page_size(page_size);
      req.set_page_token(token);
      ov1::ListOrganisationsResponse resp;
      grpc::Status s = S().org().ListOrganisations(Ctx().get(), req, &resp);
      ASSERT_TRUE(s.ok()) << s.error_message();
      EXPECT_EQ(resp.total_size(), 2500);
      EXPECT_LE(resp.organisations_size(), page_size);
      for (const auto& o : resp.organisations()) {
        seen_names.push_back(o.name());
        seen_display.push_back(o.display_name());
      }
      token = resp.next_page_token();
      ++pages;
    } while (!token.empty() && pages < 100);
    ASSERT_EQ(seen_names.size(), 2500u) << order_by;
    EXPECT_EQ(absl::flat_hash_set<std::string>(seen_names.begin(), seen_names.end()).size(), 2500u);
    if (order_by.empty()) {
      EXPECT_EQ(seen_names, created);
    } else {
      EXPECT_TRUE(std::is_sorted(seen_display.rbegin(), seen_display.rend()));
    }
  }
}

TEST(Organisations, List_TamperedOrForeignPageTokenIsInvalidArgument) {
  ov1::ListOrganisationsRequest req;
  req.set_page_size(1);
  ov1::ListOrganisationsResponse resp;
  ASSERT_TRUE(S().org().ListOrganisations(Ctx().get(), req, &resp).ok());
  const std::string token = resp.next_page_token();
  ASSERT_FALSE(token.empty());

  ov1::ListOrganisationsRequest foreign = req;
  foreign.set_page_token(token);
  foreign.set_filter("kind = GOVERNMENT");
  grpc::Status s = S().org().ListOrganisations(Ctx().get(), foreign, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ViolationFields(s), std::vector<std::string>{"page_token"});

  std::string tampered = token;
  tampered[tampered.size() / 2] = tampered[tampered.size() / 2] == 'A' ? 'B' : 'A';
  ov1::ListOrganisationsRequest bad = req;
  bad.set_page_token(tampered);
  EXPECT_EQ(S().org().ListOrganisations(Ctx().get(), bad, &resp).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  bad.set_page_token("not a token!");
  EXPECT_EQ(S().org().ListOrganisations(Ctx().get(), bad, &resp).error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  ov1::ListOrganisationsRequest same = req;
  same.set_page_token(token);
  same.set_page_size(5);  // page size may change between pages
  EXPECT_TRUE(S().org().ListOrganisations(Ctx().get(), same, &resp).ok());
}

TEST(Organisations, List_PageSizeIsClampedAndNegativeRejected) {
  ov1::ListOrganisationsRequest req;
  req.set_page_size(5000);
  ov1::ListOrganisationsResponse resp;
  ASSERT_TRUE(S().org().ListOrganisations(Ctx().get(), req, &resp).ok());
  EXPECT_LE(resp.organisations_size(), 1000);
  req.set_page_size(-1);
  EXPECT_EQ(S().org().ListOrganisations(Ctx().get(), req, &resp).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  req.set_page_size(10);
  req.set_order_by("website_uri");
  EXPECT_EQ(S().org().ListOrganisations(Ctx().get(), req, &resp).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST(Organisations, List_SearchFoldsCaseAndAccents) {
  const std::string id = UniqueId("univ");
  ov1::CreateOrganisationRequest req;
  req.set_organisation_id(id);
  req.mutable_organisation()->set_display_name("Université Côte d'Azur Zyxwvu");
  req.mutable_organisation()->set_kind(ov1::ORGANISATION_KIND_ACADEMIA);
  ov1::CreateOrganisationResponse created;
  ASSERT_TRUE(S().org().CreateOrganisation(Ctx().get(), req, &created).ok());
  ov1::ListOrganisationsRequest list;
  list.set_search("UNIVERSITE cote zyxwvu");
  ov1::ListOrganisationsResponse resp;
  ASSERT_TRUE(S().org().ListOrganisations(Ctx().get(), list, &resp).ok());
  ASSERT_EQ(resp.organisations_size(), 1);
  EXPECT_EQ(resp.organisations(0).name(), "organisations/" + id);
  list.set_search("\"unbalanced AND OR (*");  // FTS syntax in the input is never interpreted
  EXPECT_TRUE(S().org().ListOrganisations(Ctx().get(), list, &resp).ok());
}

TEST(Organisations, Update_WithMaskChangesOnlyMaskedFieldsAndTheEtag) {
  const auto o = CreateOrganisation(UniqueId("upd"));
  ov1::Organisation patch;
  patch.set_name(o.name());
  patch.set_display_name("Renamed");
  patch.set_acronym("IGNORED");  // not in the mask
  ov1::Organisation out;
  ASSERT_TRUE(Update(patch, {"display_name"}, &out).ok());
  EXPECT_EQ(out.display_name(), "Renamed");
  EXPECT_EQ(out.acronym(), o.acronym());
  EXPECT_EQ(out.country_code(), o.country_code());
  EXPECT_NE(out.etag(), o.etag());
  EXPECT_EQ(out.create_time().SerializeAsString(), o.create_time().SerializeAsString());
  EXPECT_GT(out.update_time().seconds() * 1000000000LL + out.update_time().nanos(),
            o.update_time().seconds() * 1000000000LL + o.update_time().nanos());
  EXPECT_EQ(Get(o.name()).display_name(), "Renamed");
}

TEST(Organisations, Update_EmptyMaskReplacesEveryMutableField) {
  const auto o = CreateOrganisation(UniqueId("full"));
  ov1::Organisation replacement;
  replacement.set_name(o.name());
  replacement.set_display_name("Only name");
  ov1::Organisation out;
  ASSERT_TRUE(Update(replacement, {}, &out).ok());
  EXPECT_EQ(out.display_name(), "Only name");
  EXPECT_EQ(out.kind(), ov1::ORGANISATION_KIND_UNSPECIFIED);
  EXPECT_EQ(out.country_code(), "");
}

TEST(Organisations, Update_BadInputChangesNothing) {
  const auto o = CreateOrganisation(UniqueId("bad"));
  ov1::Organisation patch = o;
  patch.set_country_code("XX");
  patch.set_display_name("");
  grpc::Status s = Update(patch, {"country_code", "display_name"});
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ViolationFields(s).size(), 2u);
  EXPECT_EQ(Update(patch, {"no_such_field"}).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  ov1::Organisation missing = o;
  missing.set_name("organisations/never-created");
  EXPECT_EQ(Update(missing, {"display_name"}).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Get(o.name()).SerializeAsString(), o.SerializeAsString());
}

TEST(Organisations, Update_StaleEtagIsAbortedAndChangesNothing) {
  const auto o = CreateOrganisation(UniqueId("stale"));
  ov1::Organisation first = o;
  first.set_display_name("First");
  ov1::Organisation after_first;
  ASSERT_TRUE(Update(first, {"display_name"}, &after_first).ok());
  ov1::Organisation second = o;  // still carries the original etag
  second.set_display_name("Second");
  EXPECT_EQ(Update(second, {"display_name"}).error_code(), grpc::StatusCode::ABORTED);
  EXPECT_EQ(Get(o.name()).etag(), after_first.etag());
  EXPECT_EQ(Get(o.name()).display_name(), "First");
}

TEST(Organisations, Update_ConcurrentWritersWithOneEtag_OneWinsOthersAborted) {
  const auto o = CreateOrganisation(UniqueId("race"));
  std::atomic<int> ok{0}, aborted{0}, other{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 20; ++i) {
    threads.emplace_back([&, i] {
      ov1::Organisation patch = o;
      patch.set_display_name(absl::StrCat("Writer ", i));
      grpc::Status s = Update(patch, {"display_name"});
      if (s.ok()) ++ok;
      else if (s.error_code() == grpc::StatusCode::ABORTED) ++aborted;
      else ++other;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 1);
  EXPECT_EQ(aborted.load(), 19);
  EXPECT_EQ(other.load(), 0);
}

TEST(Organisations, Update_ConcurrentWritersOfDifferentFields_NoLostUpdates) {
  for (int round = 0; round < 5; ++round) {
    const auto o = CreateOrganisation(UniqueId("nolost"));
    const std::string v = absl::StrCat("r", round);
    std::vector<std::thread> threads;
    threads.emplace_back([&] { ov1::Organisation p; p.set_name(o.name()); p.set_display_name("D" + v); EXPECT_TRUE(Update(p, {"display_name"}).ok()); });
    threads.emplace_back([&] { ov1::Organisation p; p.set_name(o.name()); p.set_acronym("A" + v); EXPECT_TRUE(Update(p, {"acronym"}).ok()); });
    threads.emplace_back([&] { ov1::Organisation p; p.set_name(o.name()); p.set_description("X" + v); EXPECT_TRUE(Update(p, {"description"}).ok()); });
    threads.emplace_back([&] { ov1::Organisation p; p.set_name(o.name()); p.set_website_uri("https://example.org/" + v); EXPECT_TRUE(Update(p, {"website_uri"}).ok()); });
    for (auto& t : threads) t.join();
    // Without an etag each write is retried on conflict against the latest version: all four land.
    const auto got = Get(o.name());
    EXPECT_EQ(got.display_name(), "D" + v);
    EXPECT_EQ(got.acronym(), "A" + v);
    EXPECT_EQ(got.description(), "X" + v);
    EXPECT_EQ(got.website_uri(), "https://example.org/" + v);
  }
}

TEST(Organisations, DeleteAndUndelete) {
  const auto o = CreateOrganisation(UniqueId("del"));
  ov1::DeleteOrganisationRequest del;
  del.set_name(o.name());
  del.set_etag("wrong");
  ov1::DeleteOrganisationResponse del_resp;
  EXPECT_EQ(S().org().DeleteOrganisation(Ctx().get(), del, &del_resp).error_code(), grpc::StatusCode::ABORTED);
  del.set_etag(o.etag());
  ASSERT_TRUE(S().org().DeleteOrganisation(Ctx().get(), del, &del_resp).ok());
  EXPECT_TRUE(del_resp.organisation().has_delete_time());

  grpc::Status s;
  Get(o.name(), &s);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  const std::string by_name = absl::StrCat("display_name = \"", o.display_name(), "\"");
  EXPECT_EQ(CountOrganisations(by_name), 0);
  EXPECT_EQ(CountOrganisations(by_name, /*show_deleted=*/true), 1);
  ov1::GetOrganisationRequest get;
  get.set_name(o.name());
  get.set_show_deleted(true);
  ov1::GetOrganisationResponse get_resp;
  EXPECT_TRUE(S().org().GetOrganisation(Ctx().get(), get, &get_resp).ok());
  del.clear_etag();
  EXPECT_EQ(S().org().DeleteOrganisation(Ctx().get(), del, &del_resp).error_code(), grpc::StatusCode::NOT_FOUND);

  ov1::UndeleteOrganisationRequest undel;
  undel.set_name(o.name());
  ov1::UndeleteOrganisationResponse undel_resp;
  ASSERT_TRUE(S().org().UndeleteOrganisation(Ctx().get(), undel, &undel_resp).ok());
  EXPECT_FALSE(undel_resp.organisation().has_delete_time());
  EXPECT_EQ(CountOrganisations(by_name), 1);
  EXPECT_EQ(S().org().UndeleteOrganisation(Ctx().get(), undel, &undel_resp).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  undel.set_name("organisations/never-was");
  EXPECT_EQ(S().org().UndeleteOrganisation(Ctx().get(), undel, &undel_resp).error_code(), grpc::StatusCode::NOT_FOUND);
}

}  // namespace
}  // namespace kp::testing
