// The call the current thread works for: its deadline and whether its caller has gone, so that
// code far below the RPC boundary (the storage layer) stops work nobody waits for any more
// without every function passing the call down.
#pragma once

#include <functional>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace kp {

class CurrentCall {
 public:
  // While this object lives, the current thread works for a call that ends at `deadline` and
  // that `cancelled` says its caller cancelled. `cancelled` is asked on this thread, often
  // (SQLite asks every few thousand instructions): it must be cheap and thread-safe.
  CurrentCall(absl::Time deadline, std::function<bool()> cancelled);
  ~CurrentCall();
  CurrentCall(const CurrentCall&) = delete;
  CurrentCall& operator=(const CurrentCall&) = delete;

  // OK while the current thread's call still wants its answer, or the thread works for no call
  // (start-up, migrations, tools); else DEADLINE_EXCEEDED or CANCELLED.
  static absl::Status Check();
  // Check() without building a status, for hot paths.
  static bool Abandoned();
  // When the current thread's call ends (InfiniteFuture outside any call, or shielded).
  static absl::Time Deadline();

  // While one lives on a thread, that thread's call counts as wanted: what it protects must run
  // to its end even for a caller that has gone (a rollback is what makes an interrupted write
  // safe; a commit is atomic, it is not half done).
  class Shield {
   public:
    Shield();
    ~Shield();
    Shield(const Shield&) = delete;
    Shield& operator=(const Shield&) = delete;

   private:
    bool previous_;
  };

 private:
  absl::Time deadline_;
  std::function<bool()> cancelled_;
  CurrentCall* previous_;
};

}  // namespace kp
