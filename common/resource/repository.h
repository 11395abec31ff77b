// Generic storage of one resource type (SQLite or PostgreSQL): the resource is kept as serialized protobuf
// with its filterable fields in columns, so create/get/list/replace are written once for all
// resources. Lists are keyset-paginated: page 1000 costs what page 1 costs.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include "absl/strings/string_view.h"
#include <vector>

#include <google/protobuf/message.h>

#include "absl/status/statusor.h"
#include "common/resource/audit_log.h"
#include "common/resource/catalog.h"
#include "common/resource/page_token.h"
#include "common/storage/database.h"

namespace kp::resource {

// A service rule that must hold at commit time (capacity, uniqueness), run inside the write
// transaction before the row is written.
using TxCheck = std::function<absl::Status(storage::Connection&)>;

// What one List page or BatchGet response may hold, well within the 4 MiB a message may have.
inline constexpr size_t kMaxPageBytes = 2 << 20;
inline constexpr size_t kMaxBatchGetBytes = 3 << 20;

struct ListParams {
  int page_size = 50;
  std::string page_token;
  std::string filter;
  std::string order_by;
  std::string search;
  bool show_deleted = false;
};

struct ListPage {
  std::vector<std::unique_ptr<google::protobuf::Message>> items;
  std::string next_page_token;
  int64_t total_size = 0;
};

// INVALID_ARGUMENT for a request id this principal already used with another request.
absl::Status RequestIdReused(absl::string_view request_id);

class Repository {
 public:
  Repository(storage::Database* db, ResourceSpec spec,
             const PageTokenCodec& codec = DefaultPageTokenCodec());

  // Runs after every committed write, before the write is acknowledged (cache invalidation).
  void OnCommit(std::function<void()> observer) { on_commit_ = std::move(observer); }

  const ResourceSpec& spec() const { return spec_; }
  const Catalog& catalog() const { return catalog_; }
  std::unique_ptr<google::protobuf::Message> New() const;

  // A create's request id (AIP-155): scoped to the principal (actor) that sent it, and bound
  // to a hash of the request it came with.
  struct RequestKey {
    std::string request_id;  // empty: none
    std::string request_hash;
  };
  // The resource an earlier create of `principal` with this request id returned, or nullptr.
  // INVALID_ARGUMENT (REQUEST_ID_REUSED) if that create carried another request.
  absl::StatusOr<std::unique_ptr<google::protobuf::Message>> FindByRequestId(absl::string_view principal,
                                                                             const RequestKey& key);
  // Inserts `resource` (its name set), filling etag and times. When the request id was used
  // before (by the same principal, with the same request), `resource` becomes that earlier
  // result instead and nothing is written.
  absl::Status Insert(google::protobuf::Message& resource, const RequestKey& key, const TxCheck& check,
                      const Actor& actor);
  // Several inserts in one transaction: all or none. An error names the failing row's
  // `index` as requests[index].
  struct NewRow {
    google::protobuf::Message* resource;
    RequestKey key;
    TxCheck check;
    int index = 0;
  };
  absl::Status InsertMany(std::vector<NewRow>& rows, const Actor& actor);
  absl::StatusOr<std::unique_ptr<google::protobuf::Message>> Get(absl::string_view name,
                                                                 bool show_deleted);
  // In the order of `names`; NOT_FOUND naming every missing one.
  absl::StatusOr<std::vector<std::unique_ptr<google::protobuf::Message>>> BatchGet(
      const std::vector<std::string>& names);
  absl::StatusOr<ListPage> List(const ListParams& params);
  // Writes `resource` over the stored one if that still has `expected_etag` (ABORTED if not),
  // with a new etag and update_time. Both writes append to the audit log in their transaction.
  absl::Status Replace(google::protobuf::Message& resource, absl::string_view expected_etag,
                       const TxCheck& check, const Actor& actor);

 private:
  absl::Status WriteRow(storage::Connection& conn, google::protobuf::Message& resource,
                        int64_t seq);
  absl::Status NotFound(absl::string_view name) const;
  absl::Status InsertRow(storage::Connection& conn, NewRow& row, const Actor& actor);

  storage::Database* db_;
  ResourceSpec spec_;
  Catalog catalog_;
  const PageTokenCodec& codec_;
  std::vector<const Column*> scalar_columns_;    // stored in their own columns
  std::vector<const Column*> repeated_columns_;  // stored in <table>_values
  std::function<void()> on_commit_;
  std::string insert_sql_;
  std::string update_sql_;
  std::string fts_sql_;  // writes the row's search text
};

// Turns free text into a full-text query of quoted prefix terms, all required (never query
// syntax from the user): FTS5's for SQLite, to_tsquery's for PostgreSQL.
std::string FtsQuery(storage::Dialect dialect, absl::string_view text);

}  // namespace kp::resource
