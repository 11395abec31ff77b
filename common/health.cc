// HealthService: see health.h.
#include "common/health.h"

#include "common/metrics.h"
#include "common/status.h"

namespace kp {

using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;

// One Watch stream: sends the current status, then each change; never more than one answer
// pending (a newer status waits in `wanted_` and replaces any older one not yet sent).
class HealthService::Watcher final : public grpc::ServerWriteReactor<HealthCheckResponse> {
 public:
  Watcher(HealthService* health, std::string service, std::string connection)
      : health_(health), service_(std::move(service)), connection_(std::move(connection)) {}

  // Under health->mu_: the status this stream should show now.
  void Want(Status status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(health_->mu_) {
    absl::MutexLock lock(&mu_);
    if (done_) return;
    wanted_ = status;
    MaybeWrite();
  }
  // Under health->mu_: ends the stream (shutdown).
  void End() ABSL_EXCLUSIVE_LOCKS_REQUIRED(health_->mu_) {
    absl::MutexLock lock(&mu_);
    Close(grpc::Status(grpc::StatusCode::UNAVAILABLE, "the server is shutting down"));
  }
  const std::string& service() const { return service_; }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    if (!ok) {
      Close(grpc::Status(grpc::StatusCode::CANCELLED, "the client went away"));
      return;
    }
    MaybeWrite();
  }
  void OnCancel() override {
    absl::MutexLock lock(&mu_);
    Close(grpc::Status(grpc::StatusCode::CANCELLED, "the watch was cancelled"));
  }
  void OnDone() override {
    health_->Forget(this, connection_);
    delete this;
  }

 private:
  void MaybeWrite() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (writing_ || done_ || (sent_ && wanted_ == last_)) return;
    response_.set_status(wanted_);
    last_ = wanted_;
    sent_ = writing_ = true;
    StartWrite(&response_);
  }
  void Close(const grpc::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (done_) return;
    done_ = true;
    Finish(status);
  }

  HealthService* const health_;
  const std::string service_, connection_;
  absl::Mutex mu_;
  Status wanted_ ABSL_GUARDED_BY(mu_) = HealthCheckResponse::UNKNOWN;
  Status last_ ABSL_GUARDED_BY(mu_) = HealthCheckResponse::UNKNOWN;
  bool sent_ ABSL_GUARDED_BY(mu_) = false, writing_ ABSL_GUARDED_BY(mu_) = false, done_ ABSL_GUARDED_BY(mu_) = false;
  HealthCheckResponse response_;
};

namespace {

// A Watch refused at once.
class RefusedWatch final : public grpc::ServerWriteReactor<HealthCheckResponse> {
 public:
  explicit RefusedWatch(const grpc::Status& status) { Finish(status); }
  void OnDone() override { delete this; }
};

}  // namespace

HealthService::HealthService(Limits limits)
    : slots_({.total = limits.watches,
              .per_principal = limits.watches,  // (anonymous: no principal to share among)
              .per_connection = limits.watches_per_connection,
              .noun = "health Watch streams open",
              .metric = "health_watch",
              .when_full = absl::StatusCode::kResourceExhausted}) {
  absl::MutexLock lock(&mu_);
  serving_[""] = true;
}

HealthService::~HealthService() { Shutdown(); }

HealthService::Status HealthService::StatusOf(const std::string& service) const {
  auto it = serving_.find(service);
  if (it == serving_.end()) return HealthCheckResponse::SERVICE_UNKNOWN;
  return it->second ? HealthCheckResponse::SERVING : HealthCheckResponse::NOT_SERVING;
}

void HealthService::Notify() {
  for (Watcher* w : watchers_) w->Want(StatusOf(w->service()));
}

void HealthService::SetServingStatus(const std::string& service, bool serving) {
  absl::MutexLock lock(&mu_);
  serving_[service] = serving;
  Notify();
}

void HealthService::SetServingStatus(bool serving) {
  absl::MutexLock lock(&mu_);
  serving_[""];  // the server as a whole is always known
  for (auto& [name, value] : serving_) value = serving;
  Notify();
}

void HealthService::Shutdown() {
  absl::MutexLock lock(&mu_);
  shut_down_ = true;
  for (Watcher* w : watchers_) w->End();
}

int HealthService::watches() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(watchers_.size());
}

void HealthService::Forget(Watcher* watcher, const std::string& connection) {
  slots_.Release("", connection);
  absl::MutexLock lock(&mu_);
  watchers_.erase(watcher);
  metrics::HealthWatches(static_cast<double>(watchers_.size()));
}

grpc::ServerUnaryReactor* HealthService::Check(grpc::CallbackServerContext* ctx, const HealthCheckRequest* request,
                                               HealthCheckResponse* response) {
  auto* reactor = ctx->DefaultReactor();
  Status status;
  {
    absl::MutexLock lock(&mu_);
    status = StatusOf(request->service());
  }
  if (status == HealthCheckResponse::SERVICE_UNKNOWN) {
    reactor->Finish(grpc::Status(grpc::StatusCode::NOT_FOUND, "unknown service"));
  } else {
    response->set_status(status);
    reactor->Finish(grpc::Status::OK);
  }
  return reactor;
}

grpc::ServerWriteReactor<HealthCheckResponse>* HealthService::Watch(grpc::CallbackServerContext* ctx,
                                                                    const HealthCheckRequest* request) {
  std::string connection = ctx->peer();
  absl::MutexLock lock(&mu_);
  if (shut_down_) return new RefusedWatch(grpc::Status(grpc::StatusCode::UNAVAILABLE, "the server is shutting down"));
  if (absl::Status slot = slots_.Acquire("", connection); !slot.ok()) {
    return new RefusedWatch(ToGrpcStatus(slot));
  }
  auto* watcher = new Watcher(this, request->service(), std::move(connection));
  watchers_.insert(watcher);
  metrics::HealthWatches(static_cast<double>(watchers_.size()));
  watcher->Want(StatusOf(request->service()));
  return watcher;
}

}  // namespace kp
