// The per-call log interceptor.
#include "absl/strings/string_view.h"
#include "common/call_log.h"

#include <atomic>
#include <string>

#include <google/protobuf/descriptor.h>
#include <grpcpp/server_context.h>

#include "absl/random/random.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/trace.h"

namespace kp {
namespace {

std::atomic<int64_t> g_in_flight{0};

std::string NewRequestId() {
  thread_local absl::BitGen gen;
  return absl::StrFormat("%016x", absl::Uniform<uint64_t>(gen));
}

}  // namespace

std::string RequestIdFrom(const std::multimap<grpc::string_ref, grpc::string_ref>& metadata) {
  auto it = metadata.find(kRequestIdHeader);
  if (it == metadata.end() || it->second.size() == 0 || it->second.size() > 128) return "";
  const absl::string_view id(it->second.data(), it->second.size());
  for (char c : id) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && !absl::StrContains("._:/+=-", c)) return "";
  }
  return std::string(id);
}

std::string UnparsedRequestMessage(absl::string_view method) {
  // "/pkg.Service/Method" -> the method's request type, from the generated descriptors.
  std::string type = "request message";
  if (absl::StartsWith(method, "/")) {
    const std::string full(absl::StrReplaceAll(method.substr(1), {{"/", "."}}));
    if (const auto* m = google::protobuf::DescriptorPool::generated_pool()->FindMethodByName(full)) {
      type = m->input_type()->full_name();
    }
  }
  return absl::StrCat("the request is not a valid ", type, " (its bytes do not parse)");
}

namespace {

class CallLogInterceptor : public grpc::experimental::Interceptor {
 public:
  explicit CallLogInterceptor(grpc::experimental::ServerRpcInfo* info)
      : info_(info), start_(absl::Now()) {
    g_in_flight.fetch_add(1, std::memory_order_relaxed);
    metrics::CallStarted();
  }
  ~CallLogInterceptor() override {
    g_in_flight.fetch_sub(1, std::memory_order_relaxed);
    metrics::CallEnded();
  }

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    using grpc::experimental::InterceptionHookPoints;
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_INITIAL_METADATA)) {
      // Every call belongs to a trace: the caller's, or one started here. A new one is put into
      // the call's metadata, so that handlers pass it on like one the caller sent.
      auto* md = methods->GetRecvInitialMetadata();
      auto it = md->find(trace::kHeader);
      if (it != md->end() && trace::IsValid(absl::string_view(it->second.data(), it->second.size()))) {
        traceparent_.assign(it->second.data(), it->second.size());
      } else {
        if (it != md->end()) md->erase(it);
        traceparent_ = trace::NewTraceparent();
        md->emplace(grpc::string_ref(trace::kHeader), grpc::string_ref(traceparent_));
      }
    }
    // A request that does not parse reaches no handler, and gRPC answers UNIMPLEMENTED with no
    // message: say what is wrong instead.
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_MESSAGE) &&
        methods->GetRecvMessage() == nullptr) {
      unparsed_request_ = true;
    }
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      grpc::Status status = methods->GetSendStatus();
      if (unparsed_request_ && status.error_code() == grpc::StatusCode::UNIMPLEMENTED && status.error_message().empty()) {
        // gRPC cannot say whether the bytes did not parse or no message came because the caller
        // gave up (its deadline passed, it cancelled): the latter is not bad input.
        const auto* ctx = info_->server_context();
        // (A caller's clock runs a little ahead of ours: it gives up just before our deadline.)
        if (absl::FromChrono(ctx->deadline()) <= absl::Now() + absl::Milliseconds(10)) {
          status = grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "deadline passed before the request arrived");
        } else if (ctx->IsCancelled()) {
          status = grpc::Status(grpc::StatusCode::CANCELLED, "call cancelled before its request arrived");
        } else {
          status = grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, UnparsedRequestMessage(info_->method()));
        }
        methods->ModifySendStatus(status);
      }
      std::string request_id = RequestIdFrom(info_->server_context()->client_metadata());
      if (request_id.empty()) request_id = NewRequestId();
      const double latency_ms = absl::ToDoubleMilliseconds(absl::Now() - start_);
      metrics::RecordCall(info_->method(), static_cast<int>(status.error_code()), latency_ms / 1000.0);
      // Health probes arrive every few seconds from every prober: keep them out of info logs.
      const bool probe = absl::StartsWith(info_->method(), "/grpc.health.");
      log::Write(probe ? log::Level::kDebug : log::Level::kInfo, "call", {{"method", info_->method()},
                         {"code", static_cast<int>(status.error_code())},
                         {"latency_ms", latency_ms},
                         {"request_id", request_id},
                         {"trace_id", trace::TraceId(traceparent_)}});
    }
    methods->Proceed();
  }

 private:
  grpc::experimental::ServerRpcInfo* info_;
  absl::Time start_;
  bool unparsed_request_ = false;
  std::string traceparent_;  // referenced by the call's metadata: lives as long as the call
};

class CallLogInterceptorFactory : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    return new CallLogInterceptor(info);  // owned and deleted by gRPC
  }
};

}  // namespace

int64_t InFlightCalls() { return g_in_flight.load(std::memory_order_relaxed); }

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> NewCallLogInterceptorFactory() {
  return std::make_unique<CallLogInterceptorFactory>();
}

}  // namespace kp
