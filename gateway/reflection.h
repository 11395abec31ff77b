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
#include "gateway/unary_call.h"

namespace kp::gateway {

inline constexpr char kReflectionMethod[] = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo";

// One reflection stream: each request read is answered, in order, until the client half-closes.
class ReflectionCall final : public grpc::ServerGenericBidiReactor {
 public:
  // `services`: the full names listed by list_services. `bounds` as for a unary call: its slot
  // (of `principal`, on its connection) is held until gRPC is done with the stream, each answer's
  // bytes count in the response budget until sent, and an answer not read in time cancels it.
  ReflectionCall(grpc::GenericCallbackServerContext* ctx, const std::vector<std::string>* services,
                 std::string principal, CallBounds bounds);

  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnDone() override { delete this; }  // (hold_ releases what the stream held)

 private:
  // The response to one request (serialized ServerReflectionResponse).
  std::string Answer(const std::string& request);

  grpc::GenericCallbackServerContext* const ctx_;
  const std::vector<std::string>* services_;
  CallHold hold_;  // (the answer being written is held until OnWriteDone)
  grpc::ByteBuffer request_, response_;
  // Files already sent on this stream: each goes out once, with the dependencies not yet sent.
  absl::flat_hash_set<std::string> sent_;
};

}  // namespace kp::gateway
