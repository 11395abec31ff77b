// UnaryCall: see unary_call.h.
#include "gateway/unary_call.h"

#include <vector>

namespace kp::gateway {

std::string ToString(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  (void)buffer.Dump(&slices);
  std::string out;
  out.reserve(buffer.Length());
  for (const auto& s : slices) out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return out;
}

grpc::ByteBuffer ToByteBuffer(std::string bytes) {
  auto* keep = new std::string(std::move(bytes));
  grpc::Slice slice(keep->data(), keep->size(), [](void* p) { delete static_cast<std::string*>(p); }, keep);
  return grpc::ByteBuffer(&slice, 1);
}

grpc::ByteBuffer SharedByteBuffer(Body body) {
  auto* keep = new Body(std::move(body));
  grpc::Slice slice(const_cast<char*>((*keep)->data()), (*keep)->size(),
                    [](void* p) { delete static_cast<Body*>(p); }, keep);
  return grpc::ByteBuffer(&slice, 1);
}

UnaryCall::UnaryCall(grpc::GenericCallbackServerContext* ctx, const Handler* handler, Forwarded from, Bounds bounds)
    : ctx_(ctx), handler_(handler), from_(std::move(from)), principal_(from_.principal.name), bounds_(bounds) {
  if (bounds_.reads == nullptr) {
    StartReading();
    return;
  }
  switch (bounds_.reads->Acquire(principal_, this)) {
    case ReadSlots::Admission::kRead:
      StartReading();
      return;
    case ReadSlots::Admission::kWait:
      return;  // a Release starts it (or OnCancel ends it)
    case ReadSlots::Admission::kRefuse:
      End(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                          "too many calls of this principal are waiting for their requests to be read; send "
                          "each request whole, or make fewer calls at once"));
      return;
  }
}

void UnaryCall::StartReading() { StartRead(&request_); }

void UnaryCall::End(const grpc::Status& status) {
  if (bounds_.send != nullptr) sending_ = bounds_.send->Start(ctx_);
  Finish(status);
}

void UnaryCall::OnDone() {
  if (bounds_.send != nullptr) bounds_.send->Done(sending_);
  if (held_ > 0) bounds_.responses->Release(principal_, held_);
  if (bounds_.slots != nullptr) bounds_.slots->Release(principal_, bounds_.connection);
  delete this;
}

void UnaryCall::OnReadDone(bool ok) {
  if (bounds_.reads != nullptr) {
    // The request is in (or will never be): the read slot passes to this principal's next call.
    if (UnaryCall* next = bounds_.reads->Release(principal_)) next->StartReading();
  }
  if (!ok) {
    // The stream ended before a request came: the caller has gone (or sent none).
    End(grpc::Status(grpc::StatusCode::CANCELLED, "the call ended before its request arrived"));
    return;
  }
  (*handler_)(this, std::move(from_));
}

void UnaryCall::OnCancel() {
  cancel_->Cancel();
  // Still waiting for a read slot: it will never read.
  if (bounds_.reads != nullptr && bounds_.reads->Forget(principal_, this)) {
    End(grpc::Status(grpc::StatusCode::CANCELLED, "the call ended before its request was read"));
  }
}

void UnaryCall::Reply(const grpc::Status& status, grpc::ByteBuffer response) {
  if (!status.ok()) {
    End(status);
    return;
  }
  const size_t bytes = response.Length();
  if (bounds_.responses != nullptr && !bounds_.responses->Hold(principal_, bytes)) {
    End(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                        "the gateway holds too many responses not yet read by this caller (or by all callers); "
                        "read the answers of earlier calls, or make fewer at once"));
    return;
  }
  if (bounds_.responses != nullptr) held_ = bytes;
  response_ = std::move(response);
  if (bounds_.send != nullptr) sending_ = bounds_.send->Start(ctx_);
  StartWriteAndFinish(&response_, grpc::WriteOptions(), grpc::Status::OK);
}

void UnaryCall::ReplyFromCache(CacheOutcome outcome, const grpc::Status& status, const Body& body) {
  ctx_->AddInitialMetadata("x-kp-cache", OutcomeName(outcome));
  if (status.ok()) {
    Reply(status, SharedByteBuffer(body));
  } else {
    Reply(status);
  }
}

}  // namespace kp::gateway
