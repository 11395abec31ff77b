// Replicas: two processes of each backend on one PostgreSQL database, the gateway and the
// services reaching them through comma lists with round_robin and client-side health checks.
// A replica killed or stopped under load costs no read and no acknowledged write, both
// replicas serve before and after, and capacity holds across them.
#include <signal.h>
#include <sys/wait.h>

#include <atomic>
#include <latch>
#include <random>
#include <thread>

#include <grpcpp/create_channel.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "tests/integration/test_util.h"

namespace kp::testing {
namespace {

const char* const kServices[] = {"organisations", "events", "participants"};

// Calls of the service's own API (not health checks) this process has answered.
double ApiCalls(ServiceProcess& p) {
  return SumSamples(Scrape(p.metrics_port()), "kp_grpc_server_handled_total", "method=\"/khartoum.");
}

// Polls until every replica of every service has answered more API calls than `before`
// (indexed [replica][service]); false at the deadline.
bool EveryReplicaServes(const std::vector<std::vector<double>>& before, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    bool all = true;
    for (int r = 0; r < S().replicas(); ++r) {
      for (int s = 0; s < 3; ++s) all = all && ApiCalls(S().replica(kServices[s], r)) > before[r][s];
    }
    if (all) return true;
    absl::SleepFor(absl::Milliseconds(50));  // polling metrics, bounded by the deadline
  }
  return false;
}

std::vector<std::vector<double>> CallsNow() {
  std::vector<std::vector<double>> out(S().replicas(), std::vector<double>(3));
  for (int r = 0; r < S().replicas(); ++r) {
    for (int s = 0; s < 3; ++s) out[r][s] = ApiCalls(S().replica(kServices[s], r));
  }
  return out;
}

// Reads and writes through the gateway from several threads until stopped; records every
// failure by kind.
class Load {
 public:
  explicit Load(std::string host) : host_(std::move(host)), prefix_(UniqueId("load")) {
    auto channel = grpc::CreateChannel(S().gateway().address(), grpc::InsecureChannelCredentials());
    org_ = ov1::OrganisationService::NewStub(channel);
    ev_ = ev1::EventService::NewStub(channel);
    part_ = pv1::ParticipantService::NewStub(channel);
    for (int w = 0; w < 2; ++w) threads_.emplace_back([this, w] { Write(w); });
    for (int r = 0; r < 3; ++r) threads_.emplace_back([this, r] { Read(r); });
  }
  ~Load() { Stop(); }
  void Stop() {
    stop_ = true;
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
  }
  int writes() const { return writes_ok_; }
  int reads() const { return reads_ok_; }
  // Waits until `n` more writes and reads have succeeded (false at the deadline).
  bool Progress(int n, absl::Duration timeout) {
    const int w = writes_ok_, r = reads_ok_;
    const absl::Time deadline = absl::Now() + timeout;
    while (absl::Now() < deadline) {
      if (writes_ok_ >= w + n && reads_ok_ >= r + n) return true;
      absl::SleepFor(absl::Milliseconds(20));  // polling counters, bounded by the deadline
    }
    return false;
  }
  std::vector<std::string> read_failures() {
    absl::MutexLock lock(&mu_);
    return read_failures_;
  }
  std::vector<std::string> write_failures() {  // other than UNAVAILABLE
    absl::MutexLock lock(&mu_);
    return write_failures_;
  }
  int writes_unavailable() const { return writes_unavailable_; }
  std::vector<std::pair<std::string, std::string>> acknowledged() {  // (kind, name)
    absl::MutexLock lock(&mu_);
    return acknowledged_;
  }

 private:
  std::unique_ptr<grpc::ClientContext> Context() {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    return ctx;
  }

  void Record(const std::string& kind, const grpc::Status& s, const std::string& name) {
    absl::MutexLock lock(&mu_);
    if (s.ok()) {
      ++writes_ok_;
      acknowledged_.emplace_back(kind, name);
    } else if (s.error_code() == grpc::StatusCode::UNAVAILABLE) {
      ++writes_unavailable_;
    } else {
      write_failures_.push_back(absl::StrCat(kind, " ", name, ": ", s.error_code(), " ", s.error_message()));
    }
  }

  void Write(int w) {
    for (int i = 0; !stop_; ++i) {
      const std::string id = absl::StrFormat("%s-%d-%d", prefix_, w, i);
      switch (i % 3) {
        case 0: {
          ov1::CreateOrganisationRequest req;
          req.set_organisation_id(id);
          req.mutable_organisation()->set_display_name("Replica load " + id);
          ov1::CreateOrganisationResponse resp;
          Record("organisation", org_->CreateOrganisation(Context().get(), req, &resp), "organisations/" + id);
          break;
        }
        case 1: {
          ev1::CreateEventRequest req;
          req.set_event_id(id);
          *req.mutable_event() = ValidEvent(host_);
          ev1::CreateEventResponse resp;
          Record("event", ev_->CreateEvent(Context().get(), req, &resp), "events/" + id);
          break;
        }
        default: {
          pv1::CreateParticipantRequest req;
          req.set_participant_id(id);
          req.mutable_participant()->set_given_name("Replica");
          req.mutable_participant()->set_family_name(id);
          req.mutable_participant()->set_organisation(host_);
          pv1::CreateParticipantResponse resp;
          Record("participant", part_->CreateParticipant(Context().get(), req, &resp), "participants/" + id);
        }
      }
    }
  }

  void Read(int r) {
    std::mt19937 rng(r);
    while (!stop_) {
      std::pair<std::string, std::string> target;
      {
        absl::MutexLock lock(&mu_);
        if (!acknowledged_.empty()) target = acknowledged_[rng() % acknowledged_.size()];
      }
      grpc::Status s;
      if (target.first == "organisation") {
        ov1::GetOrganisationRequest req;
        req.set_name(target.second);
        ov1::GetOrganisationResponse resp;
        s = org_->GetOrganisation(Context().get(), req, &resp);
      } else if (target.first == "event") {
        ev1::GetEventRequest req;
        req.set_name(target.second);
        ev1::GetEventResponse resp;
        s = ev_->GetEvent(Context().get(), req, &resp);
      } else if (target.first == "participant") {
        pv1::GetParticipantRequest req;
        req.set_name(target.second);
        pv1::GetParticipantResponse resp;
        s = part_->GetParticipant(Context().get(), req, &resp);
      } else {
        ev1::ListEventsRequest req;
        req.set_page_size(5);
        ev1::ListEventsResponse resp;
        s = ev_->ListEvents(Context().get(), req, &resp);
      }
      if (s.ok()) {
        ++reads_ok_;
      } else {
        absl::MutexLock lock(&mu_);
        read_failures_.push_back(absl::StrCat(target.second, ": ", s.error_code(), " ", s.error_message()));
      }
    }
  }

  std::string host_;
  std::string prefix_;
  std::unique_ptr<ov1::OrganisationService::Stub> org_;
  std::unique_ptr<ev1::EventService::Stub> ev_;
  std::unique_ptr<pv1::ParticipantService::Stub> part_;
  std::atomic<bool> stop_{false};
  std::atomic<int> writes_ok_{0}, reads_ok_{0}, writes_unavailable_{0};
  absl::Mutex mu_;
  std::vector<std::pair<std::string, std::string>> acknowledged_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> read_failures_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> write_failures_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> threads_;
};

// Every acknowledged write is there, read from the other replica.
void ExpectAllPresent(const std::vector<std::pair<std::string, std::string>>& acknowledged) {
  int missing = 0;
  for (const auto& [kind, name] : acknowledged) {
    grpc::Status s;
    if (kind == "organisation") {
      ov1::GetOrganisationRequest req;
      req.set_name(name);
      ov1::GetOrganisationResponse resp;
      s = S().org().GetOrganisation(Ctx().get(), req, &resp);
    } else if (kind == "event") {
      ev1::GetEventRequest req;
      req.set_name(name);
      ev1::GetEventResponse resp;
      s = S().ev().GetEvent(Ctx().get(), req, &resp);
    } else {
      pv1::GetParticipantRequest req;
      req.set_name(name);
      pv1::GetParticipantResponse resp;
      s = S().part().GetParticipant(Ctx().get(), req, &resp);
    }
    if (!s.ok()) ++missing;
    EXPECT_TRUE(s.ok()) << name << " was acknowledged but reads " << s.error_message();
  }
  EXPECT_EQ(missing, 0) << "of " << acknowledged.size() << " acknowledged writes";
}

TEST(Replicas, KillAndRestartOneReplicaOfEachUnderLoad_NoFailedReadNoLostWrite) {
  ASSERT_EQ(S().replicas(), 2);
  const auto host = CreateOrganisation(UniqueId("host"));
  const auto before = CallsNow();
  Load load(host.name());
  ASSERT_TRUE(load.Progress(30, absl::Seconds(20)));
  EXPECT_TRUE(EveryReplicaServes(before, absl::Seconds(10))) << "both replicas serve before the kill";

  for (const char* service : kServices) S().replica(service, 1).Stop(SIGKILL);
  EXPECT_TRUE(load.Progress(60, absl::Seconds(20))) << "the surviving replicas carry the load";

  for (const char* service : kServices) ASSERT_TRUE(S().replica(service, 1).Start().ok()) << service;
  const auto restarted = CallsNow();  // the restarted processes count from zero
  EXPECT_TRUE(EveryReplicaServes(restarted, absl::Seconds(20))) << "the restarted replicas get traffic again";
  ASSERT_TRUE(load.Progress(30, absl::Seconds(20)));
  load.Stop();

  EXPECT_TRUE(load.read_failures().empty()) << load.read_failures().size() << " failed reads, first: "
                                            << load.read_failures().front();
  EXPECT_TRUE(load.write_failures().empty()) << "writes may fail only UNAVAILABLE; first: "
                                             << load.write_failures().front();
  ExpectAllPresent(load.acknowledged());
  std::printf("replicas: %d writes acknowledged, %d UNAVAILABLE (not acknowledged), %d reads, 0 failed\n",
              load.writes(), load.writes_unavailable(), load.reads());
}

TEST(Replicas, SigtermOneReplicaOfEachUnderLoad_OnlyRetryableCodesAndExitWithinDrain) {
  const auto host = CreateOrganisation(UniqueId("host"));
  Load load(host.name());
  ASSERT_TRUE(load.Progress(30, absl::Seconds(20)));
  // --lame_duck=1s: health NOT_SERVING first, so round_robin moves away; then the drain
  // (--drain_timeout=2s) lets calls in flight finish.
  const absl::Time start = absl::Now();
  std::vector<std::thread> stops;
  std::atomic<int> clean_exits{0};
  for (const char* service : kServices) {
    stops.emplace_back([&, service] {
      const int status = S().replica(service, 1).Stop(SIGTERM);
      if (WIFEXITED(status) && WEXITSTATUS(status) == 0) ++clean_exits;
    });
  }
  for (auto& t : stops) t.join();
  const absl::Duration took = absl::Now() - start;
  EXPECT_EQ(clean_exits.load(), 3);
  EXPECT_LT(took, absl::Seconds(1 + 2 + 2)) << "lame duck + drain deadline + slack";
  EXPECT_TRUE(load.Progress(30, absl::Seconds(20)));
  load.Stop();
  EXPECT_TRUE(load.read_failures().empty()) << load.read_failures().front();
  EXPECT_TRUE(load.write_failures().empty()) << load.write_failures().front();
  ExpectAllPresent(load.acknowledged());
  std::printf("SIGTERM under load: exited in %s; %d writes, %d UNAVAILABLE, %d reads, 0 failed\n",
              absl::FormatDuration(took).c_str(), load.writes(), load.writes_unavailable(), load.reads());
  for (const char* service : kServices) ASSERT_TRUE(S().replica(service, 1).Start().ok()) << service;
}

TEST(Replicas, HundredConcurrentRegistrationsForCapacityTenOverTwoReplicas_LeaveExactlyTen) {
  const auto org = CreateOrganisation(UniqueId("org"));
  const auto event = CreateEvent(UniqueId("evt"), {org.name()}, /*capacity=*/10);
  std::vector<std::string> people;
  for (int i = 0; i < 100; ++i) people.push_back(CreateParticipant(UniqueId("crowd"), org.name()).name());
  std::vector<std::unique_ptr<pv1::ParticipantService::Stub>> replicas;
  for (int r = 0; r < 2; ++r) {
    replicas.push_back(pv1::ParticipantService::NewStub(
        grpc::CreateChannel(S().replica("participants", r).address(), grpc::InsecureChannelCredentials())));
  }
  std::atomic<int> ok{0}, full{0};
  std::atomic<int> ok_by_replica[2] = {0, 0};
  absl::Mutex mu;
  std::vector<std::string> other;
  std::latch ready(100);
  std::vector<std::thread> threads;
  for (int i = 0; i < 100; ++i) {
    threads.emplace_back([&, i] {
      pv1::CreateRegistrationRequest req;
      req.mutable_registration()->set_event(event.name());
      req.mutable_registration()->set_participant(people[i]);
      req.mutable_registration()->set_role(pv1::REGISTRATION_ROLE_DELEGATE);
      pv1::CreateRegistrationResponse resp;
      ready.arrive_and_wait();  // all at once
      grpc::Status s = replicas[i % 2]->CreateRegistration(Ctx().get(), req, &resp);
      if (s.ok()) {
        ++ok;
        ++ok_by_replica[i % 2];
      } else if (s.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) {
        ++full;
      } else {
        absl::MutexLock lock(&mu);
        other.push_back(absl::StrCat(s.error_code(), " ", s.error_message()));
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 10);
  EXPECT_EQ(full.load(), 90);
  EXPECT_TRUE(other.empty()) << other.front();
  pv1::ListRegistrationsRequest list;
  list.set_filter(absl::StrCat("event = \"", event.name(), "\""));
  list.set_page_size(100);
  pv1::ListRegistrationsResponse resp;
  ASSERT_TRUE(S().part().ListRegistrations(Ctx().get(), list, &resp).ok());
  EXPECT_EQ(resp.registrations_size(), 10);
  std::printf("capacity 10: accepted %d by replica 0 and %d by replica 1\n", ok_by_replica[0].load(),
              ok_by_replica[1].load());
}

}  // namespace
}  // namespace kp::testing
