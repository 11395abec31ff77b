// WorkerPool: per-key queues drained in turn by a fixed set of threads.
#include "common/worker_pool.h"

#include <algorithm>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"

ABSL_FLAG(uint32_t, workers_per_principal, 0,
          "Worker threads one principal's calls may occupy at once (0: half of --workers, at least "
          "1; at most "
          "--workers), so that others' calls still find a free thread while one principal floods "
          "the server.");
ABSL_FLAG(uint32_t, queue_per_principal, 100,
          "Calls of one principal that may wait for a worker thread; more are refused with "
          "RESOURCE_EXHAUSTED.");

namespace kp {

WorkerPool::Limits WorkerPool::LimitsFromFlags(int threads) {
  const uint32_t share = absl::GetFlag(FLAGS_workers_per_principal);
  const int most = std::max(threads, 1);
  return Limits{
      .running_per_key =
          share == 0 ? std::max(threads / 2, 1) : static_cast<int>(std::min<uint32_t>(share, most)),
      .queued_per_key = absl::GetFlag(FLAGS_queue_per_principal),
  };
}

void WorkerPool::ValidateFlags(config::Validator& v, int threads) {
  v.Check(static_cast<int>(absl::GetFlag(FLAGS_workers_per_principal)) <= threads,
          "--workers_per_principal must be 0 (half of --workers) to --workers");
  v.Check(absl::GetFlag(FLAGS_queue_per_principal) >= 1 && absl::GetFlag(FLAGS_queue_per_principal) <= 1000000,
          "--queue_per_principal must be 1 to 1000000 (calls of one principal that may wait for a worker)");
}

WorkerPool::WorkerPool(int threads, Limits limits) : threads_count_(threads), limits_(limits) {
  threads_.reserve(threads);
  for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Loop(); });
}

WorkerPool::~WorkerPool() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  for (auto& t : threads_) t.join();
}

int WorkerPool::RunningLimit(const Lane& lane) const {
  return lane.key.empty() ? threads_count_ : limits_.running_per_key;
}

void WorkerPool::MarkReady(Lane& lane) {
  if (lane.ready || lane.queue.empty() || lane.running >= RunningLimit(lane)) return;
  lane.ready = true;
  ready_.push_back(&lane);
}

absl::Status WorkerPool::Schedule(absl::string_view key, std::function<void()> task) {
  absl::MutexLock lock(&mu_);
  auto [it, inserted] = lanes_.try_emplace(std::string(key));
  Lane& lane = it->second;
  if (inserted) lane.key = it->first;
  if (!lane.key.empty() && lane.queue.size() >= limits_.queued_per_key) {
    absl::Status refused = absl::ResourceExhaustedError(absl::StrCat(
        "'", key, "' already has ", lane.queue.size(), " calls waiting and ", lane.running,
        " running on this server, its share (--queue_per_principal, --workers_per_principal); "
        "retry later"));
    if (lane.running == 0 && lane.queue.empty()) lanes_.erase(it);  // nothing of it left to keep
    return refused;
  }
  lane.queue.push_back(std::move(task));
  MarkReady(lane);
  return absl::OkStatus();
}

void WorkerPool::Loop() {
  while (true) {
    std::function<void()> task;
    Lane* lane = nullptr;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]()
                       ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || !ready_.empty(); };
      mu_.Await(absl::Condition(&ready));
      // Stopping and nothing may start: a lane still queued is at its share, and the threads
      // running its tasks take its next ones when they finish.
      if (ready_.empty()) return;
      lane = ready_.front();
      ready_.pop_front();
      lane->ready = false;
      task = std::move(lane->queue.front());
      lane->queue.pop_front();
      ++lane->running;
      MarkReady(*lane);  // its next task takes its turn after the other lanes'
    }
    task();
    task = nullptr;  // what it captured is released outside the lock
    absl::MutexLock lock(&mu_);
    --lane->running;
    if (lane->running == 0 && lane->queue.empty()) {
      lanes_.erase(lanes_.find(lane->key));
    } else {
      MarkReady(*lane);
    }
  }
}

}  // namespace kp
