// What the gateway carries from an incoming call to the calls it makes: the caller's metadata
// (credentials, request id, trace context), its remaining deadline, and its cache view.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <grpcpp/client_context.h>
#include <grpcpp/server_context.h>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/auth/principal.h"
#include "common/rpc.h"
#include "gateway/cancel_scope.h"
#include "gateway/rate_limiter.h"

namespace kp::gateway {

// The trailing metadata in which every backend says which view it redacted its answer for
// (public, org:<organisation>, full): the keys file is reloaded by each process on its own
// timer, so for a moment the gateway and a backend can judge one token differently.
inline constexpr const char* kViewHeader = kViewTrailer;

// The views the backends applied to the answers one call was built from. A response may be
// cached (or shared with coalesced callers) only under a view every backend confirmed.
class AppliedViews {
 public:
  explicit AppliedViews(std::string expected) : expected_(std::move(expected)) {}
  // Records the view `backend` (a finished call) says it applied.
  void Record(const grpc::ClientContext& backend);
  // A backend the response needed was not asked (its bulkhead was full, no time was left): the
  // response is not one to store or share, whatever the others said.
  void NotAsked();
  // True once at least one backend answered and every one applied the expected view.
  bool Confirmed() const;

 private:
  const std::string expected_;
  mutable absl::Mutex mu_;
  int answers_ ABSL_GUARDED_BY(mu_) = 0;
  bool mismatch_ ABSL_GUARDED_BY(mu_) = false;
};

struct Forwarded {
  std::vector<std::pair<std::string, std::string>> metadata;  // credentials included
  absl::Time deadline = absl::InfiniteFuture();
  auth::Principal principal;
  // What the caller may see, part of every cache key: public (readers), org:<organisation>
  // (registrars), full (editors, admins). The backends re-check the forwarded credentials and
  // redact their answers accordingly, and say which view they applied (see AppliedViews).
  std::string view;
  std::shared_ptr<AppliedViews> applied_views;
  // The backend calls made for this caller alone, cancelled if it gives up; null when the work
  // serves several callers (a load others wait for).
  std::shared_ptr<CancelScope> cancel;
};

// Authenticates the caller (UNAUTHENTICATED before anything else, cache included), applies its
// rate limit (`limiter` may be null: none) and captures its forwardable metadata (everything
// but transport and gRPC headers).
absl::StatusOr<Forwarded> Admit(const grpc::ServerContextBase& ctx, RateLimiter* limiter);

}  // namespace kp::gateway
