// One backend as the gateway sees it: its channel, a bulkhead (a limit on the calls in flight to
// it: beyond it a call is refused at once, never queued), the deadline every call to it gets,
// and its metrics. One slow backend then costs at most its bulkhead's calls (memory, not
// threads), and never slows calls to the others or cache hits.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include <grpcpp/channel.h>
#include <grpcpp/client_context.h>
#include <grpcpp/generic/generic_stub.h>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/metrics.h"
#include "gateway/call_context.h"

namespace kp::gateway {

struct BackendOptions {
  absl::Duration timeout = absl::Seconds(10);            // the longest a call to it may take
  absl::Duration deadline_margin = absl::Milliseconds(5);  // taken off the caller's deadline
  int max_in_flight = 256;                                // the bulkhead
};

class Backend {
 public:
  // `name`: "events" (its cache generation); `service`: its full gRPC service name.
  Backend(std::string name, std::string service, std::shared_ptr<grpc::Channel> channel, BackendOptions options);

  const std::string& name() const { return name_; }
  const std::string& service() const { return service_; }
  const std::shared_ptr<grpc::Channel>& channel() const { return channel_; }
  grpc::GenericStub& generic() { return generic_; }

  // One admitted call: its context (the caller's metadata, and the earlier of the caller's
  // deadline less the margin and now + the timeout); End() it exactly once, when it completes.
  class Call {
   public:
    Call(Backend* backend, std::unique_ptr<grpc::ClientContext> ctx)
        : backend_(backend), ctx_(std::move(ctx)), start_(absl::Now()) {}
    grpc::ClientContext* context() const { return ctx_.get(); }
    void End();

   private:
    Backend* backend_;
    std::unique_ptr<grpc::ClientContext> ctx_;
    absl::Time start_;
  };
  // An admitted call; or, without anything sent, UNAVAILABLE (the bulkhead is full) or
  // DEADLINE_EXCEEDED (the caller's deadline, less the margin, leaves no time).
  absl::StatusOr<std::unique_ptr<Call>> Begin(const Forwarded& from);

 private:
  const std::string name_, service_;
  std::shared_ptr<grpc::Channel> channel_;
  grpc::GenericStub generic_;
  const BackendOptions options_;
  std::atomic<int> in_flight_{0};
  metrics::BackendMetrics metrics_;
};

}  // namespace kp::gateway
