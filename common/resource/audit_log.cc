// The audit log: see audit_log.h.
#include "common/resource/audit_log.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/resource/crud.h"
#include "common/resource/page_token.h"
#include "common/resource/reflection.h"
#include "common/status.h"
#include "khartoum/type/v1/audit.pb.h"

namespace kp::resource {

Actor ActorFrom(const CallInfo& call) {
  return Actor{call.principal.name, auth::RoleName(call.principal.role), call.method, call.request_id};
}

absl::Status AppendAudit(storage::Connection& conn, const Actor& actor, const std::string& resource,
                         const std::string& old_etag, const std::string& new_etag) {
  ASSIGN_OR_RETURN(auto stmt, conn.Prepare(
      "INSERT INTO audit_log (time, principal, role, method, resource, old_etag, new_etag, request_id) "
      "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"));
  stmt.Bind(1, absl::ToUnixMicros(absl::Now())).Bind(2, actor.principal).Bind(3, actor.role)
      .Bind(4, actor.method).Bind(5, resource).Bind(6, old_etag).Bind(7, new_etag).Bind(8, actor.request_id);
  return stmt.Run();
}

absl::Status ListAudit(storage::Database& db, const CallInfo& call, const google::protobuf::Message& req,
                       google::protobuf::Message* resp) {
  RETURN_IF_ERROR(auth::Require(call.principal, auth::Access::kAudit, "reading the audit log"));
  const auto* refl = req.GetReflection();
  const int requested = refl->GetInt32(req, req.GetDescriptor()->FindFieldByName("page_size"));
  if (requested < 0) return InvalidField("page_size", "must not be negative");
  const int page_size = requested == 0 ? kDefaultPageSize : std::min(requested, kMaxPageSize);
  const std::string resource = GetString(req, "resource");
  const std::string principal = GetString(req, "principal");
  const std::string fingerprint = PageTokenCodec::QueryFingerprint({"audit", resource, principal});

  std::string sql = "SELECT seq, time, principal, role, method, resource, old_etag, new_etag, request_id "
                    "FROM audit_log WHERE 1 = 1";
  std::vector<storage::SqlValue> params;
  if (!resource.empty()) {
    sql += " AND resource = ?";
    params.emplace_back(resource);
  }
  if (!principal.empty()) {
    sql += " AND principal = ?";
    params.emplace_back(principal);
  }
  const std::string token = GetString(req, "page_token");
  if (!token.empty()) {
    ASSIGN_OR_RETURN(auto last, DefaultPageTokenCodec().Decode(token, fingerprint));
    if (last.size() != 1 || !std::holds_alternative<int64_t>(last[0])) {
      return InvalidField("page_token", "is not a token returned by this query");
    }
    sql += " AND seq < ?";
    params.push_back(last[0]);
  }
  sql += " ORDER BY seq DESC LIMIT ?";
  params.emplace_back(static_cast<int64_t>(page_size) + 1);

  ASSIGN_OR_RETURN(auto conn, db.Acquire());
  ASSIGN_OR_RETURN(auto stmt, conn->Prepare(sql));
  stmt.BindAll(params);
  const auto* out = resp->GetDescriptor()->FindFieldByName("audit_entries");
  int count = 0;
  int64_t last_seq = 0;
  while (true) {
    ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    if (count == page_size) {
      SetString(*resp, "next_page_token", DefaultPageTokenCodec().Encode(fingerprint, {last_seq}));
      break;
    }
    khartoum::type::v1::AuditEntry entry;
    entry.set_sequence(stmt.Int(0));
    SetTime(entry, "time", stmt.Int(1));
    entry.set_principal(stmt.Text(2));
    entry.set_role(stmt.Text(3));
    entry.set_method(stmt.Text(4));
    entry.set_resource(stmt.Text(5));
    entry.set_old_etag(stmt.Text(6));
    entry.set_new_etag(stmt.Text(7));
    entry.set_request_id(stmt.Text(8));
    resp->GetReflection()->AddMessage(resp, out)->CopyFrom(entry);
    last_seq = entry.sequence();
    ++count;
  }
  return absl::OkStatus();
}

}  // namespace kp::resource
