// Forwarding: see proxy.h.
#include "gateway/proxy.h"

#include <memory>

#include "absl/strings/match.h"
#include "common/status.h"

namespace kp::gateway {
namespace {

// Metadata the backend sent, passed on to the caller (gRPC's own headers are regenerated).
void CopyBackendMetadata(const grpc::ClientContext& backend, grpc::ServerContextBase* ctx) {
  for (const auto& [k, v] : backend.GetServerInitialMetadata()) {
    if (!absl::StartsWith(absl::string_view(k.data(), k.size()), "grpc-")) {
      ctx->AddInitialMetadata(std::string(k.data(), k.size()), std::string(v.data(), v.size()));
    }
  }
  for (const auto& [k, v] : backend.GetServerTrailingMetadata()) {
    if (!absl::StartsWith(absl::string_view(k.data(), k.size()), "grpc-")) {
      ctx->AddTrailingMetadata(std::string(k.data(), k.size()), std::string(v.data(), v.size()));
    }
  }
}

// One backend call with the call's own request bytes: `done(status, backend call)` on completion.
// `own`: made for this call alone (not a load others wait for), so cancelled with it.
template <typename Done>
void CallBackend(UnaryCall* call, Backend& backend, const Forwarded& from, bool own, Done done) {
  absl::StatusOr<std::unique_ptr<Backend::Call>> begun = backend.Begin(from);
  if (!begun.ok()) {
    done(ToGrpcStatus(begun.status()), nullptr, grpc::ByteBuffer());
    return;
  }
  struct InFlight {
    std::unique_ptr<Backend::Call> call;
    grpc::ByteBuffer response;
  };
  auto* f = new InFlight{*std::move(begun), {}};
  std::shared_ptr<CancelScope> scope = own ? call->cancel_scope() : nullptr;
  if (scope) scope->Add(f->call->context());
  backend.generic().UnaryCall(f->call->context(), call->context()->method(), grpc::StubOptions(), &call->request(),
                              &f->response, [scope, f, done = std::move(done)](grpc::Status status) mutable {
                                if (scope) scope->Remove(f->call->context());
                                f->call->End();
                                done(status, f->call->context(), std::move(f->response));
                                delete f;
                              });
}

}  // namespace

bool IsCacheable(absl::string_view method_name) {
  if (method_name == "ListAuditEntries") return false;  // admins only, within one view
  return absl::StartsWith(method_name, "Get") || absl::StartsWith(method_name, "BatchGet") ||
         absl::StartsWith(method_name, "List") || absl::StartsWith(method_name, "Summarize");
}

void Forward(UnaryCall* call, Backend& backend, const Forwarded& from) {
  CallBackend(call, backend, from, /*own=*/true,
              [call](const grpc::Status& status, grpc::ClientContext* backend_ctx, grpc::ByteBuffer response) {
                if (backend_ctx != nullptr) CopyBackendMetadata(*backend_ctx, call->context());
                call->Reply(status, std::move(response));
              });
}

void ForwardCached(UnaryCall* call, Backend& backend, ResponseCache& cache, RateLimiter* limiter, Forwarded from,
                   const google::protobuf::Descriptor* type) {
  if (!cache.enabled()) {
    // No cache: the plain proxy path (the backend judges the request's bytes).
    cache.CountBypass();
    call->context()->AddInitialMetadata("x-kp-cache", OutcomeName(CacheOutcome::kBypass));
    Forward(call, backend, from);
    return;
  }
  absl::StatusOr<std::string> canonical = CanonicalRequest(type, ToString(call->request()));
  if (!canonical.ok()) {
    call->Reply(ToGrpcStatus(canonical.status()));
    return;
  }
  ResponseCache::Request request{from.view, call->context()->method(), *std::move(canonical), {backend.name()},
                                 call->cancel_scope()};
  auto from_ptr = std::make_shared<Forwarded>(std::move(from));
  cache.Serve(
      std::move(request),
      // A miss: the backend's answer, whose metadata goes back to this caller.
      [call, &backend, limiter, from_ptr](bool alone, std::function<void(Loaded)> done) {
        CallBackend(call, backend, *from_ptr, /*own=*/alone,
                    [call, limiter, from_ptr, done = std::move(done)](
                        const grpc::Status& status, grpc::ClientContext* backend_ctx, grpc::ByteBuffer response) {
                      Loaded loaded{status, status.ok() ? ToString(response) : std::string()};
                      if (backend_ctx != nullptr) {
                        CopyBackendMetadata(*backend_ctx, call->context());
                        AppliedViews views(from_ptr->view);
                        views.Record(*backend_ctx);
                        loaded.view_confirmed = views.Confirmed();
                      }
                      loaded.within_quota =
                          limiter == nullptr || limiter->AdmitCacheStore(from_ptr->principal, loaded.body.size());
                      done(std::move(loaded));
                    });
      },
      [call](CacheOutcome outcome, const grpc::Status& status, const Body& body) {
        call->ReplyFromCache(outcome, status, body);
      });
}

}  // namespace kp::gateway
