// Typed checks against peer services, shared by every service that references another's
// resources: "do these exist?" with a deadline, mapped to the caller's field paths.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "common/rpc.h"
#include "khartoum/events/v1/events.grpc.pb.h"
#include "khartoum/organisations/v1/organisations.grpc.pb.h"

namespace kp {

// A reference from a field of the resource being written to another service's resource.
struct Reference {
  std::string field;  // e.g. "event.hosts[2]"
  std::string name;   // e.g. "organisations/kenya"
};

// While one is alive on a thread, the peer answers given on that thread are remembered and
// reused: a batch that names one event a thousand times asks for it once. Only successes are
// kept, and only for the batch (a call's worth of staleness, as between check and commit).
class PeerMemo {
 public:
  PeerMemo();
  ~PeerMemo();
  PeerMemo(const PeerMemo&) = delete;
  PeerMemo& operator=(const PeerMemo&) = delete;
  static PeerMemo* Current();

  absl::flat_hash_set<std::string> organisations;  // known to exist
  absl::flat_hash_map<std::string, khartoum::events::v1::Event> events;

 private:
  PeerMemo* previous_;
};

class OrganisationsClient {
 public:
  OrganisationsClient(const std::string& target, absl::Duration timeout);
  // OK when every referenced organisation exists (and is not deleted); FAILED_PRECONDITION
  // with a field violation per missing one; UNAVAILABLE when the service cannot answer.
  // The first missing ones are named (as many as the peer's NOT_FOUND lists), the rest counted.
  absl::Status CheckExist(const std::vector<Reference>& refs, const CallInfo& call) const;

 private:
  // Adds the missing ones among `names` (distinct) to `missing`, and to `unlisted` how many
  // more the peer found missing without naming them.
  absl::Status FindMissing(const std::vector<std::string>& names, const CallInfo& call,
                           absl::flat_hash_set<std::string>* missing, size_t* unlisted) const;
  std::unique_ptr<khartoum::organisations::v1::OrganisationService::Stub> stub_;
  absl::Duration timeout_;
};

class EventsClient {
 public:
  EventsClient(const std::string& target, absl::Duration timeout);
  // The event, FAILED_PRECONDITION (on `field`) when it does not exist, or UNAVAILABLE.
  absl::StatusOr<khartoum::events::v1::Event> Get(const Reference& ref, const CallInfo& call) const;

 private:
  std::unique_ptr<khartoum::events::v1::EventService::Stub> stub_;
  absl::Duration timeout_;
};

// Maps a peer's failure to what the caller should see: the peer being down is UNAVAILABLE
// (retryable), never the peer's own INVALID_ARGUMENT or INTERNAL passed through.
absl::Status PeerFailure(const std::string& peer, const absl::Status& status);

}  // namespace kp
