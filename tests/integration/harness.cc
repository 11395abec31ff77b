// Process harness for integration tests.
#include "tests/integration/harness.h"

#include <signal.h>
#include <stdlib.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <grpcpp/create_channel.h>

#include <libpq-fe.h>

#include "absl/random/random.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/cache/redis_client.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace kp::testing {

TempDir::TempDir() {
  char tmpl[] = "/tmp/kp-test-XXXXXX";
  path_ = mkdtemp(tmpl);
}

TempDir::~TempDir() {
  std::error_code ec;
  if (std::getenv("KP_KEEP_TEST_DIRS") == nullptr) std::filesystem::remove_all(path_, ec);
}

std::string BinaryPath(const std::string& name) {
  const char* dir = std::getenv("KP_BIN_DIR");
  return absl::StrCat(dir ? dir : KP_BIN_DIR, "/", name);
}

ServiceProcess::ServiceProcess(std::string name, std::string binary, std::string dir,
                               std::vector<std::string> args, std::shared_ptr<grpc::ChannelCredentials> creds)
    : name_(std::move(name)), binary_(std::move(binary)), dir_(std::move(dir)), args_(std::move(args)),
      creds_(std::move(creds)) {
  port_file_ = absl::StrCat(dir_, "/", name_, ".port");
  log_path_ = absl::StrCat(dir_, "/", name_, ".log");
}

ServiceProcess::~ServiceProcess() {
  if (pid_ > 0) Stop(SIGKILL);
}

std::string ServiceProcess::address() const { return absl::StrCat("127.0.0.1:", port_); }

absl::Status MakeTestCertificates(const std::string& dir) {
  const std::string cmd = absl::StrCat(KP_SOURCE_DIR, "/tests/integration/make_certs.sh ", dir);
  if (std::system(cmd.c_str()) != 0) return absl::InternalError("make_certs.sh failed (is openssl installed?)");
  return absl::OkStatus();
}

namespace {
std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}
}  // namespace

std::shared_ptr<grpc::ChannelCredentials> TestTlsCredentials(const std::string& dir, bool mtls) {
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = Slurp(dir + "/ca.pem");
  if (mtls) {
    options.pem_cert_chain = Slurp(dir + "/client.pem");
    options.pem_private_key = Slurp(dir + "/client.key");
  }
  return grpc::SslCredentials(options);
}

bool PollUntil(const std::function<bool()>& ok, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!ok()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return true;
}

absl::Status WaitForServing(const std::string& address, absl::Duration timeout,
                            std::shared_ptr<grpc::ChannelCredentials> creds) {
  auto channel = grpc::CreateChannel(address, creds ? creds : grpc::InsecureChannelCredentials());
  auto stub = grpc::health::v1::Health::NewStub(channel);
  const absl::Time deadline = absl::Now() + timeout;
  std::string last = "no answer";
  while (absl::Now() < deadline) {
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(std::min(deadline, absl::Now() + absl::Seconds(1))));
    ctx.set_wait_for_ready(true);
    grpc::health::v1::HealthCheckRequest req;
    grpc::health::v1::HealthCheckResponse resp;
    grpc::Status s = stub->Check(&ctx, req, &resp);
    if (s.ok() && resp.status() == grpc::health::v1::HealthCheckResponse::SERVING) return absl::OkStatus();
    last = s.ok() ? "NOT_SERVING" : s.error_message();
  }
  return absl::DeadlineExceededError(absl::StrCat(address, " not serving: ", last));
}

absl::Status ServiceProcess::Start(absl::Duration timeout) {
  std::filesystem::remove(port_file_);
  const int previous_port = port_;
  port_ = 0;
  // A restart binds the port it had, so peers configured with its address find it again.
  if (metrics_port_ == 0) metrics_port_ = FreePort();
  std::vector<std::string> argv_strings{binary_, absl::StrCat("--port=", previous_port), "--host=127.0.0.1",
                                        absl::StrCat("--metrics_port=", metrics_port_),
                                        absl::StrCat("--port_file=", port_file_)};
  argv_strings.insert(argv_strings.end(), args_.begin(), args_.end());
  std::vector<char*> argv;
  for (auto& a : argv_strings) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_ = fork();
  if (pid_ < 0) return absl::InternalError("fork failed");
  if (pid_ == 0) {
    FILE* log = std::fopen(log_path_.c_str(), "a");
    if (log) {
      dup2(fileno(log), STDERR_FILENO);
      dup2(fileno(log), STDOUT_FILENO);
    }
    execv(argv[0], argv.data());
    _exit(127);
  }
  // The port file appears once the server is bound; then health must say SERVING.
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    int status;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return absl::InternalError(absl::StrCat(name_, " exited during start-up; see ", log_path_));
    }
    std::ifstream in(port_file_);
    if (in >> port_) break;
    absl::SleepFor(absl::Milliseconds(5));  // polling the file, bounded by the deadline
  }
  if (port_ == 0) return absl::DeadlineExceededError(absl::StrCat(name_, " did not bind a port"));
  return WaitForServing(address(), deadline - absl::Now(), creds_);
}

void ServiceProcess::Signal(int signal) {
  if (pid_ > 0) kill(pid_, signal);
}

int ServiceProcess::Stop(int signal) {
  if (pid_ <= 0) return 0;
  kill(pid_, SIGCONT);  // a paused process must be able to act on the signal
  kill(pid_, signal);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
  return status;
}

std::string Scrape(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return "";
  }
  const std::string req = "GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n";
  (void)!write(fd, req.data(), req.size());
  std::string out;
  char buf[8192];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  close(fd);
  const auto body = out.find("\r\n\r\n");
  return body == std::string::npos ? "" : out.substr(body + 4);
}

double Sample(const std::string& text, const std::string& series) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(series, 0) == 0 && line.size() > series.size() && line[series.size()] == ' ') {
      return std::stod(line.substr(series.size() + 1));
    }
  }
  return -1;
}

double SumSamples(const std::string& text, const std::string& family, const std::string& label_part) {
  std::istringstream in(text);
  std::string line;
  double sum = 0;
  while (std::getline(in, line)) {
    if (line.rfind(family + "{", 0) != 0 || line.find(label_part) == std::string::npos) continue;
    const auto space = line.rfind(' ');
    if (space != std::string::npos) sum += std::stod(line.substr(space + 1));
  }
  return sum;
}

int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

RedisProcess::RedisProcess(std::string dir, std::string password)
    : dir_(std::move(dir)), password_(std::move(password)), port_(FreePort()) {}

RedisProcess::~RedisProcess() { Stop(SIGKILL); }

std::string RedisProcess::address() const { return absl::StrCat("127.0.0.1:", port_); }

absl::Status RedisProcess::Start(absl::Duration timeout) {
  const std::string log = absl::StrCat(dir_, "/redis.log");
  pid_ = fork();
  if (pid_ == 0) {
    FILE* f = std::fopen(log.c_str(), "a");
    if (f) {
      dup2(fileno(f), STDOUT_FILENO);
      dup2(fileno(f), STDERR_FILENO);
    }
    const std::string port = std::to_string(port_);
    if (password_.empty()) {
      execlp("redis-server", "redis-server", "--port", port.c_str(), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", dir_.c_str(), static_cast<char*>(nullptr));
    } else {
      execlp("redis-server", "redis-server", "--port", port.c_str(), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", dir_.c_str(), "--requirepass", password_.c_str(), static_cast<char*>(nullptr));
    }
    _exit(127);
  }
  cache::RedisOptions options;
  options.address = address();
  options.password = password_;
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    cache::RedisClient probe(options);  // fresh each time: no breaker state carried over
    auto reply = probe.Command({"PING"});
    if (reply.ok() && reply->str == "PONG") return absl::OkStatus();
    int status;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return absl::InternalError(absl::StrCat("redis-server exited; see ", log));
    }
    absl::SleepFor(absl::Milliseconds(10));  // polling readiness, bounded by the deadline
  }
  return absl::DeadlineExceededError("redis-server did not answer PING");
}

void RedisProcess::Signal(int signal) {
  if (pid_ > 0) kill(pid_, signal);
}

void RedisProcess::Stop(int signal) {
  if (pid_ <= 0) return;
  kill(pid_, SIGCONT);  // a paused server must be able to act on the signal
  kill(pid_, signal);
  waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

std::unique_ptr<ServiceProcess> Suite::StartGateway(const std::string& name, bool cached,
                                                    const std::vector<std::string>& extra_args) {
  std::vector<std::string> args{
      absl::StrCat("--organisations_address=", addresses("organisations")),
      absl::StrCat("--events_address=", addresses("events")),
      absl::StrCat("--participants_address=", addresses("participants")),
      "--drain_timeout=2s", "--workers=16",
      // Tests drive load as one principal; the rate limit has tests of its own (which pass
      // --rate_limit in SuiteOptions::gateway_args, later on the command line, so it wins).
      "--rate_limit=0"};
  args.insert(args.end(), common_args_.begin(), common_args_.end());
  if (cached && redis_) {
    args.push_back(absl::StrCat("--redis_address=", redis_->address()));
    if (!redis_->password().empty()) args.push_back(absl::StrCat("--redis_password=", redis_->password()));
  }
  args.insert(args.end(), gateway_args_.begin(), gateway_args_.end());
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  auto gateway = std::make_unique<ServiceProcess>(name, BinaryPath("kp-gateway"), dir_.path(), args,
                                                  certs_dir_.empty() ? nullptr : client_credentials());
  if (!gateway->Start().ok()) return nullptr;
  return gateway;
}

std::unique_ptr<Suite> Suite::Start(SuiteOptions options) {
  std::unique_ptr<Suite> suite(new Suite());
  const std::string& d = suite->dir_.path();
  if (options.keys_file.empty()) {
    suite->common_args_.push_back("--auth=disabled");
  } else {
    suite->common_args_.push_back(absl::StrCat("--keys_file=", options.keys_file));
    suite->common_args_.push_back("--keys_reload_interval=100ms");
  }
  if (options.tls) {
    suite->certs_dir_ = absl::StrCat(d, "/certs");
    if (!MakeTestCertificates(suite->certs_dir_).ok()) return nullptr;
    const std::string& c = suite->certs_dir_;
    suite->common_args_.insert(suite->common_args_.end(),
                               {absl::StrCat("--tls_cert=", c, "/server.pem"), absl::StrCat("--tls_key=", c, "/server.key"),
                                absl::StrCat("--tls_ca=", c, "/ca.pem"),
                                "--page_token_key=suite-page-token-key-0f3a9c"});
  } else {
    suite->common_args_.push_back("--plaintext");
  }
  suite->common_args_.insert(suite->common_args_.end(), options.extra_args.begin(), options.extra_args.end());
  suite->gateway_args_ = options.gateway_args;
  std::vector<std::string> extra_args = suite->common_args_;
  if (options.with_redis) {
    suite->redis_ = std::make_unique<RedisProcess>(d, options.redis_password);
    if (!suite->redis_->Start().ok()) return nullptr;
    extra_args.push_back(absl::StrCat("--redis_address=", suite->redis_->address()));
    if (!options.redis_password.empty()) extra_args.push_back(absl::StrCat("--redis_password=", options.redis_password));
  }
  auto creds = suite->certs_dir_.empty() ? nullptr : suite->client_credentials();
  const int replicas = std::max(1, options.replicas);
  suite->replicas_.resize(replicas);
  // Each service after its peers, every replica of it on the same database.
  std::vector<std::string> peers;
  for (const std::string service : {"organisations", "events", "participants"}) {
    const std::string database = NewTestDatabase(d, service);
    suite->databases_[service] = database;
    for (int i = 0; i < replicas; ++i) {
      std::vector<std::string> a{absl::StrCat("--database=", database), "--drain_timeout=2s"};
      a.insert(a.end(), peers.begin(), peers.end());
      a.insert(a.end(), extra_args.begin(), extra_args.end());
      const std::string name = i == 0 ? service : absl::StrCat(service, "-", i);
      auto process = std::make_unique<ServiceProcess>(name, BinaryPath("kp-" + service), d, a, creds);
      if (auto s = process->Start(); !s.ok()) {
        std::fprintf(stderr, "%s did not start: %s\n", name.c_str(), std::string(s.message()).c_str());
        return nullptr;
      }
      suite->replicas_[i].push_back(std::move(process));
    }
    peers.push_back(absl::StrCat("--", service, "_address=", suite->addresses(service)));
  }
  suite->organisations_ = suite->replicas_[0][0].get();
  suite->events_ = suite->replicas_[0][1].get();
  suite->participants_ = suite->replicas_[0][2].get();
  if (options.with_gateway) {
    suite->gateway_ = suite->StartGateway("gateway", options.with_redis);
    if (suite->gateway_ == nullptr) return nullptr;
  }
  suite->MakeStubs();
  return suite;
}

Suite::~Suite() = default;

namespace {
int ServiceIndex(const std::string& service) {
  if (service == "organisations") return 0;
  if (service == "events") return 1;
  if (service == "participants") return 2;
  std::fprintf(stderr, "unknown service %s\n", service.c_str());
  std::abort();
}
}  // namespace

ServiceProcess& Suite::replica(const std::string& service, int i) { return *replicas_.at(i)[ServiceIndex(service)]; }

std::string Suite::addresses(const std::string& service) const {
  std::vector<std::string> out;
  const size_t index = ServiceIndex(service);
  for (const auto& r : replicas_) {
    if (index < r.size()) out.push_back(r[index]->address());
  }
  return absl::StrJoin(out, ",");
}

bool TestingOnPostgres() {
  const char* backend = std::getenv("KP_TEST_BACKEND");
  return backend != nullptr && std::string(backend) == "postgresql";
}

std::string NewTestDatabase(const std::string& dir, const std::string& name) {
  if (!TestingOnPostgres()) return absl::StrCat(dir, "/", name, ".db");
  const char* server = std::getenv("KP_TEST_POSTGRES");
  if (server == nullptr || *server == '\0') {
    std::fprintf(stderr, "KP_TEST_BACKEND=postgresql needs KP_TEST_POSTGRES=postgresql://user@host:port "
                         "(scripts/dev test starts a server and sets it)\n");
    std::abort();
  }
  static std::atomic<int> counter{0};
  thread_local absl::BitGen gen;
  const std::string db = absl::StrCat("kp_", name, "_", getpid(), "_", counter.fetch_add(1), "_",
                                      absl::Uniform<uint32_t>(gen) % 1000000);
  const std::string base(absl::StripSuffix(server, "/"));
  PGconn* admin = PQconnectdb(absl::StrCat(base, "/postgres").c_str());
  PGresult* res = PQexec(admin, absl::StrCat("CREATE DATABASE ", db).c_str());
  const bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;
  if (!ok) std::fprintf(stderr, "cannot create database %s on %s: %s\n", db.c_str(), server, PQerrorMessage(admin));
  PQclear(res);
  PQfinish(admin);
  if (!ok) std::abort();
  return absl::StrCat(base, "/", db);
}

std::shared_ptr<grpc::ChannelCredentials> Suite::client_credentials() const {
  return certs_dir_.empty() ? grpc::InsecureChannelCredentials() : TestTlsCredentials(certs_dir_, false);
}

void Suite::MakeStubs() {
  auto channel = [this](ServiceProcess& p) { return grpc::CreateChannel(p.address(), client_credentials()); };
  org_stub_ = khartoum::organisations::v1::OrganisationService::NewStub(channel(*organisations_));
  event_stub_ = khartoum::events::v1::EventService::NewStub(channel(*events_));
  participant_stub_ = khartoum::participants::v1::ParticipantService::NewStub(channel(*participants_));
}

absl::Status Suite::Restart(ServiceProcess& process, int signal) {
  process.Stop(signal);
  auto status = process.Start();
  MakeStubs();
  return status;
}

std::unique_ptr<grpc::ClientContext> Ctx() {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  return ctx;
}

std::string UniqueId(const std::string& prefix) {
  static std::atomic<int> counter{0};
  thread_local absl::BitGen gen;
  return absl::StrCat(prefix, "-", counter.fetch_add(1), "-", absl::Uniform<uint32_t>(gen) % 100000);
}

}  // namespace kp::testing
