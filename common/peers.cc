// Typed peer checks: see peers.h.
#include "common/peers.h"

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/channel.h"

namespace kp {

namespace ov1 = khartoum::organisations::v1;
namespace ev1 = khartoum::events::v1;

absl::Status PeerFailure(const std::string& peer, const absl::Status& status) {
  const bool retryable = absl::IsUnavailable(status) || absl::IsDeadlineExceeded(status) ||
                         absl::IsResourceExhausted(status) || absl::IsAborted(status);
  return absl::Status(retryable ? status.code() : absl::StatusCode::kUnavailable,
                      absl::StrCat(peer, " service could not check the request: ", status.message()));
}

namespace {
thread_local PeerMemo* current_memo = nullptr;
}  // namespace

PeerMemo::PeerMemo() : previous_(current_memo) { current_memo = this; }
PeerMemo::~PeerMemo() { current_memo = previous_; }
PeerMemo* PeerMemo::Current() { return current_memo; }

OrganisationsClient::OrganisationsClient(const std::string& target, absl::Duration timeout)
    : stub_(ov1::OrganisationService::NewStub(
          MakeChannel(target, "khartoum.organisations.v1.OrganisationService"))),
      timeout_(timeout) {}

absl::Status OrganisationsClient::CheckExist(const std::vector<Reference>& refs,
                                             const CallInfo& call) const {
  if (refs.empty()) return absl::OkStatus();
  PeerMemo* memo = PeerMemo::Current();
  ov1::BatchGetOrganisationsRequest req;
  absl::flat_hash_set<std::string> seen;
  for (const auto& r : refs) {
    if (memo != nullptr && memo->organisations.contains(r.name)) continue;
    if (seen.insert(r.name).second) req.add_names(r.name);
  }
  if (req.names().empty()) return absl::OkStatus();
  ov1::BatchGetOrganisationsResponse resp;
  auto ctx = NewClientContext(timeout_, call.deadline, call.request_id, call.authorization, call.traceparent);
  absl::Status status = FromGrpcStatus(stub_->BatchGetOrganisations(ctx.get(), req, &resp));
  if (status.ok()) {
    if (memo != nullptr) memo->organisations.insert(req.names().begin(), req.names().end());
    return status;
  }
  if (!absl::IsNotFound(status)) return PeerFailure("organisations", status);
  absl::flat_hash_set<std::string> missing;
  for (auto& n : GetMissingNames(status)) missing.insert(n);
  FieldViolations v;
  for (const auto& r : refs) {
    if (missing.contains(r.name)) v.Add(r.field, absl::StrCat("organisation '", r.name, "' does not exist"));
  }
  if (v.empty()) return PeerFailure("organisations", status);
  return v.ToStatus(absl::StatusCode::kFailedPrecondition);
}

EventsClient::EventsClient(const std::string& target, absl::Duration timeout)
    : stub_(ev1::EventService::NewStub(MakeChannel(target, "khartoum.events.v1.EventService"))),
      timeout_(timeout) {}

absl::StatusOr<ev1::Event> EventsClient::Get(const Reference& ref, const CallInfo& call) const {
  PeerMemo* memo = PeerMemo::Current();
  if (memo != nullptr) {
    if (auto it = memo->events.find(ref.name); it != memo->events.end()) return it->second;
  }
  ev1::GetEventRequest req;
  req.set_name(ref.name);
  ev1::GetEventResponse resp;
  auto ctx = NewClientContext(timeout_, call.deadline, call.request_id, call.authorization, call.traceparent);
  absl::Status status = FromGrpcStatus(stub_->GetEvent(ctx.get(), req, &resp));
  if (absl::IsNotFound(status)) {
    FieldViolations v;
    v.Add(ref.field, absl::StrCat("event '", ref.name, "' does not exist"));
    return v.ToStatus(absl::StatusCode::kFailedPrecondition);
  }
  if (!status.ok()) return PeerFailure("events", status);
  if (memo != nullptr) memo->events[ref.name] = resp.event();
  return std::move(*resp.mutable_event());
}

}  // namespace kp
