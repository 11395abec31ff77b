// ReadSlots: see read_slots.h.
#include "gateway/read_slots.h"

#include <algorithm>

namespace kp::gateway {

ReadSlots::Admission ReadSlots::Acquire(const std::string& principal, UnaryCall* call) {
  absl::MutexLock lock(&mu_);
  Principal& p = principals_[principal];
  if (p.reading < per_principal_) {
    ++p.reading;
    return Admission::kRead;
  }
  if (static_cast<int>(p.waiting.size()) >= max_waiting_) return Admission::kRefuse;
  p.waiting.push_back(call);
  return Admission::kWait;
}

UnaryCall* ReadSlots::Release(const std::string& principal) {
  absl::MutexLock lock(&mu_);
  auto it = principals_.find(principal);
  if (it == principals_.end()) return nullptr;
  Principal& p = it->second;
  if (!p.waiting.empty()) {
    UnaryCall* next = p.waiting.front();  // the slot passes on
    p.waiting.pop_front();
    return next;
  }
  if (--p.reading == 0) principals_.erase(it);
  return nullptr;
}

bool ReadSlots::Forget(const std::string& principal, UnaryCall* call) {
  absl::MutexLock lock(&mu_);
  auto it = principals_.find(principal);
  if (it == principals_.end()) return false;
  auto& waiting = it->second.waiting;
  auto found = std::find(waiting.begin(), waiting.end(), call);
  if (found == waiting.end()) return false;
  waiting.erase(found);
  return true;
}

}  // namespace kp::gateway
