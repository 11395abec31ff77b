// Participant and registration fields, validation and rules.
#include "services/participants/participant_rules.h"

#include <optional>

#include "absl/strings/str_cat.h"
#include "common/resource/validation.h"
#include "khartoum/participants/v1/participants.pb.h"

namespace kp::participants {

namespace v1 = khartoum::participants::v1;
namespace r = kp::resource;

resource::ResourceSpec ParticipantSpec() {
  return {
      .collection = "participants",
      .singular = "participant",
      .descriptor = v1::Participant::descriptor(),
      .fields = {"organisation", "country_code", "family_name", "given_name", "gender"},
      .search_paths = {"given_name", "family_name", "job_title"},
      .output_only = {},
      .immutable = {},
  };
}

resource::ResourceSpec RegistrationSpec() {
  return {
      .collection = "registrations",
      .singular = "registration",
      .descriptor = v1::Registration::descriptor(),
      .fields = {"event", "participant", "role", "status"},
      .search_paths = {},
      .output_only = {},
      .immutable = {"event", "participant"},
  };
}

void ParticipantRules::Validate(const google::protobuf::Message& message, FieldViolations& v) const {
  const auto& p = static_cast<const v1::Participant&>(message);
  r::CheckRequired(v, "participant.given_name", p.given_name());
  r::CheckLength(v, "participant.given_name", p.given_name(), 100);
  r::CheckRequired(v, "participant.family_name", p.family_name());
  r::CheckLength(v, "participant.family_name", p.family_name(), 100);
  if (p.organisation().empty()) v.Add("participant.organisation", "is required");
  else r::CheckResourceName(v, "participant.organisation", "organisations", p.organisation());
  r::CheckLength(v, "participant.job_title", p.job_title(), 200);
  r::CheckCountryCode(v, "participant.country_code", p.country_code());
  r::CheckEnum(v, "participant.gender", p, "gender", false);
  r::CheckEmail(v, "participant.email", p.email());
  r::CheckPhone(v, "participant.phone", p.phone());
}

absl::StatusOr<resource::TxCheck> ParticipantRules::Prepare(const google::protobuf::Message& after,
                                                            const google::protobuf::Message* before,
                                                            const CallInfo& call) const {
  const auto& p = static_cast<const v1::Participant&>(after);
  const bool changed = before == nullptr ||
                       static_cast<const v1::Participant&>(*before).organisation() != p.organisation();
  if (changed) RETURN_IF_ERROR(organisations_->CheckExist({{"participant.organisation", p.organisation()}}, call));
  return resource::TxCheck();
}

absl::Status ParticipantRules::AuthorizeWrite(const auth::Principal& p, const google::protobuf::Message& after,
                                              const google::protobuf::Message* before) const {
  if (p.role != auth::Role::kRegistrar) return ResourceRules::AuthorizeWrite(p, after, before);
  const auto& a = static_cast<const v1::Participant&>(after);
  const bool own = auth::IsOwnOrganisation(p, a.organisation()) &&
                   (before == nullptr ||
                    auth::IsOwnOrganisation(p, static_cast<const v1::Participant&>(*before).organisation()));
  if (own) return absl::OkStatus();
  return absl::PermissionDeniedError(absl::StrCat("registrar '", p.name, "' may only write participants of ",
                                                  p.organisation));
}

void ParticipantRules::Redact(const auth::Principal& p, google::protobuf::Message& message) const {
  auto& participant = static_cast<v1::Participant&>(message);
  if (auth::CanSeePersonalData(p, participant.organisation())) return;
  participant.clear_email();
  participant.clear_phone();
}

absl::Status RegistrationRules::AuthorizeWrite(const auth::Principal& p, const google::protobuf::Message& after,
                                               const google::protobuf::Message* before) const {
  if (p.role != auth::Role::kRegistrar) return ResourceRules::AuthorizeWrite(p, after, before);
  const auto& reg = static_cast<const v1::Registration&>(after);
  auto participant = participants_->Get(reg.participant(), /*show_deleted=*/true);
  if (participant.ok() &&
      auth::IsOwnOrganisation(p, static_cast<const v1::Participant&>(**participant).organisation())) {
    return absl::OkStatus();
  }
  if (!participant.ok() && !absl::IsNotFound(participant.status())) return participant.status();
  return absl::PermissionDeniedError(absl::StrCat("registrar '", p.name, "' may only register participants of ",
                                                  p.organisation));
}

void RegistrationRules::Normalize(google::protobuf::Message& message) const {
  auto& reg = static_cast<v1::Registration&>(message);
  if (reg.status() == v1::REGISTRATION_STATUS_UNSPECIFIED) reg.set_status(v1::REGISTRATION_STATUS_REGISTERED);
}

void RegistrationRules::Validate(const google::protobuf::Message& message, FieldViolations& v) const {
  const auto& reg = static_cast<const v1::Registration&>(message);
  if (reg.event().empty()) v.Add("registration.event", "is required");
  else r::CheckResourceName(v, "registration.event", "events", reg.event());
  if (reg.participant().empty()) v.Add("registration.participant", "is required");
  else r::CheckResourceName(v, "registration.participant", "participants", reg.participant());
  r::CheckEnum(v, "registration.role", reg, "role", true);
  r::CheckEnum(v, "registration.status", reg, "status", false);
}

namespace {

bool IsLive(const v1::Registration& reg) {
  return reg.status() != v1::REGISTRATION_STATUS_CANCELLED && !reg.has_delete_time();
}

constexpr int64_t kCancelled = v1::REGISTRATION_STATUS_CANCELLED;

// Inside the write transaction: the participant exists and, for a registrar (`registrar` set),
// still belongs to its organisation (the row is locked: a concurrent move of the participant
// commits before this check or after this write); then, on create or when the registration
// becomes live (`full`), one live registration per participant and event, and the event's
// capacity (`capacity` > 0).
absl::Status CheckInTransaction(storage::Connection& conn, const v1::Registration& reg, int capacity, bool full,
                                const auth::Principal* registrar) {
  // Registrations for one event are decided one at a time, across replicas (PostgreSQL).
  if (full) RETURN_IF_ERROR(conn.LockKey(absl::StrCat("registrations:", reg.event())));
  {
    ASSIGN_OR_RETURN(auto stmt, conn.Prepare(absl::StrCat(
        "SELECT organisation FROM participants WHERE name = ? AND delete_time IS NULL",
        storage::ForUpdate(conn.dialect()))));
    stmt.Bind(1, reg.participant());
    ASSIGN_OR_RETURN(bool found, stmt.Step());
    if (!found) {
      FieldViolations v;
      v.Add("registration.participant", absl::StrCat("participant '", reg.participant(), "' does not exist"));
      return v.ToStatus(absl::StatusCode::kFailedPrecondition);
    }
    if (registrar != nullptr && !auth::IsOwnOrganisation(*registrar, stmt.Text(0))) {
      return absl::PermissionDeniedError(absl::StrCat("registrar '", registrar->name,
                                                      "' may only register participants of ", registrar->organisation));
    }
  }
  if (!full) return absl::OkStatus();
  {
    ASSIGN_OR_RETURN(auto stmt, conn.Prepare(
        "SELECT name FROM registrations WHERE event = ? AND participant = ? AND status <> ? "
        "AND delete_time IS NULL AND name <> ? LIMIT 1"));
    stmt.Bind(1, reg.event()).Bind(2, reg.participant()).Bind(3, kCancelled).Bind(4, reg.name());
    ASSIGN_OR_RETURN(bool found, stmt.Step());
    if (found) {
      return absl::AlreadyExistsError(absl::StrCat(
          "participant '", reg.participant(), "' already has a live registration for '", reg.event(),
          "' (", stmt.Text(0), "); cancel that one first"));
    }
  }
  if (capacity > 0) {
    ASSIGN_OR_RETURN(auto stmt, conn.Prepare(
        "SELECT COUNT(*) FROM registrations WHERE event = ? AND status <> ? "
        "AND delete_time IS NULL AND name <> ?"));
    stmt.Bind(1, reg.event()).Bind(2, kCancelled).Bind(3, reg.name());
    ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (row && stmt.Int(0) >= capacity) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "event '", reg.event(), "' is full: ", capacity, " live registrations, its capacity"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<resource::TxCheck> RegistrationRules::Prepare(const google::protobuf::Message& after,
                                                             const google::protobuf::Message* before,
                                                             const CallInfo& call) const {
  const auto& reg = static_cast<const v1::Registration&>(after);
  const bool becomes_live =
      IsLive(reg) && (before == nullptr || !IsLive(static_cast<const v1::Registration&>(*before)));
  std::optional<auth::Principal> registrar;
  if (call.principal.role == auth::Role::kRegistrar) registrar = call.principal;
  if (!becomes_live && before != nullptr && !registrar) return resource::TxCheck();
  int capacity = 0;
  if (becomes_live || before == nullptr) {
    ASSIGN_OR_RETURN(auto event, events_->Get({"registration.event", reg.event()}, call));
    if (becomes_live && event.status() == khartoum::events::v1::EVENT_STATUS_CANCELLED) {
      FieldViolations v;
      v.Add("registration.event", absl::StrCat("event '", reg.event(), "' is cancelled"));
      return v.ToStatus(absl::StatusCode::kFailedPrecondition);
    }
    if (becomes_live) capacity = event.capacity();
  }
  const bool full = becomes_live || before == nullptr;
  return resource::TxCheck([reg, capacity, full, registrar](storage::Connection& conn) {
    return CheckInTransaction(conn, reg, capacity, full, registrar ? &*registrar : nullptr);
  });
}

}  // namespace kp::participants
