// Errors as values: absl::Status through the code, google.rpc details attached as payloads,
// converted to grpc::Status once, at the RPC boundary.
#pragma once

#include <string>
#include "absl/strings/string_view.h"
#include <utility>
#include <vector>

#include <grpcpp/support/status.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define KP_CONCAT_INNER(a, b) a##b
#define KP_CONCAT(a, b) KP_CONCAT_INNER(a, b)

#define RETURN_IF_ERROR(expr)                  \
  do {                                         \
    ::absl::Status kp_status_ = (expr);        \
    if (!kp_status_.ok()) return kp_status_;   \
  } while (0)

#define KP_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                             \
  if (!tmp.ok()) return std::move(tmp).status(); \
  lhs = std::move(*tmp)

#define ASSIGN_OR_RETURN(lhs, expr) \
  KP_ASSIGN_OR_RETURN_IMPL(KP_CONCAT(kp_statusor_, __LINE__), lhs, expr)

namespace kp {

inline constexpr absl::string_view kBadRequestTypeUrl =
    "type.googleapis.com/google.rpc.BadRequest";
inline constexpr absl::string_view kErrorInfoTypeUrl = "type.googleapis.com/google.rpc.ErrorInfo";

struct FieldViolation {
  std::string field;
  std::string description;
};

// Collects every invalid field of a request so that one error reports them all.
class FieldViolations {
 public:
  // Both strings are made valid UTF-8 (they may quote the caller's bytes).
  void Add(std::string field, std::string description);
  bool empty() const { return violations_.empty(); }
  const std::vector<FieldViolation>& list() const { return violations_; }
  // INVALID_ARGUMENT naming every violation, with a google.rpc.BadRequest payload; OK if none.
  absl::Status ToStatus() const;
  absl::Status ToStatus(absl::StatusCode code) const;

 private:
  std::vector<FieldViolation> violations_;
};

// INVALID_ARGUMENT for one field, with a BadRequest payload.
absl::Status InvalidField(std::string field, std::string description);

// `status` with another message: the same code and details.
absl::Status WithMessage(const absl::Status& status, absl::string_view message);

// `status` about one item of a batch: its message starts with `prefix` ("requests[3]") and its
// field violations' paths with "<prefix>."; other details are kept.
absl::Status WithinItem(const absl::Status& status, absl::string_view prefix);

// Reads back the field violations attached to a status (empty when there are none).
std::vector<FieldViolation> GetFieldViolations(const absl::Status& status);

// NOT_FOUND for resources of `collection` named in a batch, with a google.rpc.ErrorInfo listing
// them (reason RESOURCES_NOT_FOUND, metadata "names": comma-separated, "count": how many are
// missing) for clients to act on. The first ones are listed, at most kMaxListedNames and
// kMaxListedBytes of them (63-character ids make 50 names nearly 4 KiB), so that the error and
// its details always fit in the trailers every client accepts; ask again without them to learn
// the rest.
inline constexpr size_t kMaxListedNames = 50;
inline constexpr size_t kMaxListedBytes = 2048;
absl::Status ResourcesNotFound(absl::string_view collection, const std::vector<std::string>& names);
// The names listed by ResourcesNotFound (empty for any other status): the first of the missing
// ones, perhaps not all (see GetMissingCount).
std::vector<std::string> GetMissingNames(const absl::Status& status);
// How many names ResourcesNotFound found missing, listed or not (0 for any other status).
size_t GetMissingCount(const absl::Status& status);

// The canonical name of a status code ("NOT_FOUND"), for logs, metrics and reports.
const char* StatusCodeName(int code);

// The one conversion to the wire: code, message and google.rpc.Status details.
grpc::Status ToGrpcStatus(const absl::Status& status);
// The reverse, for statuses received from a peer (keeps BadRequest details).
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace kp
