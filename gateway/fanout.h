// Parallel backend calls: start any number of async calls, then wait for all of them. The
// waiting happens on a worker thread; gRPC's threads only run the completions.
#pragma once

#include <deque>
#include <functional>
#include <memory>

#include <grpcpp/client_context.h>
#include <grpcpp/support/status.h>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "gateway/call_context.h"

namespace kp::gateway {

class Fanout {
 public:
  using Done = std::function<void(grpc::Status)>;
  Fanout(const Forwarded& from, absl::Duration timeout) : from_(from), timeout_(timeout) {}
  ~Fanout() { Wait(); }
  Fanout(const Fanout&) = delete;
  Fanout& operator=(const Fanout&) = delete;

  // `start(ctx, done)` starts one async call; its status lands in `*status`.
  void Start(grpc::Status* status, const std::function<void(grpc::ClientContext*, Done)>& start);
  // Returns once every started call has completed.
  void Wait();

 private:
  const Forwarded& from_;
  absl::Duration timeout_;
  std::deque<std::unique_ptr<grpc::ClientContext>> contexts_;
  absl::Mutex mu_;
  int pending_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace kp::gateway
