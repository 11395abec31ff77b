// Generic resource storage: see repository.h.
#include "absl/strings/string_view.h"
#include "common/resource/repository.h"

#include <algorithm>

#include "absl/random/random.h"
#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/resource/filter.h"
#include "common/resource/ordering.h"
#include "common/resource/reflection.h"
#include "common/resource/validation.h"
#include "common/status.h"
#include "google/rpc/error_details.pb.h"

namespace kp::resource {

using google::protobuf::Message;
using storage::SqlValue;
using storage::Transaction;

namespace {

std::string NewEtag() {
  thread_local absl::BitGen gen;
  return absl::StrFormat("%016x", absl::Uniform<uint64_t>(gen));
}

int64_t NowMicros() { return absl::ToUnixMicros(absl::Now()); }

bool IsStandardColumn(const std::string& column) {
  return column == "create_time" || column == "update_time" || column == "delete_time";
}

absl::Status ParseInto(absl::string_view blob, Message& out) {
  if (!out.ParseFromArray(blob.data(), static_cast<int>(blob.size()))) {
    return absl::DataLossError("stored resource does not parse");
  }
  return absl::OkStatus();
}

}  // namespace

std::string FtsQuery(storage::Dialect dialect, absl::string_view text) {
  std::vector<std::string> terms;
  std::string current;
  // Terms hold only letters, digits and non-ASCII bytes, so quoting them is safe in both.
  auto flush = [&] {
    if (current.empty()) return;
    if (dialect == storage::Dialect::kPostgres) terms.push_back(absl::StrCat("'", current, "':*"));
    else terms.push_back(absl::StrCat("\"", current, "\"*"));
    current.clear();
  };
  for (char c : text.substr(0, 256)) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (u >= 0x80 || std::isalnum(u)) current.push_back(c);
    else flush();
  }
  flush();
  if (terms.size() > 16) terms.resize(16);
  return absl::StrJoin(terms, dialect == storage::Dialect::kPostgres ? " & " : " ");
}

Repository::Repository(storage::Database* db, ResourceSpec spec, const PageTokenCodec& codec)
    : db_(db), spec_(std::move(spec)), catalog_(spec_), codec_(codec) {
  std::vector<std::string> names{"name", "data", "etag", "create_time", "update_time", "delete_time"};
  for (const auto& c : catalog_.columns()) {
    if (c.type == ColumnType::kRepeatedString) {
      repeated_columns_.push_back(&c);
    } else if (!IsStandardColumn(c.column)) {
      scalar_columns_.push_back(&c);
      names.push_back(c.column);
    }
  }
  std::vector<std::string> marks(names.size(), "?");
  insert_sql_ = absl::StrCat("INSERT INTO ", catalog_.table(), " (", absl::StrJoin(names, ", "),
                             ") VALUES (", absl::StrJoin(marks, ", "), ") RETURNING seq");
  std::vector<std::string> sets;
  for (size_t i = 1; i < names.size(); ++i) {
    if (names[i] != "create_time") sets.push_back(absl::StrCat(names[i], " = ?"));
  }
  update_sql_ = absl::StrCat("UPDATE ", catalog_.table(), " SET ", absl::StrJoin(sets, ", "),
                             " WHERE seq = ?");
  // SQLite: an FTS5 table (accents folded by its tokenizer); PostgreSQL: a tsvector column of
  // the accent-free text with a GIN index.
  fts_sql_ = db_->dialect() == storage::Dialect::kPostgres
                 ? absl::StrCat("INSERT INTO ", catalog_.FtsTable(), " (seq, body) VALUES (?, to_tsvector('simple', "
                                "unaccent(?))) ON CONFLICT (seq) DO UPDATE SET body = excluded.body")
                 : absl::StrCat("INSERT OR REPLACE INTO ", catalog_.FtsTable(), " (rowid, body) VALUES (?, ?)");
}

std::unique_ptr<Message> Repository::New() const {
  return std::unique_ptr<Message>(
      google::protobuf::MessageFactory::generated_factory()->GetPrototype(spec_.descriptor)->New());
}

absl::Status Repository::NotFound(absl::string_view name) const {
  return absl::NotFoundError(absl::StrCat(spec_.singular, " '", name, "' not found"));
}

absl::Status RequestIdReused(absl::string_view request_id) {
  absl::Status status = InvalidField(
      "request_id", absl::StrCat("'", request_id, "' was already used by this principal for a different request; "
                                 "a retry must repeat the request unchanged, and a new request needs a new request_id"));
  google::rpc::ErrorInfo info;
  info.set_reason("REQUEST_ID_REUSED");
  info.set_domain("khartoum-process");
  (*info.mutable_metadata())["request_id"] = std::string(request_id);
  status.SetPayload(kErrorInfoTypeUrl, absl::Cord(info.SerializeAsString()));
  return status;
}

namespace {

constexpr char kFindRequestSql[] =
    "SELECT request_hash, response FROM idempotency_keys WHERE collection = ? AND principal = ? AND request_id = ?";

// The earlier create's result if the statement found one, checked against `key`.
absl::StatusOr<bool> EarlierResult(storage::Statement& stmt, const Repository::RequestKey& key, Message& out) {
  ASSIGN_OR_RETURN(bool found, stmt.Step());
  if (!found) return false;
  if (stmt.Blob(0) != key.request_hash) return RequestIdReused(key.request_id);
  RETURN_IF_ERROR(ParseInto(stmt.Blob(1), out));
  return true;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Message>> Repository::FindByRequestId(absl::string_view principal,
                                                                     const RequestKey& key) {
  ASSIGN_OR_RETURN(auto conn, db_->Acquire());
  ASSIGN_OR_RETURN(auto stmt, conn->Prepare(kFindRequestSql));
  stmt.Bind(1, spec_.collection).Bind(2, std::string(principal)).Bind(3, key.request_id);
  auto out = New();
  ASSIGN_OR_RETURN(bool found, EarlierResult(stmt, key, *out));
  if (!found) return std::unique_ptr<Message>();
  return out;
}

absl::Status Repository::WriteRow(storage::Connection& conn, Message& resource, int64_t seq) {
  std::vector<SqlValue> values;
  values.reserve(6 + scalar_columns_.size());
  if (seq == 0) values.emplace_back(GetString(resource, "name"));
  values.emplace_back(resource.SerializeAsString());
  values.emplace_back(GetString(resource, "etag"));
  if (seq == 0) values.emplace_back(GetTime(resource, "create_time"));
  values.emplace_back(GetTime(resource, "update_time"));
  if (HasTime(resource, "delete_time")) values.emplace_back(GetTime(resource, "delete_time"));
  else values.emplace_back(std::monostate{});
  for (const Column* c : scalar_columns_) values.push_back(catalog_.Extract(resource, *c));

  if (seq == 0) {
    ASSIGN_OR_RETURN(auto stmt, conn.Prepare(insert_sql_));
    stmt.BindAll(values);
    ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) return absl::InternalError("insert returned no sequence number");
    seq = stmt.Int(0);
  } else {
    // update_sql_ sets everything but name and create_time, which never change.
    ASSIGN_OR_RETURN(auto stmt, conn.Prepare(update_sql_));
    stmt.BindAll(values);
    stmt.Bind(static_cast<int>(values.size()) + 1, seq);
    RETURN_IF_ERROR(stmt.Run());
    if (!repeated_columns_.empty()) {
      ASSIGN_OR_RETURN(auto del, conn.Prepare(absl::StrCat("DELETE FROM ", catalog_.ValuesTable(),
                                                            " WHERE seq = ?")));
      del.Bind(1, seq);
      RETURN_IF_ERROR(del.Run());
    }
  }
  if (!repeated_columns_.empty()) {
    ASSIGN_OR_RETURN(auto ins, conn.Prepare(absl::StrCat(
        "INSERT INTO ", catalog_.ValuesTable(), " (seq, field, value) VALUES (?, ?, ?) ON CONFLICT DO NOTHING")));
    for (const Column* c : repeated_columns_) {
      for (const auto& v : catalog_.ExtractRepeated(resource, *c)) {
        ins.Bind(1, seq).Bind(2, c->path).Bind(3, v);
        RETURN_IF_ERROR(ins.Run());
      }
    }
  }
  if (!spec_.search_paths.empty()) {
    std::vector<std::string> text;
    for (const auto& path : spec_.search_paths) {
      const auto* f = FindPath(spec_.descriptor, path);
      const Message* parent = WalkToParent(resource, path);
      const auto* r = parent->GetReflection();
      if (f->is_repeated()) {
        for (int i = 0; i < r->FieldSize(*parent, f); ++i) text.push_back(r->GetRepeatedString(*parent, f, i));
      } else {
        text.push_back(r->GetString(*parent, f));
      }
    }
    ASSIGN_OR_RETURN(auto fts, conn.Prepare(fts_sql_));
    fts.Bind(1, seq).Bind(2, absl::StrJoin(text, "\n"));
    RETURN_IF_ERROR(fts.Run());
  }
  return absl::OkStatus();
}

absl::Status Repository::Insert(Message& resource, const RequestKey& key, const TxCheck& check,
                                const Actor& actor) {
  std::vector<NewRow> rows{{&resource, key, check, 0}};
  return InsertMany(rows, actor);
}

absl::Status Repository::InsertMany(std::vector<NewRow>& rows, const Actor& actor) {
  if (rows.empty()) return absl::OkStatus();
  ASSIGN_OR_RETURN(auto conn, db_->Acquire());
  ASSIGN_OR_RETURN(auto tx, Transaction::Begin(conn.get(), Transaction::Mode::kWrite));
  for (auto& row : rows) {
    auto status = InsertRow(*conn, row, actor);
    if (!status.ok()) return rows.size() == 1 ? status : WithinItem(status, absl::StrCat("requests[", row.index, "]"));
  }
  RETURN_IF_ERROR(tx.Commit());
  if (on_commit_) on_commit_();
  return absl::OkStatus();
}

absl::Status Repository::InsertRow(storage::Connection& conn, NewRow& row, const Actor& actor) {
  Message& resource = *row.resource;
  const std::string& request_id = row.key.request_id;
  if (!request_id.empty()) {
    // Retries of one request racing each other: the second waits and then finds the first.
    RETURN_IF_ERROR(conn.LockKey(absl::StrCat("request:", spec_.collection, "/", actor.principal, "/", request_id)));
    ASSIGN_OR_RETURN(auto stmt, conn.Prepare(kFindRequestSql));
    stmt.Bind(1, spec_.collection).Bind(2, actor.principal).Bind(3, request_id);
    ASSIGN_OR_RETURN(bool found, EarlierResult(stmt, row.key, resource));
    if (found) return absl::OkStatus();  // a retry: the first result
  }
  const std::string name = GetString(resource, "name");
  {
    ASSIGN_OR_RETURN(auto stmt, conn.Prepare(absl::StrCat(
        "SELECT delete_time IS NOT NULL FROM ", catalog_.table(), " WHERE name = ?")));
    stmt.Bind(1, name);
    ASSIGN_OR_RETURN(bool found, stmt.Step());
    if (found) {
      return absl::AlreadyExistsError(absl::StrCat(
          spec_.singular, " '", name, "' already exists",
          stmt.Int(0) ? " (soft-deleted: undelete it or choose another id)" : ""));
    }
  }
  if (row.check) RETURN_IF_ERROR(row.check(conn));
  const int64_t now = NowMicros();
  SetTime(resource, "create_time", now);
  SetTime(resource, "update_time", now);
  ClearField(resource, "delete_time");
  SetString(resource, "etag", NewEtag());
  RETURN_IF_ERROR(WriteRow(conn, resource, 0));
  RETURN_IF_ERROR(AppendAudit(conn, actor, name, "", GetString(resource, "etag")));
  if (!request_id.empty()) {
    ASSIGN_OR_RETURN(auto stmt, conn.Prepare(
        "INSERT INTO idempotency_keys (collection, principal, request_id, request_hash, response, create_time) "
        "VALUES (?, ?, ?, ?, ?, ?)"));
    stmt.Bind(1, spec_.collection).Bind(2, actor.principal).Bind(3, request_id).Bind(4, row.key.request_hash)
        .Bind(5, resource.SerializeAsString()).Bind(6, now);
    RETURN_IF_ERROR(stmt.Run());
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Message>> Repository::Get(absl::string_view name, bool show_deleted) {
  ASSIGN_OR_RETURN(auto conn, db_->Acquire());
  ASSIGN_OR_RETURN(auto stmt, conn->Prepare(absl::StrCat(
      "SELECT data FROM ", catalog_.table(), " WHERE name = ?",
      show_deleted ? "" : " AND delete_time IS NULL")));
  stmt.Bind(1, std::string(name));
  ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return NotFound(name);
  auto out = New();
  RETURN_IF_ERROR(ParseInto(stmt.Blob(0), *out));
  return out;
}

absl::StatusOr<std::vector<std::unique_ptr<Message>>> Repository::BatchGet(
    const std::vector<std::string>& names) {
  const std::string json = JsonNames(names);  // validated names
  absl::flat_hash_map<std::string, std::unique_ptr<Message>> found;
  {
    ASSIGN_OR_RETURN(auto conn, db_->Acquire());
    ASSIGN_OR_RETURN(auto stmt, conn->Prepare(absl::StrCat(
        "SELECT name, data FROM ", catalog_.table(), " WHERE delete_time IS NULL AND name IN (",
        storage::JsonArrayValues(conn->dialect(), "?"), ")")));
    stmt.Bind(1, json);
    while (true) {
      ASSIGN_OR_RETURN(bool row, stmt.Step());
      if (!row) break;
      auto m = New();
      RETURN_IF_ERROR(ParseInto(stmt.Blob(1), *m));
      found.emplace(stmt.Text(0), std::move(m));
    }
  }
  std::vector<std::string> missing;
  std::vector<std::unique_ptr<Message>> out;
  out.reserve(names.size());
  for (const auto& n : names) {
    auto it = found.find(n);
    if (it == found.end()) {
      missing.push_back(n);
    } else {
      auto copy = New();
      copy->CopyFrom(*it->second);
      out.push_back(std::move(copy));
    }
  }
  if (!missing.empty()) {
    return ResourcesNotFound(spec_.collection, missing);
  }
  return out;
}

absl::StatusOr<ListPage> Repository::List(const ListParams& params) {
  ASSIGN_OR_RETURN(SqlFragment filter, CompileFilter(params.filter, catalog_));
  ASSIGN_OR_RETURN(std::vector<OrderKey> keys, ParseOrderBy(params.order_by, catalog_));
  if (params.search.size() > 256) return InvalidField("search", "is longer than 256 characters");
  const std::string fts = spec_.search_paths.empty() ? "" : FtsQuery(db_->dialect(), params.search);
  if (!params.search.empty() && spec_.search_paths.empty()) {
    return InvalidField("search", absl::StrCat(spec_.collection, " do not support search"));
  }

  std::string from = absl::StrCat(catalog_.table(), " t");
  std::vector<std::string> where;
  std::vector<SqlValue> where_params;
  if (!fts.empty()) {
    // rank: lower is more relevant in both.
    if (db_->dialect() == storage::Dialect::kPostgres) {
      absl::StrAppend(&from, " JOIN (SELECT x.seq, -CAST(ts_rank(x.body, q) AS float8) AS rank FROM ",
                      catalog_.FtsTable(), " x, to_tsquery('simple', unaccent(?)) q WHERE x.body @@ q) f"
                      " ON f.seq = t.seq");
    } else {
      absl::StrAppend(&from, " JOIN (SELECT rowid AS seq, bm25(", catalog_.FtsTable(), ") AS rank FROM ",
                      catalog_.FtsTable(), " WHERE ", catalog_.FtsTable(), " MATCH ?) f ON f.seq = t.seq");
    }
    where_params.emplace_back(fts);
  }
  if (!params.show_deleted) where.push_back("t.delete_time IS NULL");
  if (!filter.sql.empty()) {
    where.push_back(filter.sql);
    where_params.insert(where_params.end(), filter.params.begin(), filter.params.end());
  }

  // Sort expressions: the requested keys, relevance when searching without order_by, and the
  // unique insertion sequence last so that every row has one place in the order.
  // Each with the type of value a page token must carry for it (an index into SqlValue).
  struct SortKey {
    std::string expr;
    bool descending;
    size_t value_type;
  };
  constexpr size_t kInt = 1, kReal = 2, kText = 3;
  std::vector<SortKey> sort;
  for (const auto& k : keys) {
    const bool text = k.column->type == ColumnType::kString || k.column->type == ColumnType::kDate;
    sort.push_back({absl::StrCat("t.", k.column->column), k.descending, text ? kText : kInt});
  }
  if (keys.empty() && !fts.empty()) sort.push_back({"f.rank", false, kReal});
  sort.push_back({"t.seq", false, kInt});

  const std::string fingerprint = PageTokenCodec::QueryFingerprint(
      {spec_.collection, params.filter, params.order_by, fts, params.show_deleted ? "1" : "0"});

  ASSIGN_OR_RETURN(auto conn, db_->Acquire());
  ListPage page;
  {
    ASSIGN_OR_RETURN(auto stmt, conn->Prepare(absl::StrCat(
        "SELECT COUNT(*) FROM ", from, where.empty() ? "" : " WHERE ", absl::StrJoin(where, " AND "))));
    stmt.BindAll(where_params);
    ASSIGN_OR_RETURN(bool row, stmt.Step());
    page.total_size = row ? stmt.Int(0) : 0;
  }

  std::vector<std::string> page_where = where;
  std::vector<SqlValue> page_params = where_params;
  if (!params.page_token.empty()) {
    ASSIGN_OR_RETURN(auto last, codec_.Decode(params.page_token, fingerprint));
    bool matches = last.size() == sort.size();
    for (size_t i = 0; matches && i < sort.size(); ++i) matches = last[i].index() == sort[i].value_type;
    if (!matches) return InvalidField("page_token", "is not a token returned by this query");
    std::vector<std::string> alternatives;
    for (size_t i = 0; i < sort.size(); ++i) {
      std::vector<std::string> terms;
      for (size_t j = 0; j < i; ++j) {
        terms.push_back(absl::StrCat(sort[j].expr, " = ?"));
        page_params.push_back(last[j]);
      }
      terms.push_back(absl::StrCat(sort[i].expr, sort[i].descending ? " < ?" : " > ?"));
      page_params.push_back(last[i]);
      alternatives.push_back(absl::StrCat("(", absl::StrJoin(terms, " AND "), ")"));
    }
    page_where.push_back(absl::StrCat("(", absl::StrJoin(alternatives, " OR "), ")"));
  }
  std::vector<std::string> select{"t.data"};
  std::vector<std::string> order;
  for (const auto& key : sort) {
    select.push_back(key.expr);
    order.push_back(absl::StrCat(key.expr, key.descending ? " DESC" : " ASC"));
  }
  ASSIGN_OR_RETURN(auto stmt, conn->Prepare(absl::StrCat(
      "SELECT ", absl::StrJoin(select, ", "), " FROM ", from,
      page_where.empty() ? "" : " WHERE ", absl::StrJoin(page_where, " AND "),
      " ORDER BY ", absl::StrJoin(order, ", "), " LIMIT ?")));
  stmt.BindAll(page_params);
  stmt.Bind(static_cast<int>(page_params.size()) + 1, static_cast<int64_t>(params.page_size) + 1);
  std::vector<SqlValue> last_values;
  size_t bytes = 0;
  while (true) {
    ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    // A page ends at page_size rows, or before the row that would take it past kMaxPageBytes
    // (AIP-158 lets a page be short): large resources never make a page too big to send.
    const size_t size = stmt.Blob(0).size();
    if (static_cast<int>(page.items.size()) == params.page_size ||
        (!page.items.empty() && bytes + size > kMaxPageBytes)) {
      page.next_page_token = codec_.Encode(fingerprint, last_values);
      break;
    }
    bytes += size;
    auto m = New();
    RETURN_IF_ERROR(ParseInto(stmt.Blob(0), *m));
    page.items.push_back(std::move(m));
    last_values.clear();
    for (size_t i = 0; i < sort.size(); ++i) last_values.push_back(stmt.Value(static_cast<int>(i) + 1));
  }
  return page;
}

absl::Status Repository::Replace(Message& resource, absl::string_view expected_etag,
                                 const TxCheck& check, const Actor& actor) {
  ASSIGN_OR_RETURN(auto conn, db_->Acquire());
  ASSIGN_OR_RETURN(auto tx, Transaction::Begin(conn.get(), Transaction::Mode::kWrite));
  const std::string name = GetString(resource, "name");
  int64_t seq = 0;
  int64_t previous_update = 0;
  {
    ASSIGN_OR_RETURN(auto stmt, conn->Prepare(absl::StrCat(
        "SELECT seq, etag, update_time FROM ", catalog_.table(), " WHERE name = ?",
        storage::ForUpdate(conn->dialect()))));
    stmt.Bind(1, name);
    ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) return NotFound(name);
    if (stmt.Text(1) != expected_etag) {
      return absl::AbortedError(absl::StrCat(
          spec_.singular, " '", name, "' was modified concurrently (etag mismatch); read it again and retry"));
    }
    seq = stmt.Int(0);
    previous_update = stmt.Int(2);
  }
  if (check) RETURN_IF_ERROR(check(*conn));
  SetTime(resource, "update_time", std::max(NowMicros(), previous_update + 1));
  SetString(resource, "etag", NewEtag());
  RETURN_IF_ERROR(WriteRow(*conn, resource, seq));
  RETURN_IF_ERROR(AppendAudit(*conn, actor, name, std::string(expected_etag), GetString(resource, "etag")));
  RETURN_IF_ERROR(tx.Commit());
  if (on_commit_) on_commit_();
  return absl::OkStatus();
}

}  // namespace kp::resource
