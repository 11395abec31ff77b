// The channel factory.
#include "common/channel.h"

#include <vector>

#include <google/protobuf/descriptor.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/channel_arguments.h>

#include "absl/flags/flag.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/call_log.h"
#include "common/tls.h"
#include "common/trace.h"

ABSL_FLAG(std::string, token, "", "Bearer token this client sends (tools; KP_TOKEN also works).");

ABSL_FLAG(std::string, organisations_address, "localhost:50051",
          "Organisations service: host:port, a comma list, or a gRPC target such as dns:///name:port.");
ABSL_FLAG(std::string, events_address, "localhost:50052", "Events service address.");
ABSL_FLAG(std::string, participants_address, "localhost:50053", "Participants service address.");

namespace kp {

std::string OrganisationsAddress() { return absl::GetFlag(FLAGS_organisations_address); }
std::string EventsAddress() { return absl::GetFlag(FLAGS_events_address); }
std::string ParticipantsAddress() { return absl::GetFlag(FLAGS_participants_address); }

std::string ServiceConfigJson(const std::string& service) {
  std::vector<std::string> names;
  const auto* descriptor =
      google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(service);
  if (descriptor != nullptr) {
    for (int i = 0; i < descriptor->method_count(); ++i) {
      const std::string& m = descriptor->method(i)->name();
      if (absl::StartsWith(m, "Get") || absl::StartsWith(m, "BatchGet") ||
          absl::StartsWith(m, "List") || absl::StartsWith(m, "Summarize")) {
        names.push_back(absl::StrCat(R"({"service":")", service, R"(","method":")", m, R"("})"));
      }
    }
  }
  // Client-side health checking: round_robin skips a replica whose health says NOT_SERVING
  // (draining after SIGTERM, see --lame_duck) before it stops accepting calls.
  std::string config = R"({"loadBalancingConfig":[{"round_robin":{}}])";
  if (descriptor != nullptr) absl::StrAppend(&config, R"(,"healthCheckConfig":{"serviceName":")", service, R"("})");
  if (!names.empty()) {
    absl::StrAppend(&config, R"(,"methodConfig":[{"name":[)", absl::StrJoin(names, ","),
                    R"(],"retryPolicy":{"maxAttempts":4,"initialBackoff":"0.05s",)",
                    R"("maxBackoff":"1s","backoffMultiplier":2,)",
                    R"("retryableStatusCodes":["UNAVAILABLE"]}}])");
  }
  config += "}";
  return config;
}

std::string NormalizeTarget(const std::string& target) {
  if (absl::StrContains(target, ":///") || absl::StartsWith(target, "ipv4:") ||
      absl::StartsWith(target, "ipv6:") || absl::StartsWith(target, "unix:")) {
    return target;
  }
  if (absl::StrContains(target, ",")) {
    std::vector<std::string> parts = absl::StrSplit(target, ',', absl::SkipWhitespace());
    return absl::StrCat("ipv4:", absl::StrJoin(parts, ","));
  }
  return absl::StrCat("dns:///", target);
}

std::shared_ptr<grpc::Channel> MakeChannel(const std::string& target, const std::string& service) {
  grpc::ChannelArguments args;
  args.SetServiceConfigJSON(ServiceConfigJson(service));
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 30000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  args.SetInt(GRPC_ARG_ENABLE_RETRIES, 1);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  return grpc::CreateCustomChannel(NormalizeTarget(target), tls::ChannelCredentials(), args);
}

std::unique_ptr<grpc::ClientContext> NewClientContext(absl::Duration timeout,
                                                      absl::Time parent_deadline,
                                                      const std::string& request_id,
                                                      const std::string& authorization,
                                                      const std::string& traceparent) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  const absl::Time deadline = std::min(absl::Now() + timeout, parent_deadline);
  ctx->set_deadline(absl::ToChronoTime(deadline));
  if (!request_id.empty()) ctx->AddMetadata(kRequestIdHeader, request_id);
  ctx->AddMetadata(trace::kHeader, trace::Child(traceparent));
  if (!authorization.empty()) {
    ctx->AddMetadata("authorization", authorization);
  } else if (const std::string token = absl::GetFlag(FLAGS_token); !token.empty()) {
    ctx->AddMetadata("authorization", absl::StrCat("Bearer ", token));
  }
  return ctx;
}

}  // namespace kp
