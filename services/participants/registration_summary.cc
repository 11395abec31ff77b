// Per-event registration counts: totals, distinct countries and organisations, and
// breakdowns by role, status and gender, each one grouped query over live registrations.
#include "services/participants/registration_summary.h"

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "common/resource/crud.h"
#include "common/resource/validation.h"
#include "common/status.h"

namespace kp::participants {

namespace v1 = khartoum::participants::v1;

namespace {


// Registrations that count: neither cancelled nor deleted. The status is written into the SQL
// (a constant, not input) so that both databases match it to their partial indexes.
const std::string& LiveRegistration() {
  static const std::string* live = new std::string(absl::StrCat(
      "r.status <> ", static_cast<int>(v1::REGISTRATION_STATUS_CANCELLED), " AND r.delete_time IS NULL"));
  return *live;
}

// Live registrations of the events in the JSON array ?1, with their participants.
std::string Live(storage::Dialect dialect) {
  return absl::StrCat(" FROM registrations r JOIN participants p ON p.name = r.participant WHERE r.event IN (",
                      storage::JsonArrayValues(dialect, "?1"), ") AND ", LiveRegistration());
}

// Runs "SELECT r.event, <key>, COUNT(*) ... GROUP BY r.event, <key>" into a map field.
absl::Status Breakdown(storage::Connection& conn, const std::string& events_json, const char* key,
                       const google::protobuf::EnumDescriptor* type,
                       absl::flat_hash_map<std::string, v1::RegistrationSummary*>& by_event,
                       google::protobuf::Map<std::string, int32_t>* (*field)(v1::RegistrationSummary*)) {
  ASSIGN_OR_RETURN(auto stmt, conn.Prepare(absl::StrCat("SELECT r.event, ", key, ", COUNT(*)", Live(conn.dialect()),
                                                        " GROUP BY r.event, ", key)));
  stmt.Bind(1, events_json);
  while (true) {
    ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    const auto* value = type->FindValueByNumber(static_cast<int>(stmt.Int(1)));
    const std::string label = value ? value->name() : absl::StrCat(stmt.Int(1));
    (*field(by_event[stmt.Text(0)]))[label] = static_cast<int32_t>(stmt.Int(2));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status SummarizeRegistrations(storage::Database& db, const v1::SummarizeRegistrationsRequest& req,
                                    v1::SummarizeRegistrationsResponse* resp) {
  FieldViolations v;
  if (req.events_size() > resource::kMaxBatchSize) {
    v.Add("events", absl::StrCat("at most ", resource::kMaxBatchSize, " events"));
  }
  for (int i = 0; i < req.events_size() && i < resource::kMaxBatchSize; ++i) {
    resource::CheckResourceName(v, absl::StrCat("events[", i, "]"), "events", req.events(i));
  }
  RETURN_IF_ERROR(v.ToStatus());

  absl::flat_hash_map<std::string, v1::RegistrationSummary*> by_event;
  for (const auto& event : req.events()) {
    auto*& summary = by_event[event];
    if (summary == nullptr) {
      summary = resp->add_summaries();
      summary->set_event(event);
    }
  }
  const std::string json = resource::JsonNames(req.events());

  ASSIGN_OR_RETURN(auto conn, db.Acquire());
  // One snapshot for all four queries.
  ASSIGN_OR_RETURN(auto tx, storage::Transaction::Begin(conn.get(), storage::Transaction::Mode::kRead));
  {
    ASSIGN_OR_RETURN(auto stmt, conn->Prepare(absl::StrCat(
        "SELECT r.event, COUNT(*), COUNT(DISTINCT NULLIF(p.country_code, '')),"
        " COUNT(DISTINCT p.organisation)", Live(conn->dialect()), " GROUP BY r.event")));
    stmt.Bind(1, json);
    while (true) {
      ASSIGN_OR_RETURN(bool row, stmt.Step());
      if (!row) break;
      auto* s = by_event[stmt.Text(0)];
      s->set_total(static_cast<int32_t>(stmt.Int(1)));
      s->set_country_count(static_cast<int32_t>(stmt.Int(2)));
      s->set_organisation_count(static_cast<int32_t>(stmt.Int(3)));
    }
  }
  RETURN_IF_ERROR(Breakdown(*conn, json, "r.role", v1::RegistrationRole_descriptor(), by_event,
                            [](v1::RegistrationSummary* s) { return s->mutable_by_role(); }));
  RETURN_IF_ERROR(Breakdown(*conn, json, "r.status", v1::RegistrationStatus_descriptor(), by_event,
                            [](v1::RegistrationSummary* s) { return s->mutable_by_status(); }));
  RETURN_IF_ERROR(Breakdown(*conn, json, "p.gender", v1::Gender_descriptor(), by_event,
                            [](v1::RegistrationSummary* s) { return s->mutable_by_gender(); }));
  return tx.Commit();
}

absl::Status SummarizeParticipation(storage::Database& db, const v1::SummarizeParticipationRequest& req,
                                    v1::SummarizeParticipationResponse* resp) {
  constexpr int kMaxEvents = 100000;
  FieldViolations v;
  if (req.events_size() > kMaxEvents) v.Add("events", absl::StrCat("at most ", kMaxEvents, " events"));
  if (req.organisations_size() > resource::kMaxBatchSize) {
    v.Add("organisations", absl::StrCat("at most ", resource::kMaxBatchSize, " organisations"));
  }
  if (req.top_organisations() < 0 || req.top_organisations() > 100) v.Add("top_organisations", "must be 0..100");
  for (int i = 0; i < req.events_size() && v.list().size() < 20; ++i) {
    resource::CheckResourceName(v, absl::StrCat("events[", i, "]"), "events", req.events(i));
  }
  for (int i = 0; i < req.organisations_size() && v.list().size() < 20; ++i) {
    resource::CheckResourceName(v, absl::StrCat("organisations[", i, "]"), "organisations", req.organisations(i));
  }
  RETURN_IF_ERROR(v.ToStatus());

  ASSIGN_OR_RETURN(auto conn, db.Acquire());
  // The registrations counted, as a WHERE clause on `registrations r` with its parameters.
  // Every query below reads them from the covering index of live registrations by participant
  // and joins participants only per distinct participant (100k), not per registration (1M).
  std::vector<storage::SqlValue> params;
  std::string live = LiveRegistration();
  if (req.events_size() > 0) {
    absl::StrAppend(&live, " AND r.event IN (", storage::JsonArrayValues(conn->dialect(), "?"), ")");
    params.emplace_back(resource::JsonNames(req.events()));
  }
  if (req.organisations_size() > 0) {
    absl::StrAppend(&live, " AND r.participant IN (SELECT name FROM participants WHERE organisation IN (",
                    storage::JsonArrayValues(conn->dialect(), "?"), "))");
    params.emplace_back(resource::JsonNames(req.organisations()));
  }

  ASSIGN_OR_RETURN(auto tx, storage::Transaction::Begin(conn.get(), storage::Transaction::Mode::kRead));
  {
    // Each participant once: their number, countries and organisations.
    ASSIGN_OR_RETURN(auto stmt, conn->Prepare(absl::StrCat(
        "SELECT COUNT(*), COUNT(DISTINCT NULLIF(p.country_code, '')), COUNT(DISTINCT p.organisation)"
        " FROM participants p WHERE p.name IN (SELECT r.participant FROM registrations r WHERE ", live, ")")));
    stmt.BindAll(params);
    ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (row) {
      resp->set_participant_count(static_cast<int32_t>(stmt.Int(0)));
      resp->set_country_count(static_cast<int32_t>(stmt.Int(1)));
      resp->set_organisation_count(static_cast<int32_t>(stmt.Int(2)));
    }
  }
  {
    // Registrations per event, and in all.
    ASSIGN_OR_RETURN(auto stmt, conn->Prepare(absl::StrCat(
        "SELECT r.event, COUNT(*) FROM registrations r WHERE ", live, " GROUP BY r.event")));
    stmt.BindAll(params);
    int64_t total = 0;
    while (true) {
      ASSIGN_OR_RETURN(bool row, stmt.Step());
      if (!row) break;
      (*resp->mutable_registrations_by_event())[stmt.Text(0)] = static_cast<int32_t>(stmt.Int(1));
      total += stmt.Int(1);
    }
    resp->set_live_registrations(static_cast<int32_t>(total));
  }
  if (req.top_organisations() > 0) {
    ASSIGN_OR_RETURN(auto stmt, conn->Prepare(absl::StrCat(
        "SELECT p.organisation, CAST(SUM(x.n) AS BIGINT) AS total FROM (SELECT r.participant, COUNT(*) AS n FROM registrations r"
        " WHERE ", live, " GROUP BY r.participant) x JOIN participants p ON p.name = x.participant"
        " GROUP BY p.organisation ORDER BY total DESC, p.organisation LIMIT ?")));
    stmt.BindAll(params);
    stmt.Bind(static_cast<int>(params.size()) + 1, static_cast<int64_t>(req.top_organisations()));
    while (true) {
      ASSIGN_OR_RETURN(bool row, stmt.Step());
      if (!row) break;
      auto* top = resp->add_top_organisations();
      top->set_organisation(stmt.Text(0));
      top->set_registration_count(static_cast<int32_t>(stmt.Int(1)));
    }
  }
  return tx.Commit();
}

}  // namespace kp::participants
