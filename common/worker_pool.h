// A fixed pool of threads for blocking work (database, outbound calls), so gRPC's callback
// threads never wait on I/O. Work is scheduled fairly among keys (the calling principals): one
// key runs on at most a share of the threads and waits in a bounded queue of its own, so a
// principal flooding a server with expensive calls slows its own calls, not everyone's.
#pragma once

#include <cstddef>
#include <deque>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/node_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "common/config.h"
#include "absl/synchronization/mutex.h"

namespace kp {

class WorkerPool {
 public:
  struct Limits {
    int running_per_key = 1;      // threads one key's tasks may occupy at once
    size_t queued_per_key = 100;  // tasks of one key waiting for a thread; more are refused
  };
  // Limits from --workers_per_principal and --queue_per_principal.
  static Limits LimitsFromFlags(int threads);
  // Checks those flags for a pool of `threads`.
  static void ValidateFlags(config::Validator& v, int threads);

  explicit WorkerPool(int threads) : WorkerPool(threads, LimitsFromFlags(threads)) {}
  WorkerPool(int threads, Limits limits);
  ~WorkerPool();  // finishes queued work, then joins
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Runs `task` on a thread once `key` is below its share, taking turns with the other keys
  // that wait; RESOURCE_EXHAUSTED (and `task` dropped) when `key` already has its bound of tasks
  // waiting. The empty key is nobody in particular (authentication disabled: every caller is
  // the same anonymous admin) and may use every thread, with an unbounded queue.
  absl::Status Schedule(absl::string_view key, std::function<void()> task);

 private:
  // One key's tasks.
  struct Lane {
    std::string key;
    std::deque<std::function<void()>> queue;
    int running = 0;
    bool ready = false;  // in ready_
  };
  int RunningLimit(const Lane& lane) const;
  // Puts `lane` at the back of ready_ if a task of it may start now.
  void MarkReady(Lane& lane) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Loop();

  const int threads_count_;
  const Limits limits_;
  absl::Mutex mu_;
  // Keys with tasks queued or running (nodes: ready_ points into them).
  absl::node_hash_map<std::string, Lane> lanes_ ABSL_GUARDED_BY(mu_);
  // Lanes whose next task may start, in turn: a lane goes to the back after each start.
  std::deque<Lane*> ready_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace kp
