// Calls (or streams) in progress in a server, bounded three ways so that no single caller can
// take the endpoint from everyone else: in all (the gateway's --max_in_flight: beyond it the server
// is full), per principal (a fair share of that: beyond it RESOURCE_EXHAUSTED for that principal
// only) and per connection (the gateway's calls: at most the streams one connection may open,
// --max_concurrent_streams; gRPC counts a stream only until it is reset, a call lives until the
// gateway has finished it). A slot is held from admission until gRPC is done with the call
// (OnDone). The gateway's calls and reflection streams and every server's health watches use it.
#pragma once

#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"

namespace kp {

class CallSlots {
 public:
  struct Limits {
    int total = 4096;
    int per_principal = 1024;
    int per_connection = 1000;
    // What is counted, in messages ("calls in progress") and in the refusal metric's reasons
    // (`<metric>_total`, `<metric>_principal`, `<metric>_connection`).
    const char* noun = "calls in progress";
    const char* metric = "calls";
    // The code of a refusal when the server is full (retry elsewhere or later).
    absl::StatusCode when_full = absl::StatusCode::kUnavailable;
  };
  explicit CallSlots(Limits limits) : limits_(limits) {}

  // Takes a slot for a call of `principal` on `connection` (its peer address), or says which
  // bound refused it (nothing taken).
  absl::Status Acquire(const std::string& principal, const std::string& connection);
  void Release(const std::string& principal, const std::string& connection);

  int in_progress() const;

 private:
  const Limits limits_;
  mutable absl::Mutex mu_;
  int total_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_map<std::string, int> by_principal_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, int> by_connection_ ABSL_GUARDED_BY(mu_);
};

}  // namespace kp
