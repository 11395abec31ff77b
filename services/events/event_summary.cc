// Per-year event counts over the start_date column (ISO dates, so the year is its prefix).
#include "services/events/event_summary.h"

#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status.h"

namespace kp::events {

namespace v1 = khartoum::events::v1;

absl::Status SummarizeEvents(storage::Database& db, const v1::SummarizeEventsRequest& req,
                             v1::SummarizeEventsResponse* resp) {
  FieldViolations v;
  if (req.start_year() < 0 || req.start_year() > 9999) v.Add("start_year", "must be 0 or a year 1..9999");
  if (req.end_year() < 0 || req.end_year() > 9999) v.Add("end_year", "must be 0 or a year 1..9999");
  if (req.end_year() != 0 && req.end_year() < req.start_year()) v.Add("end_year", "must not be before start_year");
  RETURN_IF_ERROR(v.ToStatus());
  const std::string from = absl::StrFormat("%04d-00-00", req.start_year());
  const std::string to = absl::StrFormat("%04d-99-99", req.end_year() == 0 ? 9999 : req.end_year());
  constexpr char kRange[] = " FROM events WHERE delete_time IS NULL AND start_date >= ?1 AND start_date <= ?2";

  std::map<int, v1::EventYearSummary> years;
  ASSIGN_OR_RETURN(auto conn, db.Acquire());
  ASSIGN_OR_RETURN(auto tx, storage::Transaction::Begin(conn.get(), storage::Transaction::Mode::kRead));
  {
    ASSIGN_OR_RETURN(auto stmt, conn->Prepare(absl::StrCat(
        "SELECT CAST(substr(start_date, 1, 4) AS INTEGER) AS year, kind, level, COUNT(*)", kRange,
        " GROUP BY year, kind, level")));
    stmt.Bind(1, from).Bind(2, to);
    while (true) {
      ASSIGN_OR_RETURN(bool row, stmt.Step());
      if (!row) break;
      auto& y = years[static_cast<int>(stmt.Int(0))];
      const auto n = static_cast<int32_t>(stmt.Int(3));
      y.set_event_count(y.event_count() + n);
      const auto* kind = v1::EventKind_descriptor()->FindValueByNumber(static_cast<int>(stmt.Int(1)));
      const auto* level = v1::EventLevel_descriptor()->FindValueByNumber(static_cast<int>(stmt.Int(2)));
      (*y.mutable_by_kind())[kind ? kind->name() : absl::StrCat(stmt.Int(1))] += n;
      (*y.mutable_by_level())[level ? level->name() : absl::StrCat(stmt.Int(2))] += n;
    }
  }
  if (req.include_event_names()) {
    ASSIGN_OR_RETURN(auto stmt, conn->Prepare(absl::StrCat(
        "SELECT CAST(substr(start_date, 1, 4) AS INTEGER), name", kRange, " ORDER BY start_date, seq")));
    stmt.Bind(1, from).Bind(2, to);
    while (true) {
      ASSIGN_OR_RETURN(bool row, stmt.Step());
      if (!row) break;
      years[static_cast<int>(stmt.Int(0))].add_events(stmt.Text(1));
    }
  }
  RETURN_IF_ERROR(tx.Commit());
  for (auto& [year, summary] : years) {
    summary.set_year(year);
    *resp->add_years() = std::move(summary);
  }
  return absl::OkStatus();
}

}  // namespace kp::events
