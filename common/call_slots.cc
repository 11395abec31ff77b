// CallSlots: see call_slots.h.
#include "common/call_slots.h"

#include "absl/strings/str_cat.h"
#include "common/metrics.h"

namespace kp {
namespace {

// Decrements a count, dropping its entry at 0 (principals and connections come and go).
void Decrement(absl::flat_hash_map<std::string, int>& counts, const std::string& key) {
  auto it = counts.find(key);
  if (it != counts.end() && --it->second <= 0) counts.erase(it);
}

}  // namespace

absl::Status CallSlots::Acquire(const std::string& principal, const std::string& connection) {
  enum { kTotal, kPrincipal, kConnection } refused;
  {
    absl::MutexLock lock(&mu_);
    if (total_ >= limits_.total) {
      refused = kTotal;
    } else {
      int& mine = by_principal_[principal];
      if (mine >= limits_.per_principal) {
        refused = kPrincipal;
      } else {
        int& theirs = by_connection_[connection];
        if (theirs >= limits_.per_connection) {
          refused = kConnection;
        } else {
          ++theirs;
          ++mine;
          ++total_;
          return absl::OkStatus();
        }
        if (theirs == 0) by_connection_.erase(connection);
      }
      if (mine == 0) by_principal_.erase(principal);
    }
  }
  switch (refused) {
    case kTotal:
      metrics::RecordEdgeRefusal(absl::StrCat(limits_.metric, "_total"));
      return absl::Status(limits_.when_full,
                          absl::StrCat("this server has ", limits_.total, " ", limits_.noun, " (its limit); retry shortly"));
    case kPrincipal:
      metrics::RecordEdgeRefusal(absl::StrCat(limits_.metric, "_principal"));
      return absl::ResourceExhaustedError(absl::StrCat("this principal has ", limits_.per_principal, " ",
                                                       limits_.noun, " here (its share of the server); "
                                                       "wait for answers before making more calls"));
    case kConnection:
      break;
  }
  metrics::RecordEdgeRefusal(absl::StrCat(limits_.metric, "_connection"));
  return absl::ResourceExhaustedError(absl::StrCat("this connection has ", limits_.per_connection, " ", limits_.noun,
                                                   " (a connection's limit); wait for answers or open another "
                                                   "connection"));
}

void CallSlots::Release(const std::string& principal, const std::string& connection) {
  absl::MutexLock lock(&mu_);
  --total_;
  Decrement(by_principal_, principal);
  Decrement(by_connection_, connection);
}

int CallSlots::in_progress() const {
  absl::MutexLock lock(&mu_);
  return total_;
}

}  // namespace kp
