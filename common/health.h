// grpc.health.v1.Health for every server, in place of gRPC's default service, whose Watch streams
// are unbounded and uncounted (anyone may open them: health needs no credentials). Here Watch
// streams are capped in all (--max_health_watches) and per connection, counted in a gauge
// (kp_health_watches), and each holds at most one answer of a few bytes however rarely its client
// reads: a status that changes while an answer is unsent replaces what is sent next.
#pragma once

#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "common/call_slots.h"
#include "absl/synchronization/mutex.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace kp {

class HealthService final : public grpc::health::v1::Health::CallbackService {
 public:
  struct Limits {
    int watches = 1000;                // in all
    int watches_per_connection = 4;
  };
  // The server as a whole ("") starts SERVING, as with gRPC's default service.
  explicit HealthService(Limits limits);
  ~HealthService() override;

  // The status of `service` ("" for the server as a whole); a name never set is unknown
  // (Check: NOT_FOUND; Watch: SERVICE_UNKNOWN until it is set).
  void SetServingStatus(const std::string& service, bool serving);
  // Every service set so far, and the server as a whole.
  void SetServingStatus(bool serving);
  // Ends every Watch stream (at shutdown: they would hold the drain until its deadline).
  void Shutdown();

  grpc::ServerUnaryReactor* Check(grpc::CallbackServerContext* ctx, const grpc::health::v1::HealthCheckRequest* request,
                                  grpc::health::v1::HealthCheckResponse* response) override;
  grpc::ServerWriteReactor<grpc::health::v1::HealthCheckResponse>* Watch(
      grpc::CallbackServerContext* ctx, const grpc::health::v1::HealthCheckRequest* request) override;

  int watches() const;

  class Watcher;

 private:
  using Status = grpc::health::v1::HealthCheckResponse::ServingStatus;
  Status StatusOf(const std::string& service) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Notify() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Forget(Watcher* watcher, const std::string& connection);

  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, bool> serving_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<Watcher*> watchers_ ABSL_GUARDED_BY(mu_);
  CallSlots slots_;  // the Watch streams open, in all and per connection
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace kp
