// A load generator over several channels with gRPC's callback API, for a fixed time: closed
// loop (a fixed number of calls in flight) or open loop (a fixed rate); records every latency.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/time/time.h"

namespace kp::bench {

struct Target {
  std::string address;
  std::string method;   // "/pkg.Service/Method"
  std::string request;  // serialized request message
  // When set, builds the n-th request instead (n counts every call of the run, from 0).
  std::function<std::string(int64_t n)> make_request;
};

struct LoadOptions {
  // > 0: open loop, this many calls per second started on schedule whatever the answers
  // (latency counts from the scheduled start, so a server that falls behind is charged for the
  // queue, not hidden by it); concurrency is then the most calls in flight before new ones are
  // counted as errors (code "CLIENT_OVERLOAD") instead of sent. 0: closed loop, `concurrency`
  // calls always in flight.
  double rate = 0;
  int concurrency = 64;
  int channels = 4;
  absl::Duration duration = absl::Seconds(5);
  absl::Duration warmup = absl::Seconds(1);
};

struct LoadResult {
  int64_t calls = 0;      // measured (after the warm-up)
  int64_t completed = 0;  // every call that ended during the run, warm-up included
  absl::Duration wall;    // the run's length, warm-up included
  double qps = 0;
  double p50_ms = 0, p90_ms = 0, p99_ms = 0, max_ms = 0;
  std::map<std::string, int64_t> errors;  // by status code name
};

LoadResult RunLoad(const Target& target, const LoadOptions& options);

// Peak resident set size (VmHWM) of a process, in MiB; 0 if unknown.
double PeakRssMiB(int pid);

// CPU time (user + system) a process and its child processes have used so far (nginx's
// workers are children of its master), from /proc; zero if unknown.
absl::Duration ProcessCpu(int pid);
// CPU time this process has used so far.
absl::Duration OwnCpu();

}  // namespace kp::bench
