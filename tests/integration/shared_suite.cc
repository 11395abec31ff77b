// The suite shared by the tests of one binary, started once by a gtest Environment: plain,
// with the gateway and Redis (KP_TEST_SUITE_WITH_GATEWAY), or with replicas on PostgreSQL
// (KP_TEST_SUITE_WITH_REPLICAS). Binaries with a suite of their own define S() themselves.
#include "tests/integration/test_util.h"

namespace kp::testing {
namespace {

std::unique_ptr<Suite> g_suite;

class SuiteEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
#if defined(KP_TEST_SUITE_WITH_REPLICAS)
    // Two processes per backend on one database; the gateway uncached, so reads reach them.
    g_suite = Suite::Start({.with_gateway = true, .extra_args = {"--lame_duck=1s"}, .replicas = 2});
#elif defined(KP_TEST_SUITE_WITH_GATEWAY)
    g_suite = Suite::Start({.with_redis = true, .with_gateway = true});
#else
    g_suite = Suite::Start();
#endif
    ASSERT_NE(g_suite, nullptr) << "the services did not start";
  }
  void TearDown() override { g_suite.reset(); }
};

[[maybe_unused]] auto* const kEnvironment =
    ::testing::AddGlobalTestEnvironment(new SuiteEnvironment());

}  // namespace

Suite& S() { return *g_suite; }

}  // namespace kp::testing
