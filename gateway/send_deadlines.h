// A bound on how long a finished call may wait for its caller to take the answer. A caller that
// never reads (an HTTP/2 stream window of 0, a connection that is never drained) leaves its calls
// in progress forever: their slots, their responses' bytes and their memory stay taken. Each call
// that has finished its work registers here; one not done within --send_timeout is cancelled
// (its stream reset), which frees everything it held.
#pragma once

#include <chrono>
#include <list>
#include <thread>

#include <grpcpp/server_context.h>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace kp::gateway {

class SendDeadlines {
 public:
  explicit SendDeadlines(absl::Duration timeout);
  ~SendDeadlines();
  SendDeadlines(const SendDeadlines&) = delete;
  SendDeadlines& operator=(const SendDeadlines&) = delete;

  class Entry;
  // `ctx`'s answer is on its way: cancel the call if it is not Done within the timeout. The
  // entry is the call's until it passes it to Done.
  Entry* Start(grpc::ServerContextBase* ctx);
  // The call is done (from its OnDone, before its context goes): never cancelled after this returns.
  void Done(Entry* entry);

 private:
  void Run();

  const std::chrono::nanoseconds timeout_;  // (steady clock: a wall-clock step cancels nothing)
  mutable absl::Mutex mu_;
  // In the order they started, which is the order of their deadlines (one timeout for all).
  std::list<Entry*> waiting_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  // The thread running TryCancel (outside mu_), while it does: gRPC may run that call's OnDone
  // inside TryCancel on it, and Done must not wait for itself there.
  std::thread::id cancelling_thread_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace kp::gateway
