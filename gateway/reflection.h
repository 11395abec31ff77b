// grpc.reflection.v1alpha.ServerReflection for the gateway. The gateway serves its APIs through
// one generic service, which gRPC's reflection plugin cannot see (it lists registered services
// only), so the gateway answers reflection itself, from the descriptors compiled into it:
// clients such as grpcurl discover every service on the one endpoint.
#pragma once

#include <atomic>
#include <string>
#include <vector>

#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/server_callback.h>

#include "absl/container/flat_hash_set.h"

namespace kp::gateway {

inline constexpr char kReflectionMethod[] = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo";

// One reflection stream: each request read is answered, in order, until the client half-closes.
class ReflectionCall final : public grpc::ServerGenericBidiReactor {
 public:
  // `services`: the full names listed by list_services. `streams` counts this stream until
  // gRPC is done with it.
  ReflectionCall(const std::vector<std::string>* services, std::atomic<int>* streams);

  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnDone() override {
    streams_->fetch_sub(1, std::memory_order_relaxed);
    delete this;
  }

 private:
  // The response to one request (serialized ServerReflectionResponse).
  std::string Answer(const std::string& request);

  const std::vector<std::string>* services_;
  std::atomic<int>* const streams_;
  grpc::ByteBuffer request_, response_;
  // Files already sent on this stream: each goes out once, with the dependencies not yet sent.
  absl::flat_hash_set<std::string> sent_;
};

}  // namespace kp::gateway
