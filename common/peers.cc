// Typed peer checks: see peers.h.
#include "common/peers.h"

#include <algorithm>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/cord.h"
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

absl::Status OrganisationsClient::FindMissing(const std::vector<std::string>& names, const CallInfo& call,
                                              absl::flat_hash_set<std::string>* missing, size_t* unlisted) const {
  ov1::BatchGetOrganisationsRequest req;
  for (const auto& n : names) req.add_names(n);
  ov1::BatchGetOrganisationsResponse resp;
  auto ctx = NewClientContext(timeout_, call.deadline, call.request_id, call.authorization, call.traceparent);
  absl::Status status = FromGrpcStatus(stub_->BatchGetOrganisations(ctx.get(), req, &resp));
  if (status.ok()) return status;
  if (absl::IsResourceExhausted(status) && names.size() > 1) {
    // Existence is all that is asked, but the answer carries the organisations: more of them
    // than one response holds is asked again in halves (one organisation always fits).
    const auto half = names.begin() + static_cast<std::ptrdiff_t>(names.size() / 2);
    RETURN_IF_ERROR(FindMissing(std::vector<std::string>(names.begin(), half), call, missing, unlisted));
    return FindMissing(std::vector<std::string>(half, names.end()), call, missing, unlisted);
  }
  if (!absl::IsNotFound(status)) return PeerFailure("organisations", status);
  // The first missing ones, as many as fit in one error; the rest counted.
  const std::vector<std::string> listed = GetMissingNames(status);
  const size_t before = missing->size();
  for (const auto& n : listed) {
    if (std::find(names.begin(), names.end(), n) != names.end()) missing->insert(n);
  }
  const size_t named = missing->size() - before;
  if (named == 0) return PeerFailure("organisations", status);
  const size_t count = GetMissingCount(status);
  if (count > named) *unlisted += count - named;
  return absl::OkStatus();
}

absl::Status OrganisationsClient::CheckExist(const std::vector<Reference>& refs,
                                             const CallInfo& call) const {
  if (refs.empty()) return absl::OkStatus();
  PeerMemo* memo = PeerMemo::Current();
  std::vector<std::string> names;
  absl::flat_hash_set<std::string> seen;
  for (const auto& r : refs) {
    if (memo != nullptr && memo->organisations.contains(r.name)) continue;
    if (seen.insert(r.name).second) names.push_back(r.name);
  }
  if (names.empty()) return absl::OkStatus();
  absl::flat_hash_set<std::string> missing;
  size_t unlisted = 0;
  RETURN_IF_ERROR(FindMissing(names, call, &missing, &unlisted));
  if (missing.empty()) {
    if (memo != nullptr) memo->organisations.insert(names.begin(), names.end());
    return absl::OkStatus();
  }
  FieldViolations v;
  for (const auto& r : refs) {
    if (missing.contains(r.name)) v.Add(r.field, absl::StrCat("organisation '", r.name, "' does not exist"));
  }
  absl::Status status = v.ToStatus(absl::StatusCode::kFailedPrecondition);
  if (unlisted == 0) return status;
  // A peer names a bounded number of missing ones per answer: the first are named, the others
  // counted, first thing in the message so that no bound cuts it (fixing those named and trying
  // again names the next ones).
  return WithMessage(status, absl::StrCat(missing.size() + unlisted, " of the organisations named do not exist, ",
                                          "the first ", missing.size(), " named; ", status.message()));
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
