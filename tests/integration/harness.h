// Starts the real service binaries on free ports in a scratch directory and waits, by
// polling grpc.health.v1 with a deadline, until each reports SERVING.
#pragma once

#include <sys/types.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/channel.h>
#include <grpcpp/security/credentials.h>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "khartoum/events/v1/events.grpc.pb.h"
#include "khartoum/organisations/v1/organisations.grpc.pb.h"
#include "khartoum/participants/v1/participants.grpc.pb.h"

namespace kp::testing {

// A scratch directory removed on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// One service process.
class ServiceProcess {
 public:
  ServiceProcess(std::string name, std::string binary, std::string dir, std::vector<std::string> args,
                 std::shared_ptr<grpc::ChannelCredentials> creds = nullptr);
  ~ServiceProcess();
  // Starts the process and waits until it serves (health SERVING) or `timeout` passes.
  absl::Status Start(absl::Duration timeout = absl::Seconds(30));
  // Sends `signal` and waits for the process to exit; returns its wait status.
  int Stop(int signal);
  // Sends `signal` without waiting (SIGSTOP / SIGCONT to make it hang and resume).
  void Signal(int signal);
  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  int port() const { return port_; }
  int metrics_port() const { return metrics_port_; }
  std::string address() const;
  const std::string& log_path() const { return log_path_; }

 private:
  std::string name_, binary_, dir_, port_file_, log_path_;
  std::vector<std::string> args_;
  std::shared_ptr<grpc::ChannelCredentials> creds_;  // how to reach it (null: plaintext)
  pid_t pid_ = -1;
  int port_ = 0;
  int metrics_port_ = 0;
};

// Polls `ok` every 20 ms until it holds (true) or `timeout` passes (false).
bool PollUntil(const std::function<bool()>& ok, absl::Duration timeout);

// Waits until the server at `address` reports SERVING.
absl::Status WaitForServing(const std::string& address, absl::Duration timeout,
                            std::shared_ptr<grpc::ChannelCredentials> creds = nullptr);

// Creates a throwaway CA, server (localhost) and client certificates in `dir`
// (ca.pem, server.pem/.key, client.pem/.key).
absl::Status MakeTestCertificates(const std::string& dir);
// Client credentials trusting the test CA in `dir` (with its client certificate if `mtls`).
std::shared_ptr<grpc::ChannelCredentials> TestTlsCredentials(const std::string& dir, bool mtls);

// GET http://127.0.0.1:<port>/metrics: the Prometheus text ("" if nothing answers).
std::string Scrape(int port);
// The value of the sample whose line starts with `series` (name and labels), or -1.
double Sample(const std::string& text, const std::string& series);
// The sum of every sample of `family` whose labels contain `label_part`.
double SumSamples(const std::string& text, const std::string& family, const std::string& label_part);

// A port nobody listens on right now.
int FreePort();

// A real redis-server (no persistence) on a free port of 127.0.0.1.
class RedisProcess {
 public:
  // With a `password`, clients must AUTH (--requirepass).
  explicit RedisProcess(std::string dir, std::string password = "");
  ~RedisProcess();
  // Starts it (on the same port as before, after a Stop) and waits until it answers PING.
  absl::Status Start(absl::Duration timeout = absl::Seconds(10));
  void Stop(int signal);
  void Signal(int signal);  // e.g. SIGSTOP / SIGCONT to make it hang and resume
  std::string address() const;
  int port() const { return port_; }
  const std::string& password() const { return password_; }

 private:
  std::string dir_;
  std::string password_;
  int port_;
  pid_t pid_ = -1;
};

// The storage backend the integration tests run on: KP_TEST_BACKEND=postgresql (with
// KP_TEST_POSTGRES=postgresql://user@host:port, a server the tests may create databases on;
// scripts/dev test starts one) or SQLite by default.
bool TestingOnPostgres();
// A fresh, empty database for one service: a new PostgreSQL database, or a SQLite file in `dir`.
// Replicas of one service share it. Aborts the test program if PostgreSQL was asked for but
// cannot be reached, so a misconfigured run fails instead of testing SQLite twice.
std::string NewTestDatabase(const std::string& dir, const std::string& name);

struct SuiteOptions {
  bool with_redis = false;    // a redis-server; services bump generations in it
  std::string redis_password = {};  // Redis requires it (AUTH), and every server gets it
  bool with_gateway = false;  // kp-gateway in front (cached when with_redis)
  std::string keys_file = {};  // authentication required with these keys; empty: --auth=disabled
  bool tls = false;           // TLS with a throwaway CA (tests/integration/certs) instead of --plaintext
  std::vector<std::string> extra_args = {};  // for every service
  std::vector<std::string> gateway_args = {};  // for the gateway only (after the defaults)
  int replicas = 1;  // processes per backend service, sharing its database (PostgreSQL)
};

// The three backends, wired to each other, each with its own SQLite file; optionally Redis
// and the gateway.
class Suite {
 public:
  static std::unique_ptr<Suite> Start(SuiteOptions options = {});
  ~Suite();

  ServiceProcess& organisations() { return *organisations_; }
  ServiceProcess& events() { return *events_; }
  ServiceProcess& participants() { return *participants_; }
  // Replica i (0 is the one above) of "organisations", "events" or "participants".
  ServiceProcess& replica(const std::string& service, int i);
  int replicas() const { return static_cast<int>(replicas_.size()); }
  // host:port of every replica of a service, comma-separated (a round_robin target).
  std::string addresses(const std::string& service) const;
  // The database of "organisations", "events" or "participants" (a SQLite file or a PostgreSQL
  // URL), for tests that load data straight into it.
  const std::string& database(const std::string& service) const { return databases_.at(service); }
  ServiceProcess& gateway() { return *gateway_; }
  RedisProcess& redis() { return *redis_; }
  bool has_gateway() const { return gateway_ != nullptr; }
  // Starts another gateway process on the same backends, e.g. uncached for comparison;
  // `extra_args` come last (they win).
  std::unique_ptr<ServiceProcess> StartGateway(const std::string& name, bool cached,
                                               const std::vector<std::string>& extra_args = {});
  // Flags every server of this suite gets (security and transport).
  const std::vector<std::string>& common_args() const { return common_args_; }
  // Credentials for clients of this suite's servers.
  std::shared_ptr<grpc::ChannelCredentials> client_credentials() const;
  const std::string& certs_dir() const { return certs_dir_; }
  // Restarts a process with the same database and port-independent wiring.
  absl::Status Restart(ServiceProcess& process, int signal);

  khartoum::organisations::v1::OrganisationService::Stub& org() { return *org_stub_; }
  khartoum::events::v1::EventService::Stub& ev() { return *event_stub_; }
  khartoum::participants::v1::ParticipantService::Stub& part() { return *participant_stub_; }
  const std::string& dir() const { return dir_.path(); }
  void MakeStubs();

 private:
  Suite() = default;
  TempDir dir_;
  std::vector<std::string> common_args_;
  std::vector<std::string> gateway_args_;
  std::string certs_dir_;  // set when the suite runs with TLS
  std::map<std::string, std::string> databases_;  // by service
  std::unique_ptr<RedisProcess> redis_;
  ServiceProcess* organisations_ = nullptr;
  ServiceProcess* events_ = nullptr;
  ServiceProcess* participants_ = nullptr;
  std::unique_ptr<ServiceProcess> gateway_;
  // replicas_[i] = {organisations, events, participants} of replica i.
  std::vector<std::vector<std::unique_ptr<ServiceProcess>>> replicas_;
  std::unique_ptr<khartoum::organisations::v1::OrganisationService::Stub> org_stub_;
  std::unique_ptr<khartoum::events::v1::EventService::Stub> event_stub_;
  std::unique_ptr<khartoum::participants::v1::ParticipantService::Stub> participant_stub_;
};

// A client context with a 10 s deadline.
std::unique_ptr<grpc::ClientContext> Ctx();
// A fresh id for test data, unique across the suite run.
std::string UniqueId(const std::string& prefix);
// Path of a built binary (KP_BIN_DIR/<name>).
std::string BinaryPath(const std::string& name);

}  // namespace kp::testing
