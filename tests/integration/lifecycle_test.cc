// Tests that own their processes: durability across kill -9, graceful drain on SIGTERM,
// and the seed loader (each test starts its own suite).
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <atomic>
#include <thread>

#include <grpcpp/create_channel.h>
#include <gtest/gtest.h>

#include "absl/cleanup/cleanup.h"
#include "common/auth/keys.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "tests/integration/harness.h"

namespace kp::testing {
namespace {

namespace ov1 = khartoum::organisations::v1;
namespace ev1 = khartoum::events::v1;
namespace pv1 = khartoum::participants::v1;

TEST(Lifecycle, KillNineRightAfterAcknowledgedWrites_EveryWriteSurvives) {
  auto suite = Suite::Start();
  ASSERT_NE(suite, nullptr);
  std::vector<ov1::Organisation> acknowledged;
  for (int i = 0; i < 200; ++i) {
    ov1::CreateOrganisationRequest req;
    req.set_organisation_id(absl::StrFormat("durable-%03d", i));
    req.mutable_organisation()->set_display_name(absl::StrCat("Durable ", i));
    ov1::CreateOrganisationResponse resp;
    ASSERT_TRUE(suite->org().CreateOrganisation(Ctx().get(), req, &resp).ok());
    acknowledged.push_back(resp.organisation());
  }
  for (int i = 0; i < 200; i += 2) {  // and updates, the last one right before the kill
    ov1::UpdateOrganisationRequest req;
    req.mutable_organisation()->set_name(acknowledged[i].name());
    req.mutable_organisation()->set_acronym(absl::StrCat("U", i));
    req.mutable_update_mask()->add_paths("acronym");
    ov1::UpdateOrganisationResponse resp;
    ASSERT_TRUE(suite->org().UpdateOrganisation(Ctx().get(), req, &resp).ok());
    acknowledged[i] = resp.organisation();
  }
  const int wait_status = suite->organisations().Stop(SIGKILL);
  ASSERT_TRUE(WIFSIGNALED(wait_status));
  ASSERT_TRUE(suite->organisations().Start().ok());
  suite->MakeStubs();
  ov1::BatchGetOrganisationsRequest req;
  for (const auto& o : acknowledged) req.add_names(o.name());
  ov1::BatchGetOrganisationsResponse resp;
  grpc::Status s = suite->org().BatchGetOrganisations(Ctx().get(), req, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(resp.organisations_size(), 200);
  for (int i = 0; i < 200; ++i) {
    EXPECT_EQ(resp.organisations(i).SerializeAsString(), acknowledged[i].SerializeAsString()) << i;
  }
}

TEST(Lifecycle, SigtermDrainsAndExitsCleanly) {
  auto suite = Suite::Start();
  ASSERT_NE(suite, nullptr);
  const absl::Time start = absl::Now();
  const int status = suite->events().Stop(SIGTERM);
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));  // --drain_timeout=2s plus start-up slack
}

TEST(Lifecycle, SigtermWithLameDuck_HealthGoesNotServingWhileCallsStillSucceed) {
  TempDir dir;
  ServiceProcess server("lame", BinaryPath("kp-organisations"), dir.path(),
                        {absl::StrCat("--database=", dir.path(), "/o.db"), "--plaintext", "--auth=disabled",
                         "--lame_duck=3s", "--drain_timeout=2s"});
  ASSERT_TRUE(server.Start().ok());
  auto channel = grpc::CreateChannel(server.address(), grpc::InsecureChannelCredentials());
  auto health = grpc::health::v1::Health::NewStub(channel);
  auto orgs = ov1::OrganisationService::NewStub(channel);
  const absl::Time start = absl::Now();
  server.Signal(SIGTERM);
  bool not_serving = false;
  while (!not_serving && absl::Now() < start + absl::Seconds(2)) {  // polled, bounded
    grpc::health::v1::HealthCheckRequest req;
    grpc::health::v1::HealthCheckResponse resp;
    not_serving = health->Check(Ctx().get(), req, &resp).ok() &&
                  resp.status() == grpc::health::v1::HealthCheckResponse::NOT_SERVING;
  }
  EXPECT_TRUE(not_serving);
  ov1::ListOrganisationsRequest req;
  ov1::ListOrganisationsResponse resp;
  EXPECT_TRUE(orgs->ListOrganisations(Ctx().get(), req, &resp).ok()) << "calls are still served";
  const int status = server.Stop(SIGTERM);  // a second signal ends the lame duck at once
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));
}

TEST(Lifecycle, SigtermDuringLoad_InFlightCallsFinishAndAcknowledgedWritesPersist) {
  auto suite = Suite::Start();
  ASSERT_NE(suite, nullptr);
  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, retryable{0}, other{0};
  absl::Mutex mu;
  std::vector<std::string> acknowledged;
  // gRPC core (1.51, and upstream grpc/grpc#41785) ends calls that were still waiting to be
  // matched to a handler at shutdown with CANCELLED. Such calls never ran: checked below.
  std::vector<std::string> cancelled;
  std::vector<std::thread> clients;
  for (int c = 0; c < 8; ++c) {
    clients.emplace_back([&, c] {
      for (int i = 0; !stop; ++i) {
        ov1::CreateOrganisationRequest req;
        req.set_organisation_id(absl::StrFormat("load-%d-%d", c, i));
        req.mutable_organisation()->set_display_name("Under load");
        ov1::CreateOrganisationResponse resp;
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
        grpc::Status s = suite->org().CreateOrganisation(&ctx, req, &resp);
        if (s.ok()) {
          ++ok;
          absl::MutexLock lock(&mu);
          acknowledged.push_back(resp.organisation().name());
        } else if (s.error_code() == grpc::StatusCode::UNAVAILABLE) {
          ++retryable;
          if (!suite->organisations().running()) return;
        } else if (s.error_code() == grpc::StatusCode::CANCELLED) {
          absl::MutexLock lock(&mu);
          cancelled.push_back("organisations/" + req.organisation_id());
        } else {
          ++other;
          ADD_FAILURE() << s.error_code() << ": " << s.error_message();
        }
      }
    });
  }
  // Let load build up (bounded by a deadline), then stop the server under it.
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (ok < 100 && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(1));
  const int status = suite->organisations().Stop(SIGTERM);
  stop = true;
  for (auto& t : clients) t.join();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_GE(ok.load(), 100);
  EXPECT_EQ(other.load(), 0);

  ASSERT_TRUE(suite->organisations().Start().ok());
  suite->MakeStubs();
  ov1::BatchGetOrganisationsRequest req;
  for (const auto& n : acknowledged) req.add_names(n);
  while (req.names_size() > 1000) req.mutable_names()->RemoveLast();
  ov1::BatchGetOrganisationsResponse resp;
  grpc::Status s = suite->org().BatchGetOrganisations(Ctx().get(), req, &resp);
  EXPECT_TRUE(s.ok()) << s.error_message();
  for (const auto& name : cancelled) {
    ov1::GetOrganisationRequest get;
    get.set_name(name);
    ov1::GetOrganisationResponse got;
    EXPECT_EQ(suite->org().GetOrganisation(Ctx().get(), get, &got).error_code(), grpc::StatusCode::NOT_FOUND)
        << name << " was reported CANCELLED but was written";
  }
}

TEST(Lifecycle, InvalidConfigurationFailsAtStartWithAClearError) {
  TempDir dir;
  ServiceProcess bad("bad", BinaryPath("kp-events"), dir.path(),
                     {"--workers=0", "--call_timeout=-1s", "--database=mysql://nowhere/db"});
  EXPECT_FALSE(bad.Start(absl::Seconds(10)).ok());
  FILE* f = std::fopen(bad.log_path().c_str(), "r");
  ASSERT_NE(f, nullptr);
  std::string log(4096, '\0');
  log.resize(std::fread(log.data(), 1, log.size(), f));
  std::fclose(f);
  EXPECT_NE(log.find("--workers"), std::string::npos) << log;
  EXPECT_NE(log.find("--call_timeout"), std::string::npos) << log;
  EXPECT_NE(log.find("--database"), std::string::npos) << log;
}

TEST(Lifecycle, InvalidEdgeBoundsFailTheGatewayAtStartNamingEachFlag) {
  TempDir dir;
  ServiceProcess bad("bad-gateway", BinaryPath("kp-gateway"), dir.path(),
                     {"--send_timeout=1ms", "--max_in_flight=100", "--principal_max_in_flight=101",
                      "--max_health_watches=0", "--auth=disabled", "--plaintext"});
  EXPECT_FALSE(bad.Start(absl::Seconds(10)).ok());
  FILE* f = std::fopen(bad.log_path().c_str(), "r");
  ASSERT_NE(f, nullptr);
  std::string log(8192, '\0');
  log.resize(std::fread(log.data(), 1, log.size(), f));
  std::fclose(f);
  for (const char* flag : {"--send_timeout", "--principal_max_in_flight", "--max_health_watches"}) {
    EXPECT_NE(log.find(flag), std::string::npos) << flag << " not named in: " << log;
  }
}

std::string ReadFile(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "r");
  if (f == nullptr) return "";
  std::string text(8192, '\0');
  text.resize(std::fread(text.data(), 1, text.size(), f));
  std::fclose(f);
  return text;
}

TEST(Lifecycle, TlsEndToEndAndPlaintextRefused) {
  auto suite = Suite::Start({.with_gateway = true, .tls = true});
  ASSERT_NE(suite, nullptr) << "the suite did not start with TLS";
  // Through the gateway over TLS; the gateway and events reach their peers over TLS too.
  auto channel = grpc::CreateChannel(suite->gateway().address(), suite->client_credentials());
  auto orgs = ov1::OrganisationService::NewStub(channel);
  auto events = ev1::EventService::NewStub(channel);
  ov1::CreateOrganisationRequest org;
  org.set_organisation_id("tls-host");
  org.mutable_organisation()->set_display_name("Over TLS");
  ov1::CreateOrganisationResponse created;
  grpc::Status s = orgs->CreateOrganisation(Ctx().get(), org, &created);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ev1::CreateEventRequest event;
  auto* e = event.mutable_event();
  e->set_title("Encrypted workshop");
  e->set_kind(ev1::EVENT_KIND_TRAINING);
  e->mutable_start_date()->set_year(2025);
  e->mutable_start_date()->set_month(5);
  e->mutable_start_date()->set_day(5);
  *e->mutable_end_date() = e->start_date();
  e->add_hosts("organisations/tls-host");  // events -> organisations check, over TLS
  ev1::CreateEventResponse event_resp;
  s = events->CreateEvent(Ctx().get(), event, &event_resp);
  EXPECT_TRUE(s.ok()) << s.error_message();

  // Plaintext clients get nowhere, on any listener.
  for (ServiceProcess* p : {&suite->gateway(), &suite->organisations(), &suite->events()}) {
    auto plain = ov1::OrganisationService::NewStub(grpc::CreateChannel(p->address(), grpc::InsecureChannelCredentials()));
    ov1::GetOrganisationRequest get;
    get.set_name("organisations/tls-host");
    ov1::GetOrganisationResponse got;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
    EXPECT_EQ(plain->GetOrganisation(&ctx, get, &got).error_code(), grpc::StatusCode::UNAVAILABLE) << p->address();
  }
}

TEST(Lifecycle, MutualTlsRequiresAClientCertificate) {
  TempDir dir;
  ASSERT_TRUE(MakeTestCertificates(dir.path() + "/certs").ok());
  const std::string c = dir.path() + "/certs";
  const int probe_port = FreePort();
  ServiceProcess server("mtls", BinaryPath("kp-organisations"), dir.path(),
                        {absl::StrCat("--database=", dir.path(), "/o.db"), "--auth=disabled",
                         absl::StrCat("--probe_port=", probe_port),
                         absl::StrCat("--tls_cert=", c, "/server.pem"), absl::StrCat("--tls_key=", c, "/server.key"),
                         absl::StrCat("--tls_client_ca=", c, "/ca.pem"), "--page_token_key=mtls-test-key-5be1"},
                        TestTlsCredentials(c, /*mtls=*/true));
  ASSERT_TRUE(server.Start().ok());
  for (bool with_cert : {true, false}) {
    auto stub = ov1::OrganisationService::NewStub(
        grpc::CreateChannel(server.address(), TestTlsCredentials(c, with_cert)));
    ov1::ListOrganisationsRequest req;
    ov1::ListOrganisationsResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(3));
    const grpc::Status s = stub->ListOrganisations(&ctx, req, &resp);
    if (with_cert) EXPECT_TRUE(s.ok()) << s.error_message();
    else EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE);
  }
  // Kubernetes' gRPC probes cannot speak TLS: the probe port answers health in plaintext...
  const std::string probe = absl::StrCat("127.0.0.1:", probe_port);
  EXPECT_TRUE(WaitForServing(probe, absl::Seconds(5)).ok());
  // ...and serves nothing else.
  auto stub = ov1::OrganisationService::NewStub(grpc::CreateChannel(probe, grpc::InsecureChannelCredentials()));
  ov1::ListOrganisationsRequest req;
  ov1::ListOrganisationsResponse resp;
  EXPECT_EQ(stub->ListOrganisations(Ctx().get(), req, &resp).error_code(), grpc::StatusCode::UNIMPLEMENTED);
}

// One bad edit of the keys file must not crash-loop the next restart: the valid lines load, the
// bad one is logged by number and counted, and kp-token check finds it before it ships.
TEST(Lifecycle, MalformedKeysLinesAreSkippedAndReported) {
  TempDir dir;
  const std::string keys = dir.path() + "/keys.txt";
  const std::string editor = "kp_lifecycle_editor_token", reader = "kp_lifecycle_reader_token";
  auto write = [&](bool with_bad_line) {
    std::ofstream out(keys + ".tmp");
    out << "# keys\n" << auth::Sha256Hex(editor) << " l-editor editor\n";
    if (with_bad_line) out << "this line is not a key\n";
    out << auth::Sha256Hex(reader) << " l-reader reader\n";
    out.close();
    std::rename((keys + ".tmp").c_str(), keys.c_str());
  };
  auto check = [&](std::string* output) {
    FILE* p = popen(absl::StrCat(BinaryPath("kp-token"), " check ", keys, " 2>&1").c_str(), "r");
    std::array<char, 512> buf;
    while (p && std::fgets(buf.data(), buf.size(), p)) *output += buf.data();
    return p ? WEXITSTATUS(pclose(p)) : -1;
  };
  write(/*with_bad_line=*/true);
  std::string checked;
  EXPECT_EQ(check(&checked), 1);
  EXPECT_NE(checked.find("line 3:"), std::string::npos) << checked;

  ServiceProcess server("keys", BinaryPath("kp-organisations"), dir.path(),
                        {absl::StrCat("--database=", dir.path(), "/o.db"), "--plaintext",
                         absl::StrCat("--keys_file=", keys), "--keys_reload_interval=100ms"});
  ASSERT_TRUE(server.Start().ok()) << "a malformed line must not stop the process";
  auto stub = ov1::OrganisationService::NewStub(grpc::CreateChannel(server.address(), grpc::InsecureChannelCredentials()));
  for (const std::string& token : {editor, reader}) {
    auto ctx = Ctx();
    ctx->AddMetadata("authorization", absl::StrCat("Bearer ", token));
    ov1::ListOrganisationsRequest req;
    ov1::ListOrganisationsResponse resp;
    EXPECT_TRUE(stub->ListOrganisations(ctx.get(), req, &resp).ok());
  }
  EXPECT_NE(ReadFile(server.log_path()).find("line 3:"), std::string::npos);
  const std::string metrics = Scrape(server.metrics_port());
  EXPECT_EQ(Sample(metrics, "kp_auth_keys_malformed_lines"), 1);
  EXPECT_EQ(Sample(metrics, "kp_auth_keys"), 2);

  // Fixed: reloaded without the error, and the check passes.
  write(/*with_bad_line=*/false);
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (Sample(Scrape(server.metrics_port()), "kp_auth_keys_malformed_lines") != 0 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_EQ(Sample(Scrape(server.metrics_port()), "kp_auth_keys_malformed_lines"), 0);
  checked.clear();
  EXPECT_EQ(check(&checked), 0) << checked;
}

// What a mounting mistake or a half-done edit puts at the keys path (a directory, a FIFO, an
// empty file) must neither revoke every key nor hang the reloads.
TEST(Lifecycle, KeysPathTurningIntoSomethingElseKeepsTheKeysAndReloadsGoOn) {
  TempDir dir;
  const std::string keys = dir.path() + "/keys.txt";
  const std::string editor = "kp_keys_path_editor", reader = "kp_keys_path_reader";
  auto write = [&](const std::string& text) {
    std::ofstream out(keys + ".tmp");
    out << text;
    out.close();
    std::rename((keys + ".tmp").c_str(), keys.c_str());
  };
  write(absl::StrCat(auth::Sha256Hex(editor), " p-editor editor\n", auth::Sha256Hex(reader), " p-reader reader\n"));
  ServiceProcess server("keys-path", BinaryPath("kp-organisations"), dir.path(),
                        {absl::StrCat("--database=", dir.path(), "/o.db"), "--plaintext",
                         absl::StrCat("--keys_file=", keys), "--keys_reload_interval=100ms"});
  ASSERT_TRUE(server.Start().ok());
  auto stub = ov1::OrganisationService::NewStub(grpc::CreateChannel(server.address(), grpc::InsecureChannelCredentials()));
  auto call = [&](const std::string& token) {
    auto ctx = Ctx();
    ctx->AddMetadata("authorization", absl::StrCat("Bearer ", token));
    ov1::ListOrganisationsRequest req;
    ov1::ListOrganisationsResponse resp;
    return stub->ListOrganisations(ctx.get(), req, &resp).error_code();
  };
  auto count = [&](const std::string& needle) {
    const std::string log = ReadFile(server.log_path());
    int n = 0;
    for (size_t at = log.find(needle); at != std::string::npos; at = log.find(needle, at + 1)) ++n;
    return n;
  };
  auto wait_for_log = [&](const std::string& needle, int at_least) {
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (count(needle) < at_least && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(20));
    return count(needle) >= at_least;
  };
  std::filesystem::remove(keys);
  std::filesystem::create_directory(keys);  // a subPath mistake
  ASSERT_TRUE(wait_for_log("keys file not reloaded", 1));
  EXPECT_EQ(call(editor), grpc::StatusCode::OK);
  std::filesystem::remove(keys);
  ASSERT_EQ(mkfifo(keys.c_str(), 0600), 0);  // opening it would block a plain reader forever
  ASSERT_TRUE(wait_for_log("keys file not reloaded", 2));
  EXPECT_EQ(call(editor), grpc::StatusCode::OK);
  std::filesystem::remove(keys);
  write("");  // an edit caught half way
  ASSERT_TRUE(wait_for_log("keys file is empty", 1));
  EXPECT_EQ(call(reader), grpc::StatusCode::OK);
  write("<<<<<<< HEAD\nnot a key either\n");  // every line malformed: an edit gone wrong
  ASSERT_TRUE(wait_for_log("keys file holds no valid key; keeping the previous keys", 1));
  EXPECT_EQ(call(reader), grpc::StatusCode::OK);
  // And the watcher still works: revoking the editor takes effect.
  write(absl::StrCat(auth::Sha256Hex(reader), " p-reader reader\n"));
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (call(editor) != grpc::StatusCode::UNAUTHENTICATED && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(20));
  EXPECT_EQ(call(editor), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(call(reader), grpc::StatusCode::OK);
}

// Runs `argv` with its output in `log` until it exits; its wait status, or -1 if it still runs
// after `timeout` (then it is killed).
int RunUntilExit(const std::vector<std::string>& argv, const std::string& log, absl::Duration timeout) {
  const pid_t pid = fork();
  if (pid == 0) {
    FILE* f = std::fopen(log.c_str(), "w");
    if (f) {
      dup2(fileno(f), STDERR_FILENO);
      dup2(fileno(f), STDOUT_FILENO);
    }
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  const absl::Time deadline = absl::Now() + timeout;
  int status = 0;
  while (waitpid(pid, &status, WNOHANG) != pid) {
    if (absl::Now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return -1;
    }
    absl::SleepFor(absl::Milliseconds(5));  // polling for the exit, bounded by the deadline
  }
  return status;
}

// A keys file with no valid key would make a server that refuses every caller while it reports
// SERVING: it does not start (status 2, as for any bad configuration), naming the file and why.
// Running processes keep their keys through the same edits (see the test above).
TEST(Lifecycle, KeysFileWithoutAValidKeyStopsTheStartNamingTheFile) {
  TempDir dir;
  const std::string keys = dir.path() + "/keys.txt";
  const std::pair<std::string, std::string> cases[] = {
      {"holds no valid key (it is empty)", ""},
      {"holds no valid key (only comments and blank lines)", "# every key revoked\n\n"},
      {"holds no valid key (2 malformed lines", "not a key\n0123 reader\n"},
      {"holds no valid key (2 malformed lines", absl::StrCat(auth::Sha256Hex("kp_too_slow"), " slow reader rate=1e-12\n",
                                                             auth::Sha256Hex("kp_nobody"), " nobody superuser\n")},
      {"is not a regular file", "a directory"},
  };
  for (const auto& [why, text] : cases) {
    std::filesystem::remove(keys);
    if (text == "a directory") {
      std::filesystem::create_directory(keys);  // a subPath mistake
    } else {
      std::ofstream out(keys);
      out << text;
    }
    const std::string log = dir.path() + "/server.log";
    const int status = RunUntilExit({BinaryPath("kp-organisations"), "--port=0", "--host=127.0.0.1", "--metrics_port=0",
                                     absl::StrCat("--database=", dir.path(), "/o.db"), "--plaintext",
                                     absl::StrCat("--keys_file=", keys)},
                                    log, absl::Seconds(10));
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 2) << why << ": wait status " << status;
    EXPECT_NE(ReadFile(log).find(absl::StrCat("keys file ", keys, " ", why)), std::string::npos) << ReadFile(log);
  }
}

// Redis with a password (AUTH, from a Secret in the manifests): the cache works with the right
// one; with a wrong one Redis is unusable, said in the log, and calls still succeed uncached.
TEST(Lifecycle, RedisWithAPasswordCachesAndAWrongPasswordOnlyBypasses) {
  auto suite = Suite::Start({.with_redis = true, .redis_password = "redis-test-secret", .with_gateway = true});
  ASSERT_NE(suite, nullptr);
  auto wrong = suite->StartGateway("gateway-wrong-password", /*cached=*/true, {"--redis_password=not-it"});
  ASSERT_NE(wrong, nullptr);
  ov1::CreateOrganisationRequest req;
  req.set_organisation_id("redis-auth");
  req.mutable_organisation()->set_display_name("Redis auth");
  ov1::CreateOrganisationResponse created;
  ASSERT_TRUE(suite->org().CreateOrganisation(Ctx().get(), req, &created).ok());
  auto read = [&](ServiceProcess& gateway) {
    auto stub = ov1::OrganisationService::NewStub(grpc::CreateChannel(gateway.address(), grpc::InsecureChannelCredentials()));
    grpc::ClientContext ctx;
    ov1::GetOrganisationRequest get;
    get.set_name("organisations/redis-auth");
    ov1::GetOrganisationResponse got;
    EXPECT_TRUE(stub->GetOrganisation(&ctx, get, &got).ok());
    auto it = ctx.GetServerInitialMetadata().find("x-kp-cache");
    return it == ctx.GetServerInitialMetadata().end() ? std::string() : std::string(it->second.data(), it->second.size());
  };
  read(suite->gateway());
  EXPECT_EQ(read(suite->gateway()), "hit");
  EXPECT_EQ(read(*wrong), "bypass");
  EXPECT_EQ(read(*wrong), "bypass");
  EXPECT_NE(ReadFile(wrong->log_path()).find("redis refused the password"), std::string::npos);
}

// The built-in page-token key is in the source: with TLS on, a server must have its own.
TEST(Lifecycle, TlsServerRefusesTheBuiltInPageTokenKey) {
  TempDir dir;
  ASSERT_TRUE(MakeTestCertificates(dir.path() + "/certs").ok());
  const std::string c = dir.path() + "/certs";
  for (const char* binary : {"kp-organisations", "kp-gateway"}) {
    std::vector<std::string> args{"--auth=disabled", absl::StrCat("--tls_cert=", c, "/server.pem"),
                                  absl::StrCat("--tls_key=", c, "/server.key"), absl::StrCat("--tls_ca=", c, "/ca.pem")};
    if (std::string(binary) != "kp-gateway") args.push_back(absl::StrCat("--database=", dir.path(), "/o.db"));
    ServiceProcess server(binary, BinaryPath(binary), dir.path(), args, TestTlsCredentials(c, /*mtls=*/false));
    EXPECT_FALSE(server.Start(absl::Seconds(10)).ok()) << binary;
    EXPECT_NE(ReadFile(server.log_path()).find("--page_token_key"), std::string::npos) << binary;
  }
}

TEST(Lifecycle, TlsIsTheDefault) {
  TempDir dir;
  ServiceProcess server("tls-default", BinaryPath("kp-organisations"), dir.path(),
                        {absl::StrCat("--database=", dir.path(), "/o.db"), "--auth=disabled"});
  EXPECT_FALSE(server.Start(absl::Seconds(10)).ok());
  EXPECT_NE(ReadFile(server.log_path()).find("--tls_cert"), std::string::npos);
}


TEST(Lifecycle, EnvironmentFallsBackForFlagsAndTheCommandLineWins) {
  TempDir dir;
  // The child inherits the environment at fork.
  setenv("KP_DRAIN_TIMEOUT", "not-a-duration", 1);
  ServiceProcess bad_env("env", BinaryPath("kp-organisations"), dir.path(),
                         {absl::StrCat("--database=", dir.path(), "/o.db")});
  EXPECT_FALSE(bad_env.Start(absl::Seconds(10)).ok());
  unsetenv("KP_DRAIN_TIMEOUT");
  EXPECT_NE(ReadFile(bad_env.log_path()).find("KP_DRAIN_TIMEOUT"), std::string::npos);

  setenv("KP_WORKERS", "0", 1);  // invalid on its own ...
  ServiceProcess flag_wins("flag", BinaryPath("kp-organisations"), dir.path(),
                           {absl::StrCat("--database=", dir.path(), "/o.db"), "--workers=2", "--plaintext",
                            "--auth=disabled"});
  const absl::Status started = flag_wins.Start();  // ... but the flag overrides it
  unsetenv("KP_WORKERS");
  EXPECT_TRUE(started.ok()) << started;
  EXPECT_NE(ReadFile(flag_wins.log_path()).find("\"workers\":2"), std::string::npos);
}

std::string RunSeed(Suite& suite) {
  const std::string cmd = absl::StrCat(
      BinaryPath("kp-seed"), " --data_dir=", KP_SOURCE_DIR, "/data/seed",
      " --organisations_address=", suite.organisations().address(),
      " --events_address=", suite.events().address(), " --plaintext 2>&1");
  FILE* pipe = popen(cmd.c_str(), "r");
  std::string out;
  std::array<char, 512> buf;
  while (pipe && fgets(buf.data(), buf.size(), pipe)) out += buf.data();
  const int rc = pipe ? pclose(pipe) : -1;
  EXPECT_EQ(rc, 0) << out;
  return out;
}

TEST(Lifecycle, SeedLoadsThroughTheApiAndIsIdempotent) {
  auto suite = Suite::Start();
  ASSERT_NE(suite, nullptr);
  EXPECT_NE(RunSeed(*suite).find("organisations: 54 created, 0 already present, 0 failed"), std::string::npos);
  const std::string second = RunSeed(*suite);
  EXPECT_NE(second.find("organisations: 0 created, 54 already present"), std::string::npos) << second;
  EXPECT_NE(second.find("events: 0 created, 3 already present"), std::string::npos) << second;

  ov1::ListOrganisationsRequest orgs;
  ov1::ListOrganisationsResponse orgs_resp;
  ASSERT_TRUE(suite->org().ListOrganisations(Ctx().get(), orgs, &orgs_resp).ok());
  EXPECT_EQ(orgs_resp.total_size(), 54);

  ev1::ListEventsRequest req;
  req.set_filter(R"(hosts:"organisations/kenya" OR co_hosts:"organisations/kenya")");
  ev1::ListEventsResponse resp;
  ASSERT_TRUE(suite->ev().ListEvents(Ctx().get(), req, &resp).ok());
  ASSERT_EQ(resp.events_size(), 1);
  EXPECT_EQ(resp.events(0).name(), "events/2024-nairobi-law-enforcement-partnerships");
  EXPECT_EQ(resp.events(0).location().city(), "Nairobi");
  EXPECT_EQ(resp.total_size(), 1);
}

// The output of `command` (its stdout), and whether it exited 0.
std::pair<std::string, bool> Shell(const std::string& command) {
  std::string out;
  FILE* p = popen(command.c_str(), "r");
  if (p == nullptr) return {"", false};
  std::array<char, 4096> buf;
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  const int status = pclose(p);
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return {out, WIFEXITED(status) && WEXITSTATUS(status) == 0};
}

// A PostgreSQL of its own that goes away and comes back: calls fail UNAVAILABLE (retryable,
// never INTERNAL) meanwhile, and the pool replaces its broken connections afterwards.
TEST(Lifecycle, PostgresRestart_CallsFailUnavailableThenRecover) {
  if (!TestingOnPostgres()) GTEST_SKIP() << "runs in the PostgreSQL half of the suite";
  char tmpl[] = "/tmp/kp-pg-XXXXXX";  // outside TempDir (0700): the server runs as postgres
  const std::string pg_dir = mkdtemp(tmpl);
  const std::string pg = absl::StrCat(KP_SOURCE_DIR, "/scripts/pg");
  const int port = FreePort();
  auto [url, started] = Shell(absl::StrCat(pg, " start ", pg_dir, " ", port));
  absl::Cleanup stop_postgres = [&] {  // also when an assertion ends the test early
    Shell(absl::StrCat(pg, " stop ", pg_dir));
    std::filesystem::remove_all(pg_dir);
  };
  ASSERT_TRUE(started) << url;
  ASSERT_TRUE(Shell(absl::StrCat(pg, " createdb ", url, " kp_restart")).second);
  TempDir dir;
  ServiceProcess server("pg-restart", BinaryPath("kp-organisations"), dir.path(),
                        {absl::StrCat("--database=", url, "/kp_restart"), std::string("--plaintext"),
                         std::string("--auth=disabled"), std::string("--db_acquire_timeout=1s"),
                         std::string("--db_connect_timeout=1s"), std::string("--workers=2")});
  ASSERT_TRUE(server.Start().ok());
  auto org = ov1::OrganisationService::NewStub(grpc::CreateChannel(server.address(), grpc::InsecureChannelCredentials()));
  auto create = [&](const std::string& id) {
    ov1::CreateOrganisationRequest req;
    req.set_organisation_id(id);
    req.mutable_organisation()->set_display_name("Survives restarts");
    ov1::CreateOrganisationResponse resp;
    return org->CreateOrganisation(Ctx().get(), req, &resp);
  };
  auto get = [&](const std::string& id) {
    ov1::GetOrganisationRequest req;
    req.set_name("organisations/" + id);
    ov1::GetOrganisationResponse resp;
    return org->GetOrganisation(Ctx().get(), req, &resp);
  };
  ASSERT_TRUE(create("before").ok());

  ASSERT_TRUE(Shell(absl::StrCat(pg, " stop ", pg_dir)).second);
  for (int i = 0; i < 3; ++i) {
    grpc::Status s = get("before");
    EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
  }
  EXPECT_EQ(create("during").error_code(), grpc::StatusCode::UNAVAILABLE);

  ASSERT_TRUE(Shell(absl::StrCat(pg, " start ", pg_dir, " ", port)).second);
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  grpc::Status s = get("before");
  while (!s.ok() && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(50));  // polling for recovery, bounded by the deadline
    s = get("before");
  }
  EXPECT_TRUE(s.ok()) << s.error_message();
  EXPECT_TRUE(create("after").ok());
  EXPECT_EQ(get("during").error_code(), grpc::StatusCode::NOT_FOUND) << "the failed create wrote nothing";
  server.Stop(SIGTERM);
}

// Backups under a stream of writes: kp-backup (SQLite) or pg_dump (PostgreSQL) while a writer
// keeps creating organisations. The copy, restored into an empty deployment, holds every write
// acknowledged before the backup started, and the service runs on it.
TEST(Lifecycle, BackupUnderWritesRestoresEveryAcknowledgedWrite) {
  TempDir dir;
  const std::string database = NewTestDatabase(dir.path(), "source");
  ServiceProcess server("backup-source", BinaryPath("kp-organisations"), dir.path(),
                        {absl::StrCat("--database=", database), "--plaintext", "--auth=disabled"});
  ASSERT_TRUE(server.Start().ok());
  auto org = ov1::OrganisationService::NewStub(grpc::CreateChannel(server.address(), grpc::InsecureChannelCredentials()));
  absl::Mutex mu;
  std::vector<std::pair<std::string, absl::Time>> acknowledged;  // name, when
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (int i = 0; !stop; ++i) {
      ov1::CreateOrganisationRequest req;
      req.set_organisation_id(absl::StrFormat("backup-%05d", i));
      req.mutable_organisation()->set_display_name(absl::StrCat("Written while backing up ", i));
      ov1::CreateOrganisationResponse resp;
      if (org->CreateOrganisation(Ctx().get(), req, &resp).ok()) {
        const absl::Time now = absl::Now();
        absl::MutexLock lock(&mu);
        acknowledged.emplace_back(resp.organisation().name(), now);
      }
    }
  });
  auto count = [&] {
    absl::MutexLock lock(&mu);
    return acknowledged.size();
  };
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (count() < 100 && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(5));
  const absl::Time backup_start = absl::Now();
  std::pair<std::string, bool> backed_up;
  const std::string copy = dir.path() + (TestingOnPostgres() ? "/backup.dump" : "/backup.db");
  if (TestingOnPostgres()) {
    backed_up = Shell(absl::StrCat("pg_dump --format=custom --file=", copy, " '", database, "' 2>&1"));
  } else {
    backed_up = Shell(absl::StrCat(BinaryPath("kp-backup"), " backup --database=", database, " --to=", copy, " 2>&1"));
  }
  const size_t during = count();
  while (count() < during + 50 && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(5));  // writes go on
  stop = true;
  writer.join();
  ASSERT_TRUE(backed_up.second) << backed_up.first;
  if (!TestingOnPostgres()) {  // and never over the live database
    EXPECT_FALSE(Shell(absl::StrCat(BinaryPath("kp-backup"), " backup --database=", database, " --to=", database,
                                    " 2>&1")).second);
  }
  std::vector<std::string> before;
  {
    absl::MutexLock lock(&mu);
    for (const auto& [name, when] : acknowledged) {
      if (when < backup_start) before.push_back(name);
    }
  }
  ASSERT_GE(before.size(), 100u);
  EXPECT_GT(count(), before.size()) << "the writes must go on during and after the backup";

  // Restore into an empty deployment and serve from it.
  std::string restored;
  if (TestingOnPostgres()) {
    restored = NewTestDatabase(dir.path(), "restored");
    const auto r = Shell(absl::StrCat("pg_restore --no-owner --exit-on-error --dbname='", restored, "' ", copy, " 2>&1"));
    ASSERT_TRUE(r.second) << r.first;
  } else {
    restored = dir.path() + "/restored.db";
    const auto r = Shell(absl::StrCat(BinaryPath("kp-backup"), " restore --from=", copy, " --database=", restored, " 2>&1"));
    ASSERT_TRUE(r.second) << r.first;
    // A second restore over it is refused: it holds data now.
    EXPECT_FALSE(Shell(absl::StrCat(BinaryPath("kp-backup"), " restore --from=", copy, " --database=", restored, " 2>&1")).second);
  }
  ServiceProcess copy_server("backup-restored", BinaryPath("kp-organisations"), dir.path(),
                             {absl::StrCat("--database=", restored), "--plaintext", "--auth=disabled"});
  ASSERT_TRUE(copy_server.Start().ok());
  auto restored_org =
      ov1::OrganisationService::NewStub(grpc::CreateChannel(copy_server.address(), grpc::InsecureChannelCredentials()));
  for (size_t first = 0; first < before.size(); first += 1000) {
    ov1::BatchGetOrganisationsRequest get;
    for (size_t i = first; i < std::min(before.size(), first + 1000); ++i) get.add_names(before[i]);
    ov1::BatchGetOrganisationsResponse got;
    const grpc::Status st = restored_org->BatchGetOrganisations(Ctx().get(), get, &got);
    ASSERT_TRUE(st.ok()) << "acknowledged before the backup, missing from it: " << st.error_message();
  }
  ov1::CreateOrganisationRequest req;
  req.set_organisation_id("after-restore");
  req.mutable_organisation()->set_display_name("Written after the restore");
  ov1::CreateOrganisationResponse resp;
  EXPECT_TRUE(restored_org->CreateOrganisation(Ctx().get(), req, &resp).ok());
}

}  // namespace
}  // namespace kp::testing
