// A closed-loop load generator: keeps `concurrency` unary calls in flight over several
// channels with gRPC's callback API for a fixed time, and records every latency.
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
  int concurrency = 64;
  int channels = 4;
  absl::Duration duration = absl::Seconds(5);
  absl::Duration warmup = absl::Seconds(1);
};

struct LoadResult {
  int64_t calls = 0;
  double qps = 0;
  double p50_ms = 0, p90_ms = 0, p99_ms = 0, max_ms = 0;
  std::map<std::string, int64_t> errors;  // by status code name
};

LoadResult RunLoad(const Target& target, const LoadOptions& options);

// Peak resident set size (VmHWM) of a process, in MiB; 0 if unknown.
double PeakRssMiB(int pid);

}  // namespace kp::bench
