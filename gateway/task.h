// C++20 coroutines for the gateway's asynchronous work: an aggregation reads like sequential code
// (`co_await` a batch of backend calls, then the next phase) but no thread waits while the
// backends work. A coroutine is resumed by whatever completes what it awaits (a gRPC callback
// thread, the Redis thread) and runs on it until it awaits again.
//
//   Task<absl::Status> Build(...) { ...; co_await fanout; ...; co_return absl::OkStatus(); }
//   Start(Build(...), [](absl::Status s) { ... });   // from non-coroutine code
#pragma once

#include <coroutine>
#include <exception>
#include <functional>
#include <optional>
#include <utility>

#include "absl/status/status.h"

namespace kp::gateway {

// A lazily started coroutine producing a T; awaiting it runs it, and resumes the awaiter (by
// symmetric transfer, no stack growth) when it returns.
template <typename T>
class [[nodiscard]] Task {
 public:
  struct promise_type {
    std::optional<T> value;
    std::coroutine_handle<> continuation;

    Task get_return_object() { return Task(std::coroutine_handle<promise_type>::from_promise(*this)); }
    std::suspend_always initial_suspend() noexcept { return {}; }
    auto final_suspend() noexcept {
      struct Resume {
        bool await_ready() noexcept { return false; }
        std::coroutine_handle<> await_suspend(std::coroutine_handle<promise_type> h) noexcept {
          auto next = h.promise().continuation;
          return next ? next : std::noop_coroutine();
        }
        void await_resume() noexcept {}
      };
      return Resume{};
    }
    template <typename U>
    void return_value(U&& v) {
      value.emplace(std::forward<U>(v));
    }
    // The gateway does not throw; anything that does is a bug worth a crash report.
    void unhandled_exception() noexcept { std::terminate(); }
  };

  Task(Task&& other) noexcept : handle_(std::exchange(other.handle_, {})) {}
  Task& operator=(Task&&) = delete;
  ~Task() {
    if (handle_) handle_.destroy();
  }

  bool await_ready() const noexcept { return false; }
  std::coroutine_handle<> await_suspend(std::coroutine_handle<> awaiter) noexcept {
    handle_.promise().continuation = awaiter;
    return handle_;
  }
  T await_resume() { return std::move(*handle_.promise().value); }

 private:
  explicit Task(std::coroutine_handle<promise_type> h) : handle_(h) {}
  std::coroutine_handle<promise_type> handle_;
};

namespace internal {
// A coroutine nobody awaits: it starts at once and frees itself when it returns.
struct Detached {
  struct promise_type {
    Detached get_return_object() { return {}; }
    std::suspend_never initial_suspend() noexcept { return {}; }
    std::suspend_never final_suspend() noexcept { return {}; }
    void return_void() {}
    void unhandled_exception() noexcept { std::terminate(); }
  };
};

template <typename T, typename Done>
Detached Run(Task<T> task, Done done) {
  done(co_await task);
}
}  // namespace internal

// Runs `task` to its end and hands its result to `done` (on the thread that finishes it).
template <typename T, typename Done>
void Start(Task<T> task, Done done) {
  internal::Run(std::move(task), std::move(done));
}

// RETURN_IF_ERROR for coroutines.
#define CO_RETURN_IF_ERROR(expr)                 \
  do {                                           \
    ::absl::Status kp_co_status_ = (expr);       \
    if (!kp_co_status_.ok()) co_return kp_co_status_; \
  } while (0)

}  // namespace kp::gateway
