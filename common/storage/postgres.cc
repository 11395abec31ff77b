// PostgreSQL wrappers: see postgres.h.
#include "common/storage/postgres.h"

#include <endian.h>
#include <libpq-fe.h>
#include <poll.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <regex>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "common/current_call.h"

namespace kp::storage {

namespace {

// Type OIDs (src/include/catalog/pg_type.dat).
constexpr Oid kBool = 16, kBytea = 17, kInt8 = 20, kInt2 = 21, kInt4 = 23, kOid = 26, kFloat4 = 700,
              kFloat8 = 701, kNumeric = 1700;

absl::Status ErrorFrom(PGconn* conn, const PGresult* res, absl::string_view context) {
  const char* state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : nullptr;
  std::string message = res ? PQresultErrorMessage(res) : "";
  if (message.empty()) message = PQerrorMessage(conn);
  message = std::string(absl::StripTrailingAsciiWhitespace(message));
  // A connection that broke (no SQLSTATE, or class 08) is unavailable: the call may be retried.
  const absl::StatusCode code = PQstatus(conn) != CONNECTION_OK || state == nullptr
                                    ? absl::StatusCode::kUnavailable
                                    : SqlStateToStatus(state);
  return absl::Status(code, absl::StrCat("database ", context, ": ", message));
}

uint64_t Load64(const char* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return be64toh(v);
}
uint32_t Load32(const char* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return be32toh(v);
}
int16_t Load16(const char* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return static_cast<int16_t>(be16toh(v));
}

// NUMERIC's binary form (what SUM of integers returns): base-10000 digits with a weight.
double NumericToDouble(const char* p, int length) {
  if (length < 8) return 0;
  const int ndigits = Load16(p), weight = Load16(p + 2), sign = static_cast<uint16_t>(Load16(p + 4));
  double value = 0;
  for (int i = 0; i < ndigits && 8 + 2 * i + 1 < length; ++i) {
    value += Load16(p + 8 + 2 * i) * std::pow(10000.0, weight - i);
  }
  return sign == 0x4000 ? -value : value;
}

// How often a statement that runs on looks at its call: the caller may cancel at any time.
constexpr absl::Duration kCancelCheckInterval = absl::Milliseconds(20);

// Waits for the result of the statement just sent on `conn`. Once the current call is
// abandoned (its deadline passed, its caller cancelled), asks the server to cancel the
// statement (its transaction then fails and is rolled back) and reports that in `abandoned`.
// Returns the statement's result (the first error, if any); the caller clears it.
PGresult* AwaitResult(PGconn* conn, PGcancel* cancel, absl::Status* abandoned) {
  bool cancel_sent = false;
  PGresult* kept = nullptr;
  while (true) {
    while (PQisBusy(conn)) {
      if (!cancel_sent && !(*abandoned = CurrentCall::Check()).ok()) {
        char error[256];
        // The server interrupts the statement if it still runs; a cancel arriving once the
        // session is idle is ignored by the server.
        if (cancel != nullptr) PQcancel(cancel, error, sizeof error);
        cancel_sent = true;
      }
      const absl::Duration wait = std::clamp(CurrentCall::Deadline() - absl::Now(), absl::Milliseconds(1),
                                             kCancelCheckInterval);
      pollfd fd{.fd = PQsocket(conn), .events = POLLIN, .revents = 0};
      if (poll(&fd, 1, static_cast<int>(absl::ToInt64Milliseconds(wait))) < 0 && errno != EINTR) break;
      if (PQconsumeInput(conn) == 0) break;  // the connection broke: PQgetResult reports it
    }
    PGresult* res = PQgetResult(conn);
    if (res == nullptr) break;
    const auto st = PQresultStatus(res);
    const bool failed = st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK;
    if (kept == nullptr || (failed && PQresultStatus(kept) != PGRES_FATAL_ERROR)) {
      if (kept != nullptr) PQclear(kept);
      kept = res;
    } else {
      PQclear(res);
    }
    if (PQstatus(conn) != CONNECTION_OK) break;
  }
  if (!cancel_sent) *abandoned = absl::OkStatus();
  return kept;
}

class PgStatement final : public StatementImpl {
 public:
  PgStatement(PGconn* conn, PGcancel* cancel, std::string name) : conn_(conn), cancel_(cancel), name_(std::move(name)) {}
  ~PgStatement() override { Reset(); }

  void Bind(int index, const SqlValue& value) override {
    if (static_cast<int>(params_.size()) < index) params_.resize(index);
    params_[index - 1] = value;
  }

  absl::StatusOr<bool> Step() override {
    if (result_ == nullptr) {
      const int n = static_cast<int>(params_.size());
      std::vector<std::string> text(n);
      std::vector<const char*> values(n, nullptr);
      std::vector<int> lengths(n, 0), formats(n, 0);
      for (int i = 0; i < n; ++i) {
        const SqlValue& v = params_[i];
        if (const auto* s = std::get_if<std::string>(&v)) {
          values[i] = s->data();
          lengths[i] = static_cast<int>(s->size());
          formats[i] = 1;  // binary: text and bytea alike take the raw bytes
        } else if (const auto* x = std::get_if<int64_t>(&v)) {
          text[i] = absl::StrCat(*x);
          values[i] = text[i].c_str();
        } else if (const auto* d = std::get_if<double>(&v)) {
          text[i] = absl::StrFormat("%.17g", *d);
          values[i] = text[i].c_str();
        }
      }
      if (PQsendQueryPrepared(conn_, name_.c_str(), n, values.data(), lengths.data(), formats.data(), 1) == 0) {
        return ErrorFrom(conn_, nullptr, "query");
      }
      absl::Status abandoned;
      result_ = AwaitResult(conn_, cancel_, &abandoned);
      const auto st = PQresultStatus(result_);
      if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
        // Cancelled for a caller that has gone: that, not "canceling statement due to user request".
        auto status = abandoned.ok() || st != PGRES_FATAL_ERROR ? ErrorFrom(conn_, result_, "query") : abandoned;
        PQclear(result_);
        result_ = nullptr;
        return status;
      }
      row_ = -1;
      rows_ = PQntuples(result_);
    }
    ++row_;
    return row_ < rows_;
  }

  void Reset() override {
    if (result_ != nullptr) PQclear(result_);
    result_ = nullptr;
    params_.clear();
  }

  bool IsNull(int col) const override { return PQgetisnull(result_, row_, col) != 0; }

  int64_t Int(int col) const override {
    if (IsNull(col)) return 0;
    const char* p = PQgetvalue(result_, row_, col);
    switch (PQftype(result_, col)) {
      case kInt8: return static_cast<int64_t>(Load64(p));
      case kInt4:
      case kOid: return static_cast<int32_t>(Load32(p));
      case kInt2: return Load16(p);
      case kBool: return p[0] != 0;
      case kFloat4:
      case kFloat8:
      case kNumeric: return std::llround(Double(col));
      default: {
        int64_t v = 0;
        (void)absl::SimpleAtoi(Bytes(col), &v);
        return v;
      }
    }
  }

  double Double(int col) const override {
    if (IsNull(col)) return 0;
    const char* p = PQgetvalue(result_, row_, col);
    switch (PQftype(result_, col)) {
      case kFloat8: {
        const uint64_t bits = Load64(p);
        double d;
        std::memcpy(&d, &bits, 8);
        return d;
      }
      case kFloat4: {
        const uint32_t bits = Load32(p);
        float f;
        std::memcpy(&f, &bits, 4);
        return f;
      }
      case kNumeric: return NumericToDouble(p, PQgetlength(result_, row_, col));
      default: return static_cast<double>(Int(col));
    }
  }

  absl::string_view Bytes(int col) const override {
    if (IsNull(col)) return {};
    return absl::string_view(PQgetvalue(result_, row_, col), PQgetlength(result_, row_, col));
  }

  SqlValue Value(int col) const override {
    if (IsNull(col)) return std::monostate{};
    switch (PQftype(result_, col)) {
      case kInt8:
      case kInt4:
      case kInt2:
      case kOid:
      case kBool: return Int(col);
      case kFloat4:
      case kFloat8:
      case kNumeric: return Double(col);
      default: return std::string(Bytes(col));
    }
  }

 private:
  PGconn* conn_;
  PGcancel* cancel_;  // the connection's, for cancelling this statement
  std::string name_;
  std::vector<SqlValue> params_;
  PGresult* result_ = nullptr;
  int row_ = -1;
  int rows_ = 0;
};

class PgConnection final : public Connection {
 public:
  explicit PgConnection(PGconn* conn) : conn_(conn), cancel_(PQgetCancel(conn)) {}
  ~PgConnection() override {
    ClearStatements();
    if (cancel_ != nullptr) PQfreeCancel(cancel_);
    PQfinish(conn_);
  }

  Dialect dialect() const override { return Dialect::kPostgres; }
  bool Healthy() const override { return PQstatus(conn_) == CONNECTION_OK; }

  absl::Status Exec(absl::string_view sql) override {
    PGresult* res = PQexec(conn_, std::string(sql).c_str());
    const auto st = PQresultStatus(res);
    absl::Status status = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ? absl::OkStatus()
                                                                          : ErrorFrom(conn_, res, "exec");
    PQclear(res);
    return status;
  }

  absl::Status LockKey(absl::string_view key) override {
    auto stmt = Prepare("SELECT pg_advisory_xact_lock(hashtextextended(?, 0))");
    if (!stmt.ok()) return stmt.status();
    stmt->Bind(1, std::string(key));
    return stmt->Run();
  }

  absl::Status Begin(TxMode mode) override {
    return Exec(mode == TxMode::kWrite ? "BEGIN" : "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
  }
  absl::Status Commit() override { return Exec("COMMIT"); }
  void Rollback() override {
    if (Healthy()) (void)Exec("ROLLBACK");
  }

 protected:
  absl::StatusOr<std::unique_ptr<StatementImpl>> PrepareUncached(absl::string_view sql) override {
    std::string name = absl::StrCat("kp", ++counter_);
    PGresult* res = PQprepare(conn_, name.c_str(), ToDollarPlaceholders(sql).c_str(), 0, nullptr);
    absl::Status status = PQresultStatus(res) == PGRES_COMMAND_OK
                              ? absl::OkStatus()
                              : ErrorFrom(conn_, res, absl::StrCat("prepare [", sql, "]"));
    PQclear(res);
    if (!status.ok()) return status;
    return std::make_unique<PgStatement>(conn_, cancel_, std::move(name));
  }
  absl::Status ForgetPrepared() override { return Exec("DEALLOCATE ALL"); }

 private:
  PGconn* conn_;
  PGcancel* cancel_;
  uint64_t counter_ = 0;
};

}  // namespace

absl::StatusCode SqlStateToStatus(absl::string_view state) {
  if (state == "23505") return absl::StatusCode::kAlreadyExists;           // unique_violation
  if (absl::StartsWith(state, "23")) return absl::StatusCode::kFailedPrecondition;  // other integrity
  if (state == "40001" || state == "40P01") return absl::StatusCode::kAborted;     // serialization, deadlock
  if (state == "57014") return absl::StatusCode::kDeadlineExceeded;                // statement timeout
  if (state == "55P03") return absl::StatusCode::kUnavailable;                     // lock timeout
  if (absl::StartsWith(state, "08") || absl::StartsWith(state, "57P")) return absl::StatusCode::kUnavailable;
  if (absl::StartsWith(state, "53")) return absl::StatusCode::kResourceExhausted;  // insufficient resources
  if (absl::StartsWith(state, "22")) return absl::StatusCode::kInvalidArgument;    // data exception
  return absl::StatusCode::kInternal;
}

std::string ToDollarPlaceholders(absl::string_view sql) {
  std::string out;
  out.reserve(sql.size() + 16);
  int next = 0;
  char quote = 0;
  for (size_t i = 0; i < sql.size(); ++i) {
    const char c = sql[i];
    if (quote != 0) {
      out.push_back(c);
      if (c == quote) quote = 0;  // a doubled quote re-enters at once: same result
      continue;
    }
    if (c == '\'' || c == '"') {
      quote = c;
      out.push_back(c);
      continue;
    }
    if (c != '?') {
      out.push_back(c);
      continue;
    }
    size_t j = i + 1;
    while (j < sql.size() && absl::ascii_isdigit(static_cast<unsigned char>(sql[j]))) ++j;
    if (j > i + 1) {
      absl::StrAppend(&out, "$", sql.substr(i + 1, j - i - 1));
      i = j - 1;
    } else {
      absl::StrAppend(&out, "$", ++next);
    }
  }
  return out;
}

std::string PostgresDisplayName(const std::string& url) {
  static const std::regex password(R"(^(postgres(?:ql)?://[^:/@]*):[^@]*@)");
  return std::regex_replace(url, password, "$1:***@");
}

absl::StatusOr<std::unique_ptr<Connection>> ConnectPostgres(const std::string& url, const DatabaseOptions& options) {
  const std::string connect_timeout = absl::StrCat(std::max<int64_t>(1, absl::ToInt64Seconds(options.connect_timeout)));
  const std::string settings = absl::StrCat(
      "-c statement_timeout=", absl::ToInt64Milliseconds(options.statement_timeout),
      " -c lock_timeout=", absl::ToInt64Milliseconds(options.statement_timeout),
      " -c idle_in_transaction_session_timeout=", absl::ToInt64Milliseconds(options.statement_timeout) * 2);
  const char* keys[] = {"dbname", "connect_timeout", "application_name", "options", nullptr};
  const char* values[] = {url.c_str(), connect_timeout.c_str(), options.application_name.c_str(), settings.c_str(),
                          nullptr};
  PGconn* conn = PQconnectdbParams(keys, values, /*expand_dbname=*/1);
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string message = absl::StrCat("cannot connect to ", PostgresDisplayName(url), ": ",
                                       absl::StripTrailingAsciiWhitespace(PQerrorMessage(conn)));
    PQfinish(conn);
    return absl::UnavailableError(message);
  }
  auto out = std::make_unique<PgConnection>(conn);
  return std::unique_ptr<Connection>(std::move(out));
}

}  // namespace kp::storage
