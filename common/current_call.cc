// CurrentCall: a thread-local pointer to the innermost call scope.
#include "common/current_call.h"

#include "absl/time/clock.h"

namespace kp {
namespace {

// A client gives up at its deadline, which comes a little before ours (ours counts from when
// the call arrived): a cancellation this close to our deadline is that deadline.
constexpr absl::Duration kDeadlineSkew = absl::Milliseconds(50);

thread_local CurrentCall* current = nullptr;
thread_local bool shielded = false;

}  // namespace

CurrentCall::CurrentCall(absl::Time deadline, std::function<bool()> cancelled)
    : deadline_(deadline), cancelled_(std::move(cancelled)), previous_(current) {
  current = this;
}

CurrentCall::~CurrentCall() { current = previous_; }

bool CurrentCall::Abandoned() {
  if (current == nullptr || shielded) return false;
  if (current->deadline_ <= absl::Now()) return true;
  return current->cancelled_ && current->cancelled_();
}

absl::Status CurrentCall::Check() {
  if (current == nullptr || shielded) return absl::OkStatus();
  const absl::Time now = absl::Now();
  const bool cancelled = current->deadline_ > now && current->cancelled_ && current->cancelled_();
  if (current->deadline_ <= now || (cancelled && current->deadline_ - now < kDeadlineSkew)) {
    return absl::DeadlineExceededError(
        "the deadline passed while the call was being processed; its work was stopped");
  }
  if (cancelled) {
    return absl::CancelledError(
        "the caller cancelled the call while it was being processed; its work was stopped");
  }
  return absl::OkStatus();
}

absl::Time CurrentCall::Deadline() {
  return current == nullptr || shielded ? absl::InfiniteFuture() : current->deadline_;
}

CurrentCall::Shield::Shield() : previous_(shielded) { shielded = true; }

CurrentCall::Shield::~Shield() { shielded = previous_; }

}  // namespace kp
