// ProxyService: see proxy.h.
#include "gateway/proxy.h"

#include <google/protobuf/descriptor.h>
#include <grpcpp/impl/codegen/server_callback_handlers.h>
#include <grpcpp/impl/rpc_service_method.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "common/call_log.h"
#include "common/log.h"
#include "common/status.h"
#include "gateway/call_context.h"

namespace kp::gateway {
namespace {

using RawHandler = grpc::internal::CallbackUnaryHandler<grpc::ByteBuffer, grpc::ByteBuffer>;

// Metadata the backend sent, passed on to the caller (gRPC's own headers are regenerated).
void CopyBackendMetadata(const grpc::ClientContext& backend, grpc::CallbackServerContext* ctx) {
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

}  // namespace

std::string ToString(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  (void)buffer.Dump(&slices);
  std::string out;
  out.reserve(buffer.Length());
  for (const auto& s : slices) out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return out;
}

grpc::ByteBuffer ToByteBuffer(const std::string& bytes) {
  grpc::Slice slice(bytes);
  return grpc::ByteBuffer(&slice, 1);
}

grpc::ByteBuffer SharedByteBuffer(Body body) {
  auto* keep = new Body(std::move(body));
  grpc::Slice slice(const_cast<char*>((*keep)->data()), (*keep)->size(),
                    [](void* p) { delete static_cast<Body*>(p); }, keep);
  return grpc::ByteBuffer(&slice, 1);
}

namespace {
// Answers a hit and says so; false for anything else.
bool FinishIfHit(ResponseCache::Lookup& lookup, grpc::CallbackServerContext* ctx, grpc::ServerUnaryReactor* reactor,
                 grpc::ByteBuffer* response) {
  if (lookup.outcome != CacheOutcome::kHit) return false;
  ctx->AddInitialMetadata("x-kp-cache", OutcomeName(CacheOutcome::kHit));
  *response = SharedByteBuffer(std::move(lookup.body));
  reactor->Finish(grpc::Status::OK);
  return true;
}
}  // namespace

void ServeCached(ResponseCache& cache, WorkerPool& pool, grpc::CallbackServerContext* ctx,
                 grpc::ServerUnaryReactor* reactor, grpc::ByteBuffer* response, std::string view,
                 std::string method, std::string request, std::vector<absl::string_view> services,
                 std::function<Loaded(const std::string& request)> load, std::function<void()> after_load) {
  std::optional<ResponseCache::Lookup> found;
  if (InFlightCalls() <= 4) {
    found = cache.Find(view, method, request, services);
    if (FinishIfHit(*found, ctx, reactor, response)) return;
  }
  pool.Schedule([&cache, ctx, reactor, response, view = std::move(view), method = std::move(method),
                 request = std::move(request), services = std::move(services), load = std::move(load),
                 after_load = std::move(after_load), found = std::move(found)]() mutable {
    // A caller that gave up (cancelled, deadline passed) while queued costs nothing more: no
    // Redis round trip, no backend load for nobody.
    if (ctx->IsCancelled()) {
      reactor->Finish(grpc::Status(grpc::StatusCode::CANCELLED, "call cancelled before it was served"));
      return;
    }
    if (!found) {
      found = cache.Find(view, method, request, services);
      if (FinishIfHit(*found, ctx, reactor, response)) return;
    }
    CacheOutcome outcome;
    Loaded loaded = cache.Load(*found, services, [&] { return load(request); }, &outcome);
    if (after_load) after_load();
    ctx->AddInitialMetadata("x-kp-cache", OutcomeName(outcome));
    if (loaded.status.ok()) *response = ToByteBuffer(loaded.body);
    reactor->Finish(loaded.status);
  });
}

bool ProxyService::IsCacheable(absl::string_view method_name) {
  if (method_name == "ListAuditEntries") return false;  // admins only, within one view
  return absl::StartsWith(method_name, "Get") || absl::StartsWith(method_name, "BatchGet") ||
         absl::StartsWith(method_name, "List") || absl::StartsWith(method_name, "Summarize");
}

ProxyService::ProxyService(const std::string& service, std::string backend, std::shared_ptr<grpc::Channel> channel,
                           ResponseCache* cache, WorkerPool* pool, absl::Duration timeout, RateLimiter* limiter)
    : backend_(std::move(backend)),
      stub_(std::shared_ptr<grpc::ChannelInterface>(std::move(channel))),
      cache_(cache),
      pool_(pool),
      timeout_(timeout),
      limiter_(limiter) {
  const auto* descriptor = google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(service);
  if (descriptor == nullptr) {
    log::Error("proxy: unknown service", {{"service", service}});
    std::abort();
  }
  for (int i = 0; i < descriptor->method_count(); ++i) {
    const auto* m = descriptor->method(i);
    paths_.push_back(absl::StrCat("/", service, "/", m->name()));
    const std::string& path = paths_.back();
    AddMethod(new grpc::internal::RpcServiceMethod(path.c_str(), grpc::internal::RpcMethod::NORMAL_RPC, nullptr));
    const bool cacheable = cache_ != nullptr && IsCacheable(m->name());
    const google::protobuf::Descriptor* type = m->input_type();
    MarkMethodRawCallback(i, new RawHandler([this, &path, cacheable, type](grpc::CallbackServerContext* ctx,
                                                                           const grpc::ByteBuffer* req,
                                                                           grpc::ByteBuffer* resp) {
      return cacheable ? ForwardCached(ctx, req, resp, path, type) : Forward(ctx, req, resp, path);
    }));
  }
}

grpc::ServerUnaryReactor* ProxyService::Forward(grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* request,
                                                grpc::ByteBuffer* response, const std::string& method) {
  auto* reactor = ctx->DefaultReactor();
  std::optional<Forwarded> from = AdmitOrFinish(*ctx, request, limiter_, reactor);
  if (!from) return reactor;
  std::shared_ptr<grpc::ClientContext> backend = BackendContext(*from, timeout_);
  // Fully asynchronous: no thread waits while the backend works.
  stub_.UnaryCall(backend.get(), method, grpc::StubOptions(), request, response,
                  [backend, ctx, reactor](grpc::Status status) {
                    CopyBackendMetadata(*backend, ctx);
                    reactor->Finish(status);
                  });
  return reactor;
}

grpc::ServerUnaryReactor* ProxyService::ForwardCached(grpc::CallbackServerContext* ctx,
                                                      const grpc::ByteBuffer* request,
                                                      grpc::ByteBuffer* response, const std::string& method,
                                                      const google::protobuf::Descriptor* type) {
  auto* reactor = ctx->DefaultReactor();
  std::optional<Forwarded> admitted = AdmitOrFinish(*ctx, request, limiter_, reactor);
  if (!admitted) return reactor;
  absl::StatusOr<std::string> canonical = CanonicalRequest(type, ToString(*request));
  if (!canonical.ok()) {
    reactor->Finish(ToGrpcStatus(canonical.status()));
    return reactor;
  }
  // The backend call of a miss, whose metadata goes back to the caller.
  auto backend = std::make_shared<std::unique_ptr<grpc::ClientContext>>();
  auto load = [this, backend, request, &method, from = *admitted](const std::string&) -> Loaded {
    *backend = BackendContext(from, timeout_);
    grpc::ByteBuffer out;
    Loaded loaded;
    absl::Notification done;
    stub_.UnaryCall(backend->get(), method, grpc::StubOptions(), request, &out, [&](grpc::Status s) {
      loaded.status = std::move(s);
      done.Notify();
    });
    done.WaitForNotification();
    if (loaded.status.ok()) loaded.body = ToString(out);
    AppliedViews views(from.view);
    views.Record(**backend);
    loaded.view_confirmed = views.Confirmed();
    loaded.within_quota = limiter_ == nullptr || limiter_->AdmitCacheStore(from.principal, loaded.body.size());
    return loaded;
  };
  ServeCached(*cache_, *pool_, ctx, reactor, response, admitted->view, method, *std::move(canonical), {backend_},
              std::move(load), [backend, ctx] {
                if (*backend) CopyBackendMetadata(**backend, ctx);
              });
  return reactor;
}

}  // namespace kp::gateway
