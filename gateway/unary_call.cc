// UnaryCall: see unary_call.h.
#include "gateway/unary_call.h"

#include <utility>
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

CallHold::~CallHold() {
  Sent();
  if (bounds_.slots != nullptr) bounds_.slots->Release(principal_, bounds_.connection);
}

bool CallHold::HoldAnswer(size_t bytes) {
  if (bounds_.responses == nullptr) return true;
  if (!bounds_.responses->Hold(principal_, bytes)) return false;
  held_ = bytes;
  return true;
}

void CallHold::Sending(grpc::ServerContextBase* ctx) {
  if (bounds_.send != nullptr) sending_ = bounds_.send->Start(ctx);
}

void CallHold::Sent() {
  if (bounds_.send != nullptr) bounds_.send->Done(std::exchange(sending_, nullptr));
  if (held_ > 0) bounds_.responses->Release(principal_, std::exchange(held_, 0));
}

UnaryCall::UnaryCall(grpc::GenericCallbackServerContext* ctx, const Handler* handler, Forwarded from, Bounds bounds)
    : ctx_(ctx), handler_(handler), from_(std::move(from)), hold_(from_.principal.name, std::move(bounds)) {
  ReadSlots* reads = hold_.bounds().reads;
  if (reads == nullptr) {
    StartReading();
    return;
  }
  switch (reads->Acquire(hold_.principal(), this)) {
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
  hold_.Sending(ctx_);
  Finish(status);
}

void UnaryCall::OnDone() { delete this; }  // (hold_ releases what the call held)

void UnaryCall::OnReadDone(bool ok) {
  if (ReadSlots* reads = hold_.bounds().reads) {
    // The request is in (or will never be): the read slot passes to this principal's next call.
    if (UnaryCall* next = reads->Release(hold_.principal())) next->StartReading();
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
  if (hold_.bounds().reads != nullptr && hold_.bounds().reads->Forget(hold_.principal(), this)) {
    End(grpc::Status(grpc::StatusCode::CANCELLED, "the call ended before its request was read"));
  }
}

void UnaryCall::Reply(const grpc::Status& status, grpc::ByteBuffer response) {
  if (!status.ok()) {
    End(status);
    return;
  }
  if (!hold_.HoldAnswer(response.Length())) {
    End(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                        "the gateway holds too many responses not yet read by this caller (or by all callers); "
                        "read the answers of earlier calls, or make fewer at once"));
    return;
  }
  response_ = std::move(response);
  hold_.Sending(ctx_);
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
