// Clients that give up: tens of thousands of calls through every gateway path (proxied, cached
// hit, cached miss, coalesced, portal) with deadlines of 0.1 to 10 ms, calls cancelled in
// flight, load generators killed with SIGKILL mid-run, and connections reset before, during and
// after their first request. Afterwards every process still serves, the gateway's memory is
// back near where it was, and no log holds an assertion or a sanitizer report. CI also runs
// this binary built with AddressSanitizer and UndefinedBehaviorSanitizer (scripts/dev sanitize).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <thread>

#include <grpcpp/create_channel.h>
#include <grpcpp/generic/generic_stub.h>
#include <gtest/gtest.h>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "khartoum/gateway/v1/portal.grpc.pb.h"
#include "common/status.h"
#include "tests/integration/test_util.h"

namespace kp::testing {
namespace {

namespace gv1 = khartoum::gateway::v1;

constexpr int kCallsPerPath = 10000;

std::unique_ptr<Suite> g_suite;
std::unique_ptr<ServiceProcess> g_uncached;

class ResilienceEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    g_suite = Suite::Start({.with_redis = true, .with_gateway = true});
    ASSERT_NE(g_suite, nullptr);
    g_uncached = g_suite->StartGateway("gateway-uncached", /*cached=*/false);
    ASSERT_NE(g_uncached, nullptr);
  }
  void TearDown() override {
    g_uncached.reset();
    g_suite.reset();
  }
};
[[maybe_unused]] auto* const kEnv = ::testing::AddGlobalTestEnvironment(new ResilienceEnvironment());

}  // namespace

Suite& S() { return *g_suite; }

namespace {

// Resident memory of a process, in MiB.
double RssMiB(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) {
      std::vector<std::string> parts = absl::StrSplit(line, ' ', absl::SkipEmpty());
      return parts.size() >= 2 ? std::stod(parts[1]) / 1024 : 0;
    }
  }
  return 0;
}

struct StormResult {
  int64_t calls = 0;
  std::map<int, int64_t> codes;
};

// `total` calls of `method` (requests from `request(n)`) over `channels`, `concurrency` in
// flight, each with a deadline drawn from 0.1 to 10 ms; one call in eight is also cancelled by
// the client right after it starts.
StormResult Storm(const std::vector<std::shared_ptr<grpc::Channel>>& channels, const std::string& method,
                  const std::function<std::string(int64_t)>& request, int total, int concurrency) {
  // Shared with the completions, which may still be unlocking it as the last one wakes us.
  struct State {
    absl::Mutex mu;
    int in_flight ABSL_GUARDED_BY(mu) = 0;
    StormResult result ABSL_GUARDED_BY(mu);
  };
  struct Call {
    grpc::ClientContext ctx;
    grpc::ByteBuffer req, resp;
  };
  auto state = std::make_shared<State>();
  std::vector<std::unique_ptr<grpc::GenericStub>> stubs;
  for (const auto& ch : channels) stubs.push_back(std::make_unique<grpc::GenericStub>(ch));
  absl::BitGen gen;
  for (int n = 0; n < total; ++n) {
    {
      absl::MutexLock lock(&state->mu);
      auto room = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(state->mu) { return state->in_flight < concurrency; };
      state->mu.Await(absl::Condition(&room));
      ++state->in_flight;
    }
    // Held by the completion and by this loop until it has cancelled (the call may end first).
    auto call = std::make_shared<Call>();
    call->ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Microseconds(absl::Uniform(gen, 100, 10000))));
    const std::string bytes = request(n);
    grpc::Slice slice(bytes);
    call->req = grpc::ByteBuffer(&slice, 1);
    stubs[n % stubs.size()]->UnaryCall(&call->ctx, method, grpc::StubOptions(), &call->req, &call->resp,
                                       [call, state](grpc::Status status) {
                                         absl::MutexLock lock(&state->mu);
                                         ++state->result.codes[status.error_code()];
                                         ++state->result.calls;
                                         --state->in_flight;
                                       });
    if (n % 8 == 0) call->ctx.TryCancel();
  }
  absl::MutexLock lock(&state->mu);
  auto drained = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(state->mu) { return state->in_flight == 0; };
  state->mu.Await(absl::Condition(&drained));
  return state->result;
}

std::vector<std::shared_ptr<grpc::Channel>> Channels(const std::string& address) {
  std::vector<std::shared_ptr<grpc::Channel>> out;
  for (int i = 0; i < 4; ++i) {
    grpc::ChannelArguments args;
    args.SetInt("kp-channel-index", i);  // distinct arguments: distinct connections
    out.push_back(grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args));
  }
  return out;
}

// Connections that end abruptly: reset (SO_LINGER 0) after nothing, after the HTTP/2 preface,
// after garbage, and after a request's headers without its body.
void ResetConnections(int port, int count) {
  const std::string preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  // SETTINGS (empty), then a HEADERS frame whose block is cut short.
  const std::string settings("\x00\x00\x00\x04\x00\x00\x00\x00\x00", 9);
  const std::string headers("\x00\x00\x10\x01\x04\x00\x00\x00\x01\x83\x86\x44\x0b/khar", 18);
  for (int i = 0; i < count; ++i) {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
      std::string out;
      switch (i % 4) {
        case 1: out = preface; break;
        case 2: out = std::string(64, '\xff'); break;
        case 3: out = preface + settings + headers; break;
      }
      if (!out.empty()) (void)!write(fd, out.data(), out.size());
    }
    linger reset{1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
    close(fd);
  }
}

// kp-bench against `address`, killed with SIGKILL after `after`: its connections die with
// calls in flight, as a crashed client's or a reset load balancer's do.
void KillLoadGeneratorMidRun(const std::string& address, const std::string& scenario, const std::string& name,
                             absl::Duration after) {
  const pid_t pid = fork();
  if (pid == 0) {
    const std::string runs = absl::StrCat("--runs=storm=", scenario, "@", address);
    const std::string name_flag = absl::StrCat("--name=", name);
    const std::string bin = BinaryPath("kp-bench");
    freopen("/dev/null", "w", stdout);
    execl(bin.c_str(), bin.c_str(), "run", runs.c_str(), "--baseline=storm", name_flag.c_str(), "--concurrency=128",
          "--duration=30s", "--warmup=0s", "--repeat=1", static_cast<char*>(nullptr));
    _exit(127);
  }
  absl::SleepFor(after);  // the kill lands mid-run: that is what this tests
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
}

int64_t Metric(ServiceProcess& p, const std::string& family, const std::string& label) {
  return static_cast<int64_t>(SumSamples(Scrape(p.metrics_port()), family, label));
}

// No process may log an assertion, a gRPC API misuse or a sanitizer report.
void ExpectCleanLogs() {
  for (ServiceProcess* p : {&S().gateway(), g_uncached.get(), &S().organisations(), &S().events(), &S().participants()}) {
    for (const char* bad : {"assertion failed", "API misuse", "AddressSanitizer", "runtime error:", "LeakSanitizer",
                            "terminate called", "Aborted"}) {
      EXPECT_EQ(CountLines(p->log_path(), bad), 0) << p->log_path() << " contains '" << bad << "'";
    }
  }
}

TEST(Resilience, ClientsGivingUpOnEveryGatewayPathCrashNothingAndLeakNothing) {
  // Data: an event with attendees (portal), events to read (hit, proxy, coalesced).
  const auto host = CreateOrganisation(UniqueId("storm-host"));
  const auto hot = CreateEvent(UniqueId("storm-hot"), {host.name()});
  const auto churn = CreateEvent(UniqueId("storm-churn"), {host.name()});
  for (int i = 0; i < 20; ++i) {
    const auto p = CreateParticipant(UniqueId("storm-person"), host.name());
    pv1::CreateRegistrationRequest req;
    req.mutable_registration()->set_event(hot.name());
    req.mutable_registration()->set_participant(p.name());
    req.mutable_registration()->set_role(pv1::REGISTRATION_ROLE_DELEGATE);
    pv1::CreateRegistrationResponse resp;
    ASSERT_TRUE(S().part().CreateRegistration(Ctx().get(), req, &resp).ok());
  }
  auto get_event = [](const std::string& name) {
    ev1::GetEventRequest req;
    req.set_name(name);
    return req.SerializeAsString();
  };
  auto cached = Channels(S().gateway().address());
  auto uncached = Channels(g_uncached->address());

  struct Path {
    std::string label;
    std::vector<std::shared_ptr<grpc::Channel>> channels;
    std::string method;
    std::function<std::string(int64_t)> request;
  };
  const std::vector<Path> paths = {
      {"proxied", uncached, "/khartoum.events.v1.EventService/GetEvent", [&](int64_t) { return get_event(hot.name()); }},
      {"proxied (uncacheable)", cached, "/khartoum.events.v1.EventService/ListAuditEntries",
       [](int64_t) { return std::string(); }},
      {"cached hit", cached, "/khartoum.events.v1.EventService/GetEvent", [&](int64_t) { return get_event(hot.name()); }},
      {"cached miss", cached, "/khartoum.events.v1.EventService/ListEvents",
       [](int64_t n) {
         ev1::ListEventsRequest req;
         req.set_filter(absl::StrCat("title = \"miss ", n, "\""));
         return req.SerializeAsString();
       }},
      {"coalesced", cached, "/khartoum.events.v1.EventService/GetEvent", [&](int64_t) { return get_event(churn.name()); }},
      {"portal", cached, "/khartoum.gateway.v1.PortalService/GetEventOverview",
       [&](int64_t) {
         gv1::GetEventOverviewRequest req;
         req.set_name(hot.name());
         return req.SerializeAsString();
       }},
  };
  // One round: every path stormed (with writes churning one event, so that its misses
  // coalesce), load generators killed mid-run, connections reset at every stage.
  auto round = [&](int number) {
    const int64_t coalesced_before = Metric(S().gateway(), "kp_cache_requests_total", "outcome=\"coalesced\"");
    std::atomic<bool> stop_churn{false};
    std::thread churner([&] {
      for (int i = 0; !stop_churn; ++i) {
        ev1::UpdateEventRequest req;
        req.mutable_event()->set_name(churn.name());
        req.mutable_event()->set_title(absl::StrCat("Churn ", i));
        req.mutable_update_mask()->add_paths("title");
        ev1::UpdateEventResponse resp;
        (void)S().ev().UpdateEvent(Ctx().get(), req, &resp);
      }
    });
    for (const auto& p : paths) {
      const absl::Time start = absl::Now();
      StormResult r = Storm(p.channels, p.method, p.request, kCallsPerPath, 64);
      std::string codes;
      for (const auto& [code, n] : r.codes) absl::StrAppend(&codes, " ", kp::StatusCodeName(code), "=", n);
      std::cout << "round " << number << ", " << p.label << ": " << r.calls << " calls in " << absl::Now() - start
                << ":" << codes << "\n";
      EXPECT_EQ(r.calls, kCallsPerPath) << p.label;
      EXPECT_GT(r.codes[grpc::StatusCode::DEADLINE_EXCEEDED], 0) << p.label << ": the deadlines must bite";
      EXPECT_GT(r.codes[grpc::StatusCode::CANCELLED], 0) << p.label;
    }
    stop_churn = true;
    churner.join();
    EXPECT_GT(Metric(S().gateway(), "kp_cache_requests_total", "outcome=\"coalesced\"") - coalesced_before, 0)
        << "the coalesced path was not exercised";
    absl::BitGen gen;
    for (int i = 0; i < 4; ++i) {
      const absl::Duration after = absl::Milliseconds(absl::Uniform(gen, 150, 400));
      KillLoadGeneratorMidRun(S().gateway().address(), "get-event", hot.name(), after);
      KillLoadGeneratorMidRun(g_uncached->address(), "get-event", hot.name(), after);
      KillLoadGeneratorMidRun(S().gateway().address(), "overview", hot.name(), after);
    }
    for (ServiceProcess* p : {&S().gateway(), g_uncached.get()}) ResetConnections(p->port(), 200);
    // Everything still serves, and the gateways' calls in flight drain to none.
    for (ServiceProcess* p : {&S().gateway(), g_uncached.get(), &S().organisations(), &S().events(), &S().participants()}) {
      EXPECT_TRUE(WaitForServing(p->address(), absl::Seconds(10)).ok()) << p->log_path();
    }
    for (ServiceProcess* p : {&S().gateway(), g_uncached.get()}) {
      const absl::Time deadline = absl::Now() + absl::Seconds(20);
      while (Metric(*p, "kp_grpc_server_in_flight", "") > 1 && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(50));
      EXPECT_LE(Metric(*p, "kp_grpc_server_in_flight", ""), 1) << "calls left hanging in " << p->log_path();
    }
    ev1::GetEventRequest check;
    check.set_name(hot.name());
    ev1::GetEventResponse got;
    EXPECT_TRUE(ev1::EventService::NewStub(cached[0])->GetEvent(Ctx().get(), check, &got).ok());
  };

  // Every request sent is valid: a call its client gave up on is CANCELLED or DEADLINE_EXCEEDED at
  // the gateways, never counted as bad input. (Behind them, gRPC cannot tell a backend whether a
  // missing request was cancelled or malformed; its deadline and cancellation decide, best effort.)
  auto invalid_arguments = [] {
    double n = 0;
    for (ServiceProcess* p : {&S().gateway(), g_uncached.get()}) {
      n += SumSamples(Scrape(p->metrics_port()), "kp_grpc_server_handled_total", "code=\"INVALID_ARGUMENT\"");
    }
    return n;
  };
  const double invalid_before = invalid_arguments();
  const pid_t gateway_pid = S().gateway().pid(), uncached_pid = g_uncached->pid();
  const double rss_start = RssMiB(gateway_pid), rss_start_uncached = RssMiB(uncached_pid);
  // The first round grows what a busy process keeps (allocator arenas per thread, gRPC's
  // pools, the cache's local copies); the second must not grow it further: what is left per
  // call is a leak. 60,000 calls leaking 500 bytes each would add 28 MiB.
  round(1);
  const double rss_one = RssMiB(gateway_pid), rss_one_uncached = RssMiB(uncached_pid);
  round(2);
  EXPECT_EQ(invalid_arguments() - invalid_before, 0) << "calls given up on were counted as INVALID_ARGUMENT";
  double backends_invalid = 0;
  for (ServiceProcess* p : {&S().organisations(), &S().events(), &S().participants()}) {
    backends_invalid += SumSamples(Scrape(p->metrics_port()), "kp_grpc_server_handled_total", "code=\"INVALID_ARGUMENT\"");
  }
  std::cout << "calls the backends counted INVALID_ARGUMENT (a missing request they could not tell from a "
               "malformed one): " << backends_invalid << "\n";
  const double rss_two = RssMiB(gateway_pid), rss_two_uncached = RssMiB(uncached_pid);
  std::cout << "gateway RSS " << rss_start << " -> " << rss_one << " -> " << rss_two << " MiB; uncached gateway "
            << rss_start_uncached << " -> " << rss_one_uncached << " -> " << rss_two_uncached << " MiB\n";
  if (std::getenv("KP_TEST_SANITIZED") == nullptr) {
    EXPECT_LE(rss_two, rss_one * 1.1 + 16);
    EXPECT_LE(rss_two_uncached, rss_one_uncached * 1.1 + 16);
  } else {
    // Under ASan the quarantine and shadow memory swamp RSS; LeakSanitizer looks for leaks
    // instead, when the gateways exit (SIGTERM: a clean drain, then the leak check).
    for (ServiceProcess* p : {&S().gateway(), g_uncached.get()}) {
      const int status = p->Stop(SIGTERM);
      EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << p->log_path() << ": status " << status;
    }
  }
  ExpectCleanLogs();
}

}  // namespace
}  // namespace kp::testing
