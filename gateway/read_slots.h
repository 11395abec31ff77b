// Requests being read, bounded per principal. Once a call starts reading its request, gRPC grants
// its stream flow-control window for the whole message its first bytes announce (up to
// --max_message_bytes): a caller that announces large requests and never finishes them makes the
// gateway hold that much per call. So a principal may have only `per_principal` requests being
// read at once; its further calls wait, unread (holding at most the stream's initial window), for
// one of those reads to end, and beyond `max_waiting` waiting calls they are refused.
// Unauthenticated callers never get this far: they are refused before any read.
#pragma once

#include <cstddef>
#include <deque>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"

namespace kp::gateway {

class UnaryCall;

class ReadSlots {
 public:
  ReadSlots(int per_principal, int max_waiting) : per_principal_(per_principal), max_waiting_(max_waiting) {}

  enum class Admission { kRead, kWait, kRefuse };
  // kRead: `call` may read now (it holds a slot until Release). kWait: it is queued, and is handed
  // out by a Release. kRefuse: the principal has too many calls waiting already.
  Admission Acquire(const std::string& principal, UnaryCall* call);
  // A read of `principal` ended: its slot goes to the next waiting call, returned for the caller to
  // start reading (outside any lock), or is freed (null).
  UnaryCall* Release(const std::string& principal);
  // Drops a waiting `call` (cancelled): false if it is not waiting (a Release handed it a slot).
  bool Forget(const std::string& principal, UnaryCall* call);

 private:
  struct Principal {
    int reading = 0;
    std::deque<UnaryCall*> waiting;
  };
  const int per_principal_, max_waiting_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, Principal> principals_ ABSL_GUARDED_BY(mu_);
};

}  // namespace kp::gateway
