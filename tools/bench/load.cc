// The load loop: see load.h.
#include "tools/bench/load.h"

#include <algorithm>
#include <atomic>
#include <fstream>
#include <memory>

#include <grpcpp/create_channel.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/support/channel_arguments.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
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

 private:
  void Done(const grpc::Status& s) {
    const absl::Time now = absl::Now();
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

}  // namespace

LoadResult RunLoad(const Target& target, const LoadOptions& options) {
  std::vector<std::unique_ptr<grpc::GenericStub>> stubs;
  for (int c = 0; c < options.channels; ++c) {
    grpc::ChannelArguments args;
    args.SetInt("kp.bench.channel", c);  // distinct arguments: a connection of its own
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    stubs.push_back(std::make_unique<grpc::GenericStub>(
        grpc::CreateCustomChannel(target.address, grpc::InsecureChannelCredentials(), args)));
  }
  const absl::Time start = absl::Now();
  const absl::Time measure_from = start + options.warmup;
  const absl::Time end = measure_from + options.duration;
  std::atomic<int> running{options.concurrency};
  absl::Notification all_done;
  static std::atomic<int64_t> sequence{0};  // across runs too: generated requests never repeat
  std::vector<std::unique_ptr<Slot>> slots;
  for (int i = 0; i < options.concurrency; ++i) {
    slots.push_back(std::make_unique<Slot>(stubs[i % stubs.size()].get(), target, measure_from, end, &running, &all_done, &sequence));
  }
  for (auto& s : slots) s->Start();
  all_done.WaitForNotification();

  LoadResult result;
  std::vector<double> all;
  for (auto& s : slots) {
    all.insert(all.end(), s->latencies_ms.begin(), s->latencies_ms.end());
    for (auto& [code, n] : s->errors) result.errors[code] += n;
  }
  std::sort(all.begin(), all.end());
  result.calls = static_cast<int64_t>(all.size());
  result.qps = static_cast<double>(all.size()) / absl::ToDoubleSeconds(options.duration);
  auto pct = [&](double p) { return all.empty() ? 0.0 : all[std::min(all.size() - 1, static_cast<size_t>(p * all.size()))]; };
  result.p50_ms = pct(0.50);
  result.p90_ms = pct(0.90);
  result.p99_ms = pct(0.99);
  result.max_ms = all.empty() ? 0 : all.back();
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

}  // namespace kp::bench
