// ServiceMain: see service_main.h.
#include "common/service_main.h"

#include <filesystem>

#include "absl/flags/flag.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/auth/authenticator.h"
#include "common/cache/generations.h"
#include "common/cache/redis_flags.h"
#include "common/log.h"
#include "common/server.h"
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include "common/storage/postgres.h"

ABSL_FLAG(std::string, database, "",
          "SQLite database file (or sqlite:///path; default <service>.db in the working directory), or "
          "postgresql://user:password@host:port/dbname?sslmode=... to share one PostgreSQL with replicas.");
ABSL_FLAG(int, db_pool_size, 0, "Database connections per process; 0: one per worker thread plus one.");
ABSL_FLAG(absl::Duration, db_acquire_timeout, absl::Seconds(5),
          "How long a call waits for a free database connection before failing UNAVAILABLE.");
ABSL_FLAG(absl::Duration, db_statement_timeout, absl::Seconds(10),
          "PostgreSQL statement and lock timeout (SQLite: how long a writer waits for the lock).");
ABSL_FLAG(absl::Duration, db_connect_timeout, absl::Seconds(5), "PostgreSQL connect timeout.");
ABSL_FLAG(absl::Duration, call_timeout, absl::Seconds(3), "Deadline for calls to peer services.");

namespace kp {


int ServiceMain(int argc, char** argv, const ServiceDefinition& definition) {
  config::ParseFlags(argc, argv, definition.usage.c_str());
  config::Validator validator;
  ValidateServerFlags(validator, definition.calls_peers);
  validator.Check(absl::GetFlag(FLAGS_call_timeout) > absl::ZeroDuration(),
                  "--call_timeout must be positive");
  for (const auto& peer : {OrganisationsAddress(), EventsAddress(), ParticipantsAddress()}) {
    validator.Check(!peer.empty(), "peer addresses (--*_address) must not be empty");
  }
  std::string database = absl::GetFlag(FLAGS_database);
  if (database.empty()) database = absl::StrCat(definition.name.substr(3), ".db");
  if (absl::StartsWith(database, "sqlite://")) database = database.substr(9);
  validator.Check(storage::IsPostgresUrl(database) || !absl::StrContains(database, "://"),
                  absl::StrCat("--database: unsupported database URL '", database,
                               "' (use a SQLite file path or postgresql://...)"));
  validator.Check(absl::GetFlag(FLAGS_db_pool_size) >= 0, "--db_pool_size must not be negative");
  for (const auto& d : {absl::GetFlag(FLAGS_db_acquire_timeout), absl::GetFlag(FLAGS_db_statement_timeout),
                        absl::GetFlag(FLAGS_db_connect_timeout)}) {
    validator.Check(d > absl::ZeroDuration(), "--db_*_timeout flags must be positive");
  }
  WorkerPool::ValidateFlags(validator, WorkerThreadsFromFlags());
  cache::ValidateRedisFlags(validator);
  if (definition.validate) definition.validate(validator);
  validator.ExitIfInvalid(definition.name.c_str());
  auth::InitAuthFromFlags(definition.name.c_str());

  if (!storage::IsPostgresUrl(database)) {
    if (auto parent = std::filesystem::path(database).parent_path(); !parent.empty()) {
      std::error_code ec;
      std::filesystem::create_directories(parent, ec);
    }
  }
  const int workers = WorkerThreadsFromFlags();
  storage::DatabaseOptions db_options{
      .pool_size = absl::GetFlag(FLAGS_db_pool_size) > 0 ? absl::GetFlag(FLAGS_db_pool_size) : workers + 1,
      .acquire_timeout = absl::GetFlag(FLAGS_db_acquire_timeout),
      .connect_timeout = absl::GetFlag(FLAGS_db_connect_timeout),
      .statement_timeout = absl::GetFlag(FLAGS_db_statement_timeout),
      .application_name = definition.name,
  };
  auto db = storage::Database::Open(database, db_options);
  if (!db.ok()) {
    log::Error("cannot open database", {{"database", storage::PostgresDisplayName(database)},
                                        {"error", db.status().ToString()}});
    return 1;
  }
  {
    auto conn = (*db)->Acquire();
    auto s = conn.ok() ? storage::ApplyMigrations(**conn, *definition.migrations) : conn.status();
    if (!s.ok()) {
      log::Error("migrations failed", {{"database", (*db)->display_name()}, {"error", s.ToString()}});
      return 1;
    }
  }
  auto pool = std::make_unique<WorkerPool>(workers);
  std::unique_ptr<cache::RedisClient> redis = cache::RedisClientFromFlags();
  std::unique_ptr<cache::Generations> generations;
  std::function<void()> after_commit = [] {};
  if (redis) {
    generations = std::make_unique<cache::Generations>(redis.get(), /*owes_at_start=*/true);
    generations->SettleOwed();  // before serving: no entry from before this start is trusted
    after_commit = [g = generations.get(), service = definition.name.substr(3)] { g->Bump(service); };
  }
  ServiceContext ctx{db->get(), pool.get(), absl::GetFlag(FLAGS_call_timeout), after_commit};
  auto services = definition.make_services(ctx);
  std::vector<grpc::Service*> raw;
  for (auto& s : services) raw.push_back(s.get());

  ServerOptions options = ServerOptionsFromFlags(definition.name);
  if (options.port < 0) options.port = definition.default_port;
  if (options.metrics_port < 0) options.metrics_port = definition.default_metrics_port;
  options.health_services = definition.service_names;
  log::Info("starting", {{"server", definition.name}, {"database", (*db)->display_name()}, {"workers", workers},
                         {"redis", redis ? redis->address() : "none (no cache invalidation)"}});
  // The pool is destroyed only after the server has drained: queued work still finishes.
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  return RunServer(options, raw, [&] { pool.reset(); });
}

}  // namespace kp
