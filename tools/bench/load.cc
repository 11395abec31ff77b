// The load loop: see load.h.
#include "tools/bench/load.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <memory>

#include <grpcpp/create_channel.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/support/channel_arguments.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "common/status.h"

namespace kp::bench {
namespace {


// One in-flight slot: issues a call, and on completion the next, until the end time.
class Slot {
 public:
  Slot(grpc::GenericStub* stub, const Target& target, absl::Time measure_from, absl::Time end,
       std::atomic<int>* running, absl::Notification* all_done, std::atomic<int64_t>* sequence)
      : stub_(stub), target_(target), measure_from_(measure_from), end_(end), running_(running),
        all_done_(all_done), sequence_(sequence) {
    grpc::Slice slice(target.request);
    request_ = grpc::ByteBuffer(&slice, 1);
  }

  void Start() {
    if (target_.make_request) {
      grpc::Slice slice(target_.make_request(sequence_->fetch_add(1)));
      request_ = grpc::ByteBuffer(&slice, 1);
    }
    ctx_ = std::make_unique<grpc::ClientContext>();
    ctx_->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    start_ = absl::Now();
    stub_->UnaryCall(ctx_.get(), target_.method, grpc::StubOptions(), &request_, &response_,
                     [this](grpc::Status s) { Done(s); });
  }

  std::vector<double> latencies_ms;
  std::map<std::string, int64_t> errors;
  int64_t completed = 0;

 private:
  void Done(const grpc::Status& s) {
    const absl::Time now = absl::Now();
    ++completed;
    if (start_ >= measure_from_ && now <= end_) {
      latencies_ms.push_back(absl::ToDoubleMilliseconds(now - start_));
      if (!s.ok()) ++errors[StatusCodeName(static_cast<int>(s.error_code()))];
    }
    if (now < end_) {
      Start();
    } else if (running_->fetch_sub(1) == 1) {
      all_done_->Notify();
    }
  }

  grpc::GenericStub* stub_;
  const Target& target_;
  absl::Time measure_from_, end_, start_;
  std::atomic<int>* running_;
  absl::Notification* all_done_;
  std::atomic<int64_t>* sequence_;
  std::unique_ptr<grpc::ClientContext> ctx_;
  grpc::ByteBuffer request_, response_;
};

// Open loop: one call, started at its scheduled time by the pacer; deletes itself when done.
class OpenCall {
 public:
  struct Shared {
    absl::Mutex mu;
    std::vector<double> latencies_ms ABSL_GUARDED_BY(mu);
    std::map<std::string, int64_t> errors ABSL_GUARDED_BY(mu);
    std::atomic<int> in_flight{0};
    std::atomic<int64_t> completed{0};
    absl::Time measure_from, end;
  };
  OpenCall(Shared* shared, grpc::GenericStub* stub, const std::string& method, std::string request,
           absl::Time scheduled)
      : shared_(shared), scheduled_(scheduled) {
    grpc::Slice slice(request);
    request_ = grpc::ByteBuffer(&slice, 1);
    ctx_.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    ++shared_->in_flight;
    stub->UnaryCall(&ctx_, method, grpc::StubOptions(), &request_, &response_, [this](grpc::Status s) {
      const absl::Time now = absl::Now();
      if (scheduled_ >= shared_->measure_from && scheduled_ < shared_->end) {
        absl::MutexLock lock(&shared_->mu);
        shared_->latencies_ms.push_back(absl::ToDoubleMilliseconds(now - scheduled_));
        if (!s.ok()) ++shared_->errors[StatusCodeName(static_cast<int>(s.error_code()))];
      }
      ++shared_->completed;
      --shared_->in_flight;
      delete this;
    });
  }

 private:
  Shared* shared_;
  absl::Time scheduled_;
  grpc::ClientContext ctx_;
  grpc::ByteBuffer request_, response_;
};

LoadResult Summarize(std::vector<double> all, std::map<std::string, int64_t> errors, absl::Duration duration) {
  LoadResult result;
  result.errors = std::move(errors);
  std::sort(all.begin(), all.end());
  result.calls = static_cast<int64_t>(all.size());
  result.qps = static_cast<double>(all.size()) / absl::ToDoubleSeconds(duration);
  auto pct = [&](double p) { return all.empty() ? 0.0 : all[std::min(all.size() - 1, static_cast<size_t>(p * all.size()))]; };
  result.p50_ms = pct(0.50);
  result.p90_ms = pct(0.90);
  result.p99_ms = pct(0.99);
  result.max_ms = all.empty() ? 0 : all.back();
  return result;
}

std::vector<std::unique_ptr<grpc::GenericStub>> MakeStubs(const Target& target, int channels) {
  std::vector<std::unique_ptr<grpc::GenericStub>> stubs;
  for (int c = 0; c < channels; ++c) {
    grpc::ChannelArguments args;
    args.SetInt("kp.bench.channel", c);  // distinct arguments: a connection of its own
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    args.SetMaxReceiveMessageSize(64 << 20);
    stubs.push_back(std::make_unique<grpc::GenericStub>(
        grpc::CreateCustomChannel(target.address, grpc::InsecureChannelCredentials(), args)));
  }
  return stubs;
}

std::atomic<int64_t> g_sequence{0};  // across runs too: generated requests never repeat

LoadResult RunOpenLoop(const Target& target, const LoadOptions& options) {
  auto stubs = MakeStubs(target, std::max(1, options.channels));
  OpenCall::Shared shared;
  const absl::Time start = absl::Now();
  shared.measure_from = start + options.warmup;
  shared.end = shared.measure_from + options.duration;
  const absl::Duration interval = absl::Seconds(1.0 / options.rate);
  int64_t overload = 0;
  for (int64_t k = 0;; ++k) {
    const absl::Time scheduled = start + interval * k;
    if (scheduled >= shared.end) break;
    const absl::Time now = absl::Now();
    if (scheduled > now) absl::SleepFor(scheduled - now);  // pacing: the schedule, not a wait for a result
    if (shared.in_flight.load() >= options.concurrency) {
      if (scheduled >= shared.measure_from) ++overload;
      continue;
    }
    new OpenCall(&shared, stubs[k % stubs.size()].get(), target.method,
                 target.make_request ? target.make_request(g_sequence++) : target.request, scheduled);
  }
  const absl::Time drain_deadline = absl::Now() + absl::Seconds(35);
  while (shared.in_flight.load() > 0 && absl::Now() < drain_deadline) {
    absl::SleepFor(absl::Milliseconds(1));  // the last calls' answers (each has a 30 s deadline)
  }
  absl::MutexLock lock(&shared.mu);
  if (overload > 0) shared.errors["CLIENT_OVERLOAD"] += overload;
  LoadResult result = Summarize(std::move(shared.latencies_ms), std::move(shared.errors), options.duration);
  result.completed = shared.completed;
  result.wall = absl::Now() - start;
  return result;
}

}  // namespace

LoadResult RunLoad(const Target& target, const LoadOptions& options) {
  if (options.rate > 0) return RunOpenLoop(target, options);
  auto stubs = MakeStubs(target, options.channels);
  const absl::Time start = absl::Now();
  const absl::Time measure_from = start + options.warmup;
  const absl::Time end = measure_from + options.duration;
  std::atomic<int> running{options.concurrency};
  absl::Notification all_done;
  std::vector<std::unique_ptr<Slot>> slots;
  for (int i = 0; i < options.concurrency; ++i) {
    slots.push_back(std::make_unique<Slot>(stubs[i % stubs.size()].get(), target, measure_from, end, &running, &all_done, &g_sequence));
  }
  for (auto& s : slots) s->Start();
  all_done.WaitForNotification();

  std::vector<double> all;
  std::map<std::string, int64_t> errors;
  int64_t completed = 0;
  for (auto& s : slots) {
    all.insert(all.end(), s->latencies_ms.begin(), s->latencies_ms.end());
    for (auto& [code, n] : s->errors) errors[code] += n;
    completed += s->completed;
  }
  LoadResult result = Summarize(std::move(all), std::move(errors), options.duration);
  result.completed = completed;
  result.wall = absl::Now() - start;
  return result;
}

double PeakRssMiB(int pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) {
      int64_t kib = 0;
      std::string digits;
      for (char c : line) if (c >= '0' && c <= '9') digits.push_back(c);
      if (absl::SimpleAtoi(digits, &kib)) return static_cast<double>(kib) / 1024.0;
    }
  }
  return 0;
}

namespace {

// utime + stime of /proc/<pid>/stat, in clock ticks; -1 if unreadable.
int64_t CpuTicks(int pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::string stat;
  if (!std::getline(in, stat)) return -1;
  // The command name (field 2) may hold spaces: count fields after its closing parenthesis.
  const auto close = stat.rfind(')');
  if (close == std::string::npos) return -1;
  std::vector<std::string> fields = absl::StrSplit(stat.substr(close + 2), ' ');
  int64_t utime = 0, stime = 0;  // fields 14 and 15 of the line: 12 and 13 after the name
  if (fields.size() < 13 || !absl::SimpleAtoi(fields[11], &utime) || !absl::SimpleAtoi(fields[12], &stime)) return -1;
  return utime + stime;
}

}  // namespace

absl::Duration ProcessCpu(int pid) {
  int64_t ticks = std::max<int64_t>(0, CpuTicks(pid));
  // Its children: every process whose parent it is (one level: nginx's workers, HAProxy's none).
  std::ifstream children(absl::StrCat("/proc/", pid, "/task/", pid, "/children"));
  int child = 0;
  while (children >> child) ticks += std::max<int64_t>(0, CpuTicks(child));
  return absl::Seconds(static_cast<double>(ticks) / static_cast<double>(sysconf(_SC_CLK_TCK)));
}

absl::Duration OwnCpu() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return absl::DurationFromTimeval(usage.ru_utime) + absl::DurationFromTimeval(usage.ru_stime);
}

}  // namespace kp::bench
