// The backend calls made for one caller alone, cancelled together when that caller gives up: a
// caller who goes away frees its backends and their bulkheads at once instead of at the
// deadline. Calls made for several callers (a load others wait for) are never in a scope.
#pragma once

#include <grpcpp/client_context.h>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"

namespace kp::gateway {

class CancelScope {
 public:
  // `backend` is cancelled with the caller (at once if the caller has gone already) until it is
  // removed, which must happen before it is freed.
  void Add(grpc::ClientContext* backend) {
    absl::MutexLock lock(&mu_);
    if (cancelled_) {
      backend->TryCancel();
    } else {
      calls_.insert(backend);
    }
  }
  void Remove(grpc::ClientContext* backend) {
    absl::MutexLock lock(&mu_);
    calls_.erase(backend);
  }
  // The caller has gone: every call in the scope, and every one added later, is cancelled.
  void Cancel() {
    absl::MutexLock lock(&mu_);
    cancelled_ = true;
    for (grpc::ClientContext* c : calls_) c->TryCancel();
    calls_.clear();
  }
  bool cancelled() const {
    absl::MutexLock lock(&mu_);
    return cancelled_;
  }

 private:
  mutable absl::Mutex mu_;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  absl::flat_hash_set<grpc::ClientContext*> calls_ ABSL_GUARDED_BY(mu_);
};

}  // namespace kp::gateway
