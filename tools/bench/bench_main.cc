// kp-bench: measures scenarios against running servers, each repeated and interleaved, and
// reports medians and ratios against a baseline measured in the same run.
//
//   kp-bench setup-overview --target=HOST:PORT        creates an event with 200 attendees from
//                                                     30 organisations in 12 countries; prints it
//   kp-bench run --runs=LABEL=SCENARIO@HOST:PORT,... --baseline=LABEL [--name=events/x]
//                [--concurrency=64 --duration=5s --repeat=3 --pids=LABEL=PID,...]
//
//   kp-bench setup-register --target=HOST:PORT [--name=PREFIX]
//                                                     creates the events and participants the
//                                                     register scenario pairs up; prints the prefix
//   kp-bench generate --target=HOST:PORT [--scale=1 --seed=42]
//                                                     loads the large dataset (dataset.cc)
// Scenarios: health (grpc.health.v1 Check), overview (PortalService.GetEventOverview of
// --name), statistics (PortalService.GetStatistics over all years), get-event
// (EventService.GetEvent of --name), register (CreateRegistration, a new
// participant/event pair each call, from the setup-register prefix given as --name),
// list-first / list-deep (ListParticipants, 50 a page: page 1 / page --list_deep_page, found
// by paging before the run), list-filtered (ListEvents of trainings since 2020, first page),
// participant-miss (GetParticipant of a new, absent name each call: a cache miss every time).
//
// With --cpu_pids, each run also reports the CPU time per call of those processes (from /proc)
// and the load generator's own share of the machine's CPU; with --redis, Redis commands per call
// (INFO commandstats, INFO itself left out).
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>

#include <grpcpp/create_channel.h>
#include <grpcpp/generic/generic_stub.h>

#include "absl/algorithm/container.h"
#include "absl/flags/flag.h"
#include "absl/synchronization/mutex.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/strings/str_format.h"
#include "absl/strings/match.h"
#include "common/cache/redis_client.h"
#include "common/config.h"
#include "khartoum/events/v1/events.grpc.pb.h"
#include "khartoum/gateway/v1/portal.grpc.pb.h"
#include "khartoum/organisations/v1/organisations.grpc.pb.h"
#include "khartoum/participants/v1/participants.grpc.pb.h"
#include "tools/bench/dataset.h"
#include "tools/bench/load.h"

ABSL_FLAG(std::string, target, "localhost:50050", "setup-overview: where to create the data.");
ABSL_FLAG(int, attendees, 200, "setup-overview: registrations for the event.");
ABSL_FLAG(int, organisations, 30, "setup-overview: organisations the attendees come from.");
ABSL_FLAG(int, countries, 12, "setup-overview: countries of those organisations.");
ABSL_FLAG(int, register_events, 50, "setup-register/register: events to register for.");
ABSL_FLAG(int, register_participants, 4000, "setup-register/register: participants to register.");
ABSL_FLAG(std::string, runs, "", "run: LABEL=SCENARIO@HOST:PORT, comma separated.");
ABSL_FLAG(std::string, baseline, "", "run: the label every other run is divided by.");
ABSL_FLAG(std::string, name, "", "run: the resource the scenarios read.");
ABSL_FLAG(int, concurrency, 64, "run: calls in flight (open loop: at most).");
ABSL_FLAG(double, rate, 0, "run: > 0 for an open loop at this many calls per second (each run).");
ABSL_FLAG(int, list_deep_page, 2000, "run: the page list-deep reads (page size 50), or the last one.");
ABSL_FLAG(int, channels, 4, "run: client connections.");
ABSL_FLAG(absl::Duration, duration, absl::Seconds(5), "run: measured time of each repeat.");
ABSL_FLAG(absl::Duration, warmup, absl::Seconds(1), "run: unmeasured time before each repeat.");
ABSL_FLAG(int, repeat, 3, "run: repeats of every run (interleaved); the median is reported.");
ABSL_FLAG(std::string, pids, "", "run: LABEL=PID of servers whose peak RSS to report, comma separated.");
ABSL_FLAG(std::string, cpu_pids, "",
          "run: LABEL=PID of processes whose CPU time per call to report (with their child processes, "
          "e.g. nginx's workers), comma separated.");
ABSL_FLAG(std::string, redis, "", "run: HOST:PORT of a Redis whose commands per call to report (INFO commandstats).");
ABSL_FLAG(int, stop_pid, 0,
          "run: a backend to stop (SIGSTOP) during the runs named by --stop_runs, with --hang_calls calls of "
          "--hang hanging on it, and to continue (SIGCONT) after each.");
ABSL_FLAG(std::string, stop_runs, "", "run: labels of the runs measured with --stop_pid stopped, comma separated.");
ABSL_FLAG(std::string, hang, "", "run: SCENARIO@HOST:PORT of the calls left hanging on the stopped backend.");
ABSL_FLAG(int, hang_calls, 50, "run: how many calls hang on the stopped backend.");
ABSL_FLAG(std::string, json_out, "", "run: also write the results here as JSON.");
ABSL_FLAG(std::string, markdown_out, "", "run: also write the table here as Markdown.");

namespace {

namespace ov1 = khartoum::organisations::v1;
namespace ev1 = khartoum::events::v1;
namespace pv1 = khartoum::participants::v1;
namespace gv1 = khartoum::gateway::v1;
using kp::bench::LoadResult;

std::unique_ptr<grpc::ClientContext> Ctx() {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  return ctx;
}

int SetupOverview() {
  static const char* kCountries[] = {"KE", "ET", "ER", "SD", "SS", "SO", "DJ", "UG", "EG", "DE", "FR", "IT",
                                     "NL", "BE", "SE", "NO", "AT", "ES", "PT", "DK"};
  const int n_countries = std::min<int>(absl::GetFlag(FLAGS_countries), 20);
  auto channel = grpc::CreateChannel(absl::GetFlag(FLAGS_target), grpc::InsecureChannelCredentials());
  auto orgs = ov1::OrganisationService::NewStub(channel);
  auto events = ev1::EventService::NewStub(channel);
  auto people = pv1::ParticipantService::NewStub(channel);
  const std::string run = absl::FormatTime("%H%M%S", absl::Now(), absl::UTCTimeZone());
  std::vector<ov1::Organisation> created;
  for (int i = 0; i < absl::GetFlag(FLAGS_organisations); ++i) {
    ov1::CreateOrganisationRequest req;
    req.set_organisation_id(absl::StrFormat("bench-%s-org-%02d", run, i));
    req.mutable_organisation()->set_display_name(absl::StrFormat("Bench organisation %d", i));
    req.mutable_organisation()->set_kind(ov1::ORGANISATION_KIND_GOVERNMENT);
    req.mutable_organisation()->set_country_code(kCountries[i % n_countries]);
    ov1::CreateOrganisationResponse resp;
    if (auto s = orgs->CreateOrganisation(Ctx().get(), req, &resp); !s.ok()) {
      std::cerr << "create organisation: " << s.error_message() << "\n";
      return 1;
    }
    created.push_back(resp.organisation());
  }
  ev1::CreateEventRequest ereq;
  ereq.set_event_id(absl::StrFormat("bench-%s-overview", run));
  auto* e = ereq.mutable_event();
  e->set_title("Benchmark workshop with many attendees");
  e->set_kind(ev1::EVENT_KIND_THEMATIC_WORKSHOP);
  e->mutable_start_date()->set_year(2025);
  e->mutable_start_date()->set_month(6);
  e->mutable_start_date()->set_day(10);
  *e->mutable_end_date() = e->start_date();
  e->add_hosts(created[0].name());
  if (created.size() > 1) e->add_co_hosts(created[1].name());
  for (size_t i = 2; i < std::min<size_t>(created.size(), 7); ++i) e->add_partners(created[i].name());
  ev1::CreateEventResponse event;
  if (auto s = events->CreateEvent(Ctx().get(), ereq, &event); !s.ok()) {
    std::cerr << "create event: " << s.error_message() << "\n";
    return 1;
  }
  for (int j = 0; j < absl::GetFlag(FLAGS_attendees); ++j) {
    const auto& org = created[j % created.size()];
    pv1::CreateParticipantRequest preq;
    preq.mutable_participant()->set_given_name("Attendee");
    preq.mutable_participant()->set_family_name(absl::StrCat("Number ", j));
    preq.mutable_participant()->set_organisation(org.name());
    preq.mutable_participant()->set_country_code(org.country_code());
    preq.mutable_participant()->set_email(absl::StrCat("attendee", j, "@example.org"));
    pv1::CreateParticipantResponse person;
    if (auto s = people->CreateParticipant(Ctx().get(), preq, &person); !s.ok()) {
      std::cerr << "create participant: " << s.error_message() << "\n";
      return 1;
    }
    pv1::CreateRegistrationRequest rreq;
    rreq.mutable_registration()->set_event(event.event().name());
    rreq.mutable_registration()->set_participant(person.participant().name());
    rreq.mutable_registration()->set_role(pv1::REGISTRATION_ROLE_DELEGATE);
    pv1::CreateRegistrationResponse reg;
    if (auto s = people->CreateRegistration(Ctx().get(), rreq, &reg); !s.ok()) {
      std::cerr << "create registration: " << s.error_message() << "\n";
      return 1;
    }
  }
  std::cout << event.event().name() << "\n";
  return 0;
}

std::string RegisterEventId(const std::string& prefix, int i) { return absl::StrFormat("%s-e-%03d", prefix, i); }
std::string RegisterParticipantId(const std::string& prefix, int i) { return absl::StrFormat("%s-p-%05d", prefix, i); }

int SetupRegister() {
  auto channel = grpc::CreateChannel(absl::GetFlag(FLAGS_target), grpc::InsecureChannelCredentials());
  auto orgs = ov1::OrganisationService::NewStub(channel);
  auto events = ev1::EventService::NewStub(channel);
  auto people = pv1::ParticipantService::NewStub(channel);
  // --name: the prefix to use (the same data on two stacks), else one from the time.
  const std::string prefix = !absl::GetFlag(FLAGS_name).empty()
                                 ? absl::GetFlag(FLAGS_name)
                                 : absl::StrCat("reg-", absl::FormatTime("%H%M%S", absl::Now(), absl::UTCTimeZone()));
  ov1::CreateOrganisationRequest oreq;
  oreq.set_organisation_id(prefix + "-org");
  oreq.mutable_organisation()->set_display_name("Register benchmark organisation");
  ov1::CreateOrganisationResponse org;
  if (auto s = orgs->CreateOrganisation(Ctx().get(), oreq, &org); !s.ok()) {
    std::cerr << "create organisation: " << s.error_message() << "\n";
    return 1;
  }
  for (int i = 0; i < absl::GetFlag(FLAGS_register_events); ++i) {
    ev1::CreateEventRequest req;
    req.set_event_id(RegisterEventId(prefix, i));
    auto* e = req.mutable_event();
    e->set_title(absl::StrCat("Register benchmark training ", i));
    e->set_kind(ev1::EVENT_KIND_TRAINING);
    e->set_status(ev1::EVENT_STATUS_REGISTRATION_OPEN);
    e->mutable_start_date()->set_year(2026);
    e->mutable_start_date()->set_month(3);
    e->mutable_start_date()->set_day(1 + i % 28);
    *e->mutable_end_date() = e->start_date();
    e->add_hosts(org.organisation().name());
    ev1::CreateEventResponse resp;
    if (auto s = events->CreateEvent(Ctx().get(), req, &resp); !s.ok()) {
      std::cerr << "create event: " << s.error_message() << "\n";
      return 1;
    }
  }
  for (int i = 0; i < absl::GetFlag(FLAGS_register_participants); ++i) {
    pv1::CreateParticipantRequest req;
    req.set_participant_id(RegisterParticipantId(prefix, i));
    req.mutable_participant()->set_given_name("Trainee");
    req.mutable_participant()->set_family_name(absl::StrCat("Number ", i));
    req.mutable_participant()->set_organisation(org.organisation().name());
    pv1::CreateParticipantResponse resp;
    if (auto s = people->CreateParticipant(Ctx().get(), req, &resp); !s.ok()) {
      std::cerr << "create participant: " << s.error_message() << "\n";
      return 1;
    }
  }
  std::cout << prefix << "\n";
  return 0;
}

// The page token of ListParticipants page `page` (50 a page; the last page if there are fewer).
// Tokens do not depend on the page size, so most of the way is taken 1,000 rows at a time.
std::string DeepPageToken(const std::string& address, int page) {
  auto stub = pv1::ParticipantService::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  int64_t skipped = 0;
  const int64_t target = static_cast<int64_t>(page - 1) * 50;
  std::string token;
  while (skipped < target) {
    pv1::ListParticipantsRequest req;
    req.set_page_size(target - skipped >= 1000 ? 1000 : 50);
    req.set_page_token(token);
    pv1::ListParticipantsResponse resp;
    if (auto s = stub->ListParticipants(Ctx().get(), req, &resp); !s.ok()) {
      std::cerr << "paging to page " << page << ": " << s.error_message() << "\n";
      std::exit(1);
    }
    if (resp.next_page_token().empty()) break;  // fewer pages: stay on the last full one
    token = resp.next_page_token();
    skipped += req.page_size();
  }
  std::fprintf(stderr, "list-deep reads the page after row %lld\n", static_cast<long long>(skipped));
  return token;
}

kp::bench::Target MakeTarget(const std::string& scenario, const std::string& address, const std::string& name) {
  kp::bench::Target t;
  t.address = address;
  if (scenario == "health") {
    t.method = "/grpc.health.v1.Health/Check";
  } else if (scenario == "overview") {
    t.method = "/khartoum.gateway.v1.PortalService/GetEventOverview";
    gv1::GetEventOverviewRequest req;
    req.set_name(name);
    t.request = req.SerializeAsString();
  } else if (scenario == "statistics") {
    t.method = "/khartoum.gateway.v1.PortalService/GetStatistics";
    t.request = gv1::GetStatisticsRequest().SerializeAsString();  // every year
  } else if (scenario == "get-event") {
    t.method = "/khartoum.events.v1.EventService/GetEvent";
    ev1::GetEventRequest req;
    req.set_name(name);
    t.request = req.SerializeAsString();
  } else if (scenario == "participant-miss") {
    // GetParticipant of a name nobody has: every call a cache miss that goes to the backend.
    t.method = "/khartoum.participants.v1.ParticipantService/GetParticipant";
    const std::string run = absl::FormatTime("%H%M%S", absl::Now(), absl::UTCTimeZone());
    t.make_request = [run](int64_t n) {
      pv1::GetParticipantRequest req;
      req.set_name(absl::StrCat("participants/bench-missing-", run, "-", n));
      return req.SerializeAsString();
    };
  } else if (scenario == "list-first" || scenario == "list-deep") {
    t.method = "/khartoum.participants.v1.ParticipantService/ListParticipants";
    pv1::ListParticipantsRequest req;
    req.set_page_size(50);
    if (scenario == "list-deep") req.set_page_token(DeepPageToken(address, absl::GetFlag(FLAGS_list_deep_page)));
    t.request = req.SerializeAsString();
  } else if (scenario == "list-filtered") {
    t.method = "/khartoum.events.v1.EventService/ListEvents";
    ev1::ListEventsRequest req;
    req.set_page_size(50);
    req.set_filter("kind = TRAINING AND start_date >= \"2020-01-01\"");
    t.request = req.SerializeAsString();
  } else if (scenario == "register") {
    // Call n registers participant n / E for event n % E: a new pair every call until P × E.
    t.method = "/khartoum.participants.v1.ParticipantService/CreateRegistration";
    const int events = absl::GetFlag(FLAGS_register_events);
    const int participants = absl::GetFlag(FLAGS_register_participants);
    t.make_request = [name, events, participants](int64_t n) {
      pv1::CreateRegistrationRequest req;
      req.mutable_registration()->set_event(absl::StrCat("events/", RegisterEventId(name, static_cast<int>(n % events))));
      req.mutable_registration()->set_participant(
          absl::StrCat("participants/", RegisterParticipantId(name, static_cast<int>((n / events) % participants))));
      req.mutable_registration()->set_role(pv1::REGISTRATION_ROLE_TRAINEE);
      return req.SerializeAsString();
    };
  } else {
    std::cerr << "unknown scenario " << scenario << "\n";
    std::exit(2);
  }
  return t;
}

// What one repeat cost besides its latencies.
struct Costs {
  std::map<std::string, double> cpu_us_per_call;  // by --cpu_pids label
  double loadgen_cpu_share = 0;  // of every core of the machine, 0..1
  double redis_per_call = -1;    // Redis commands per call; -1 without --redis
};

struct Run {
  std::string label, scenario, address;
  kp::bench::Target target;
  std::vector<LoadResult> repeats;
  std::vector<Costs> costs;
  LoadResult median;
  Costs median_costs;
};

std::vector<std::pair<std::string, int>> LabelledPids(const std::string& flag) {
  std::vector<std::pair<std::string, int>> out;
  for (absl::string_view spec : absl::StrSplit(flag, ',', absl::SkipEmpty())) {
    std::vector<std::string> kv = absl::StrSplit(spec, absl::MaxSplits('=', 1));
    int pid = 0;
    if (kv.size() == 2 && absl::SimpleAtoi(kv[1], &pid)) out.emplace_back(kv[0], pid);
  }
  return out;
}

// A backend stopped (SIGSTOP) with calls hanging on it, for as long as this lives: what a
// gateway must survive without slowing anything else.
class Hanging {
 public:
  static std::unique_ptr<Hanging> Start(int pid, const std::string& spec, int calls) {
    std::vector<std::string> parts = absl::StrSplit(spec, absl::MaxSplits('@', 1));
    if (parts.size() != 2) {
      std::cerr << "bad --hang '" << spec << "': want SCENARIO@HOST:PORT\n";
      std::exit(2);
    }
    auto h = std::unique_ptr<Hanging>(new Hanging(pid, MakeTarget(parts[0], parts[1], "")));
    kill(pid, SIGSTOP);
    for (int i = 0; i < calls; ++i) h->StartCall();
    return h;
  }
  // Continues the backend and waits (up to a minute) for every hanging call to end.
  void Release() {
    kill(pid_, SIGCONT);
    absl::MutexLock lock(&mu_);
    auto done = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return pending_ == 0; };
    if (!mu_.AwaitWithTimeout(absl::Condition(&done), absl::Minutes(1))) {
      std::cerr << "calls to the stopped backend did not end within a minute of continuing it\n";
      std::_Exit(1);  // they still point here
    }
  }
  ~Hanging() { kill(pid_, SIGCONT); }

 private:
  Hanging(int pid, kp::bench::Target target)
      : pid_(pid), target_(std::move(target)),
        stub_(grpc::CreateChannel(target_.address, grpc::InsecureChannelCredentials())) {}
  void StartCall() {
    struct Call {
      grpc::ClientContext ctx;
      grpc::ByteBuffer request, response;
    };
    auto* call = new Call;
    call->ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::minutes(2));
    grpc::Slice slice(target_.make_request ? target_.make_request(sequence_++) : target_.request);
    call->request = grpc::ByteBuffer(&slice, 1);
    {
      absl::MutexLock lock(&mu_);
      ++pending_;
    }
    stub_.UnaryCall(&call->ctx, target_.method, grpc::StubOptions(), &call->request, &call->response,
                    [this, call](grpc::Status) {
                      delete call;
                      absl::MutexLock lock(&mu_);
                      --pending_;
                    });
  }

  const int pid_;
  const kp::bench::Target target_;
  grpc::GenericStub stub_;
  int64_t sequence_ = 0;
  absl::Mutex mu_;
  int pending_ ABSL_GUARDED_BY(mu_) = 0;
};

// Commands Redis has run so far, INFO left out (the readings themselves); -1 if unknown.
int64_t RedisCommands(kp::cache::RedisClient* redis) {
  if (redis == nullptr) return -1;
  auto info = redis->Command({"INFO", "commandstats"});
  if (!info.ok() || info->type != kp::cache::RedisReply::Type::kString) return -1;
  int64_t total = 0;
  for (absl::string_view line : absl::StrSplit(info->str, absl::ByAnyChar("\r\n"), absl::SkipEmpty())) {
    // cmdstat_get:calls=123,usec=...
    if (!absl::StartsWith(line, "cmdstat_") || absl::StartsWith(line, "cmdstat_info:")) continue;
    const auto calls = line.find("calls=");
    if (calls == absl::string_view::npos) continue;
    absl::string_view rest = line.substr(calls + 6);
    int64_t n = 0;
    if (absl::SimpleAtoi(rest.substr(0, rest.find(',')), &n)) total += n;
  }
  return total;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

int RunScenarios() {
  std::vector<Run> runs;
  for (absl::string_view spec : absl::StrSplit(absl::GetFlag(FLAGS_runs), ',', absl::SkipEmpty())) {
    std::vector<std::string> a = absl::StrSplit(spec, absl::MaxSplits('=', 1));
    std::vector<std::string> b = a.size() == 2 ? absl::StrSplit(a[1], absl::MaxSplits('@', 1)) : std::vector<std::string>{};
    if (b.size() != 2) {
      std::cerr << "bad --runs entry '" << spec << "': want LABEL=SCENARIO@HOST:PORT\n";
      return 2;
    }
    runs.push_back({a[0], b[0], b[1], MakeTarget(b[0], b[1], absl::GetFlag(FLAGS_name)), {}, {}, {}, {}});
  }
  if (runs.empty()) {
    std::cerr << "nothing to run: give --runs\n";
    return 2;
  }
  kp::bench::LoadOptions options;
  options.rate = absl::GetFlag(FLAGS_rate);
  options.concurrency = absl::GetFlag(FLAGS_concurrency);
  options.channels = absl::GetFlag(FLAGS_channels);
  options.duration = absl::GetFlag(FLAGS_duration);
  options.warmup = absl::GetFlag(FLAGS_warmup);
  const auto cpu_pids = LabelledPids(absl::GetFlag(FLAGS_cpu_pids));
  std::unique_ptr<kp::cache::RedisClient> redis;
  if (!absl::GetFlag(FLAGS_redis).empty()) {
    kp::cache::RedisOptions ro;
    ro.address = absl::GetFlag(FLAGS_redis);
    ro.command_timeout = absl::Seconds(2);
    ro.connect_timeout = absl::Seconds(2);
    redis = std::make_unique<kp::cache::RedisClient>(ro);
  }
  const double cores = static_cast<double>(std::max(1L, sysconf(_SC_NPROCESSORS_ONLN)));
  // Interleaved: every run once, then again, so slow drifts of a noisy machine hit all alike.
  for (int r = 0; r < absl::GetFlag(FLAGS_repeat); ++r) {
    for (auto& run : runs) {
      std::map<std::string, absl::Duration> cpu_before;
      for (const auto& [label, pid] : cpu_pids) cpu_before[label] = kp::bench::ProcessCpu(pid);
      const absl::Duration own_before = kp::bench::OwnCpu();
      const int64_t redis_before = RedisCommands(redis.get());
      const bool stop = absl::GetFlag(FLAGS_stop_pid) > 0 &&
                        absl::c_linear_search(absl::StrSplit(absl::GetFlag(FLAGS_stop_runs), ','), run.label);
      std::unique_ptr<Hanging> hanging;
      if (stop) hanging = Hanging::Start(absl::GetFlag(FLAGS_stop_pid), absl::GetFlag(FLAGS_hang), absl::GetFlag(FLAGS_hang_calls));
      run.repeats.push_back(kp::bench::RunLoad(run.target, options));
      if (hanging) hanging->Release();
      const auto& x = run.repeats.back();
      Costs costs;
      const double calls = static_cast<double>(std::max<int64_t>(1, x.completed));
      for (const auto& [label, pid] : cpu_pids) {
        costs.cpu_us_per_call[label] =
            absl::ToDoubleMicroseconds(kp::bench::ProcessCpu(pid) - cpu_before[label]) / calls;
      }
      costs.loadgen_cpu_share = absl::ToDoubleSeconds(kp::bench::OwnCpu() - own_before) /
                                (absl::ToDoubleSeconds(x.wall) * cores);
      if (redis_before >= 0) {
        const int64_t redis_after = RedisCommands(redis.get());
        if (redis_after >= 0) costs.redis_per_call = static_cast<double>(redis_after - redis_before) / calls;
      }
      run.costs.push_back(costs);
      std::fprintf(stderr, "  repeat %d %-16s %10.0f qps  p50 %.3f ms  p99 %.3f ms  load generator %.0f%% of the CPU\n",
                   r + 1, run.label.c_str(), x.qps, x.p50_ms, x.p99_ms, 100 * costs.loadgen_cpu_share);
    }
  }
  const Run* baseline = nullptr;
  for (auto& run : runs) {
    std::vector<double> qps, p50, p90, p99, mx;
    for (const auto& x : run.repeats) {
      qps.push_back(x.qps); p50.push_back(x.p50_ms); p90.push_back(x.p90_ms); p99.push_back(x.p99_ms); mx.push_back(x.max_ms);
      for (const auto& [code, n] : x.errors) run.median.errors[code] += n;
      run.median.calls += x.calls;
    }
    run.median.qps = Median(qps);
    run.median.p50_ms = Median(p50);
    run.median.p90_ms = Median(p90);
    run.median.p99_ms = Median(p99);
    run.median.max_ms = *std::max_element(mx.begin(), mx.end());
    std::vector<double> share, redis_calls;
    std::map<std::string, std::vector<double>> cpu;
    for (const auto& c : run.costs) {
      share.push_back(c.loadgen_cpu_share);
      redis_calls.push_back(c.redis_per_call);
      for (const auto& [label, us] : c.cpu_us_per_call) cpu[label].push_back(us);
    }
    run.median_costs.loadgen_cpu_share = Median(share);
    run.median_costs.redis_per_call = Median(redis_calls);
    for (auto& [label, v] : cpu) run.median_costs.cpu_us_per_call[label] = Median(v);
    if (run.label == absl::GetFlag(FLAGS_baseline)) baseline = &run;
  }
  const std::string load = options.rate > 0
                               ? absl::StrFormat("Open loop at %.0f calls/s (at most %d in flight)", options.rate,
                                                 options.concurrency)
                               : absl::StrFormat("Concurrency %d", options.concurrency);
  std::string extra_header, extra_align;
  for (const auto& [label, pid] : cpu_pids) {
    absl::StrAppend(&extra_header, " ", label, " CPU µs/call |");
    extra_align += "---:|";
  }
  extra_header += " load generator CPU |";
  extra_align += "---:|";
  if (redis) {
    extra_header += " Redis commands/call |";
    extra_align += "---:|";
  }
  std::string md = absl::StrFormat(
      "%s over %d connections, %d × %s measured per run (after %s warm-up), medians of the repeats. "
      "CPU per call counts every call of a run, warm-up included; the load generator's CPU is its "
      "share of all %d cores.\n\n"
      "| run | scenario | QPS | p50 ms | p90 ms | p99 ms | max ms | errors | QPS ÷ %s | p50 ÷ %s |%s\n"
      "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|%s\n",
      load, options.channels, absl::GetFlag(FLAGS_repeat), absl::FormatDuration(options.duration),
      absl::FormatDuration(options.warmup), static_cast<int>(cores), absl::GetFlag(FLAGS_baseline),
      absl::GetFlag(FLAGS_baseline), extra_header, extra_align);
  std::string json = absl::StrFormat(
      "{\"mode\":\"%s\",\"rate\":%.1f,\"concurrency\":%d,\"channels\":%d,\"repeat\":%d,\"duration_s\":%.1f,"
      "\"baseline\":\"%s\",\"runs\":[",
      options.rate > 0 ? "open-loop" : "closed-loop", options.rate, options.concurrency, options.channels,
      absl::GetFlag(FLAGS_repeat), absl::ToDoubleSeconds(options.duration), absl::GetFlag(FLAGS_baseline));
  for (size_t i = 0; i < runs.size(); ++i) {
    const auto& m = runs[i].median;
    int64_t errors = 0;
    for (const auto& [code, n] : m.errors) errors += n;
    const double qps_ratio = baseline && baseline->median.qps > 0 ? m.qps / baseline->median.qps : 0;
    const double p50_ratio = baseline && baseline->median.p50_ms > 0 ? m.p50_ms / baseline->median.p50_ms : 0;
    const Costs& mc = runs[i].median_costs;
    std::string extra;
    std::vector<std::string> cpu_json;
    for (const auto& [label, pid] : cpu_pids) {
      const auto it = mc.cpu_us_per_call.find(label);
      const double us = it == mc.cpu_us_per_call.end() ? 0 : it->second;
      absl::StrAppendFormat(&extra, " %.1f |", us);
      cpu_json.push_back(absl::StrFormat("\"%s\":%.2f", label, us));
    }
    absl::StrAppendFormat(&extra, " %.0f%% |", 100 * mc.loadgen_cpu_share);
    if (redis) absl::StrAppendFormat(&extra, " %.3f |", mc.redis_per_call);
    absl::StrAppendFormat(&md, "| %s | %s | %.0f | %.3f | %.3f | %.3f | %.3f | %d | %.3f | %.3f |%s\n", runs[i].label,
                          runs[i].scenario, m.qps, m.p50_ms, m.p90_ms, m.p99_ms, m.max_ms, errors, qps_ratio, p50_ratio,
                          extra);
    std::vector<std::string> errs;
    for (const auto& [code, n] : m.errors) errs.push_back(absl::StrFormat("\"%s\":%d", code, n));
    absl::StrAppendFormat(&json,
                          "%s{\"label\":\"%s\",\"scenario\":\"%s\",\"target\":\"%s\",\"qps\":%.1f,\"p50_ms\":%.4f,"
                          "\"p90_ms\":%.4f,\"p99_ms\":%.4f,\"max_ms\":%.4f,\"errors\":{%s},\"qps_ratio\":%.4f,"
                          "\"p50_ratio\":%.4f,\"cpu_us_per_call\":{%s},\"loadgen_cpu_share\":%.4f,"
                          "\"redis_commands_per_call\":%.4f}",
                          i ? "," : "", runs[i].label, runs[i].scenario, runs[i].address, m.qps, m.p50_ms, m.p90_ms,
                          m.p99_ms, m.max_ms, absl::StrJoin(errs, ","), qps_ratio, p50_ratio,
                          absl::StrJoin(cpu_json, ","), mc.loadgen_cpu_share, mc.redis_per_call);
  }
  json += "],\"peak_rss_mib\":{";
  std::string rss_md;
  bool first = true;
  for (const auto& [label, pid] : LabelledPids(absl::GetFlag(FLAGS_pids))) {
    const double mib = kp::bench::PeakRssMiB(pid);
    absl::StrAppendFormat(&json, "%s\"%s\":%.1f", first ? "" : ",", label, mib);
    absl::StrAppendFormat(&rss_md, "%s%s %.1f MiB", first ? "" : ", ", label, mib);
    first = false;
  }
  json += "}}\n";
  if (!rss_md.empty()) absl::StrAppend(&md, "\nPeak RSS: ", rss_md, ".\n");
  std::cout << md;
  if (!absl::GetFlag(FLAGS_json_out).empty()) std::ofstream(absl::GetFlag(FLAGS_json_out)) << json;
  if (!absl::GetFlag(FLAGS_markdown_out).empty()) std::ofstream(absl::GetFlag(FLAGS_markdown_out)) << md;
  int64_t total_errors = 0;
  for (const auto& run : runs) for (const auto& [code, n] : run.median.errors) total_errors += n;
  return total_errors == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<char*> args = kp::config::ParseFlags(argc, argv, "kp-bench setup-overview | run  (see the source header)");
  const std::string command = args.size() > 1 ? args[1] : "";
  if (command == "setup-overview") return SetupOverview();
  if (command == "setup-register") return SetupRegister();
  if (command == "generate") return kp::bench::GenerateDataset(absl::GetFlag(FLAGS_target));
  if (command == "run") return RunScenarios();
  std::cerr << "usage: kp-bench setup-overview|run [flags]; --help lists them\n";
  return 2;
}
