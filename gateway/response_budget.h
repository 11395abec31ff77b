// Bytes of responses the gateway holds that have not been sent yet: a caller that never reads
// its answers (or reads them slowly) leaves them in the gateway's memory until gRPC can send
// them. Bounded per principal and in all: over either bound a response is not kept, and its call
// ends RESOURCE_EXHAUSTED instead, so that no caller can make the gateway run out of memory.
#pragma once

#include <cstddef>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"

namespace kp::gateway {

class ResponseBudget {
 public:
  // `total` and `per_principal` in bytes; 0: no bound.
  ResponseBudget(size_t total, size_t per_principal) : total_(total), per_principal_(per_principal) {}

  // Holds `bytes` for `principal` until Release; false (nothing held) if that would exceed a bound.
  bool Hold(const std::string& principal, size_t bytes);
  void Release(const std::string& principal, size_t bytes);

 private:
  const size_t total_, per_principal_;
  absl::Mutex mu_;
  size_t held_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_map<std::string, size_t> by_principal_ ABSL_GUARDED_BY(mu_);
};

}  // namespace kp::gateway
