// Backend calls started together and awaited together, without a thread waiting:
//
//   Fanout fanout(from);
//   fanout.Start(b.events(), &s_event, [&](auto* ctx, auto done) { b.events_stub->async()->GetEvent(ctx, &req, &resp, done); });
//   fanout.Start(...);
//   co_await fanout;   // resumes once every call has completed (on the thread completing the last)
//
// Each call goes through its backend's bulkhead (refused at once, with UNAVAILABLE in its status,
// when full) and records the view the backend applied (see AppliedViews).
#pragma once

#include <atomic>
#include <coroutine>
#include <deque>
#include <functional>
#include <memory>

#include <grpcpp/client_context.h>
#include <grpcpp/support/status.h>

#include "gateway/backend.h"
#include "gateway/call_context.h"

namespace kp::gateway {

class Fanout {
 public:
  using Done = std::function<void(grpc::Status)>;
  explicit Fanout(const Forwarded& from) : from_(from) {}
  Fanout(const Fanout&) = delete;
  Fanout& operator=(const Fanout&) = delete;

  // `start(ctx, done)` starts one async call; its status lands in `*status`.
  void Start(Backend& backend, grpc::Status* status, const std::function<void(grpc::ClientContext*, Done)>& start);

  // Awaitable: every started call has completed.
  bool await_ready() const noexcept { return false; }
  bool await_suspend(std::coroutine_handle<> awaiter) noexcept;
  void await_resume() const noexcept {}

 private:
  void Completed();
  const Forwarded& from_;
  std::deque<std::unique_ptr<Backend::Call>> calls_;
  // Calls not yet completed, plus one held by the awaiter until it has suspended.
  std::atomic<int> pending_{1};
  std::coroutine_handle<> awaiter_;
};

}  // namespace kp::gateway
