// One unary call arriving at the gateway through gRPC's generic callback API: it reads the
// request, hands the call to its route, and sends whatever the route replies, exactly once, from
// whichever thread the reply comes on. It frees itself when gRPC is done with it.
#pragma once

#include <atomic>
#include <functional>
#include <memory>

#include <grpcpp/client_context.h>
#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/server_callback.h>

#include "gateway/call_context.h"
#include "common/call_slots.h"
#include "gateway/cancel_scope.h"
#include "gateway/read_slots.h"
#include "gateway/response_budget.h"
#include "gateway/response_cache.h"
#include "gateway/send_deadlines.h"

namespace kp::gateway {

// What bounds the calls in progress (any may be null): `slots` holds a call's slot (taken for it
// on `connection`) until gRPC is done with it; `reads` bounds the requests being read per
// principal; `responses` holds an answer's bytes until they are sent; `send` cancels a call whose
// caller does not take its answer in time.
struct CallBounds {
  CallSlots* slots = nullptr;
  std::string connection;
  ReadSlots* reads = nullptr;
  ResponseBudget* responses = nullptr;
  SendDeadlines* send = nullptr;
};

// What one call (or stream) of `principal` holds of its bounds, each released once: the answer
// being sent (its bytes in the budget, its send deadline) when it is out, the rest, slot included,
// when the call is done (the holder's destruction, in OnDone).
class CallHold {
 public:
  CallHold(std::string principal, CallBounds bounds) : principal_(std::move(principal)), bounds_(std::move(bounds)) {}
  ~CallHold();
  CallHold(const CallHold&) = delete;
  CallHold& operator=(const CallHold&) = delete;

  const std::string& principal() const { return principal_; }
  const CallBounds& bounds() const { return bounds_; }
  // Holds an answer's `bytes` until Sent: false (nothing held) if over the principal's or the
  // gateway's budget.
  bool HoldAnswer(size_t bytes);
  // The answer (or the call's status) is on its way to the caller of `ctx`: under the send deadline.
  void Sending(grpc::ServerContextBase* ctx);
  // The answer is out: its bytes and its deadline released.
  void Sent();

 private:
  const std::string principal_;
  const CallBounds bounds_;
  size_t held_ = 0;  // bytes held in bounds_.responses
  SendDeadlines::Entry* sending_ = nullptr;
};

class UnaryCall final : public grpc::ServerGenericBidiReactor {
 public:
  // Runs the call, its caller admitted (see call_context.h) and its request read.
  using Handler = std::function<void(UnaryCall*, Forwarded from)>;
  using Bounds = CallBounds;
  // `handler` (which outlives the call) is run once the request has arrived.
  UnaryCall(grpc::GenericCallbackServerContext* ctx, const Handler* handler, Forwarded from, Bounds bounds);

  grpc::GenericCallbackServerContext* context() const { return ctx_; }
  const grpc::ByteBuffer& request() const { return request_; }
  // Finishes the call: OK with `response`, or an error `status`. RESOURCE_EXHAUSTED instead if
  // the response does not fit the bytes its principal (or the gateway) may hold unsent.
  void Reply(const grpc::Status& status, grpc::ByteBuffer response = {});
  // Finishes it with a cached (or loaded) body, saying where it came from (x-kp-cache).
  void ReplyFromCache(CacheOutcome outcome, const grpc::Status& status, const Body& body);

  // The backend calls made for this call alone: cancelled if this call is, so that a caller who
  // gives up frees the backends and their bulkheads at once.
  const std::shared_ptr<CancelScope>& cancel_scope() const { return cancel_; }

  // Starts reading the request (a read slot is this call's).
  void StartReading();

  void OnReadDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

 private:
  // Finish(status), the answer under the send deadline.
  void End(const grpc::Status& status);

  grpc::GenericCallbackServerContext* const ctx_;
  const Handler* const handler_;
  Forwarded from_;
  CallHold hold_;
  grpc::ByteBuffer request_, response_;
  const std::shared_ptr<CancelScope> cancel_ = std::make_shared<CancelScope>();
};

// A call refused before it is read (no route, or the gateway is at its limit).
class Refused final : public grpc::ServerGenericBidiReactor {
 public:
  explicit Refused(const grpc::Status& status) { Finish(status); }
  void OnDone() override { delete this; }
};

// The bytes of a buffer, and a buffer of bytes.
std::string ToString(const grpc::ByteBuffer& buffer);
grpc::ByteBuffer ToByteBuffer(std::string bytes);
// A buffer over a cached body without copying it (the body lives until gRPC has sent it).
grpc::ByteBuffer SharedByteBuffer(Body body);

}  // namespace kp::gateway
