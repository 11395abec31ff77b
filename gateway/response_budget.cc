// ResponseBudget: see response_budget.h.
#include "gateway/response_budget.h"

#include "common/metrics.h"

namespace kp::gateway {

bool ResponseBudget::Hold(const std::string& principal, size_t bytes) {
  if (bytes == 0) return true;  // nothing to hold (and no entry to keep for the principal)
  {
    absl::MutexLock lock(&mu_);
    size_t& mine = by_principal_[principal];
    const bool fits = (total_ == 0 || held_ + bytes <= total_) && (per_principal_ == 0 || mine + bytes <= per_principal_);
    if (fits) {
      held_ += bytes;
      mine += bytes;
      metrics::ResponseBytesHeld(static_cast<double>(held_));
      return true;
    }
    if (mine == 0) by_principal_.erase(principal);
  }
  metrics::RecordResponseRefused(principal);
  return false;
}

void ResponseBudget::Release(const std::string& principal, size_t bytes) {
  absl::MutexLock lock(&mu_);
  held_ -= bytes;
  auto it = by_principal_.find(principal);
  if (it != by_principal_.end() && (it->second -= bytes) == 0) by_principal_.erase(it);
  metrics::ResponseBytesHeld(static_cast<double>(held_));
}

}  // namespace kp::gateway
