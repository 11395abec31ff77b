// Conversions between absl::Status (with google.rpc payloads) and grpc::Status.
#include "absl/strings/string_view.h"
#include "common/status.h"

#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/utf8.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"

namespace kp {
namespace {

google::rpc::BadRequest ToBadRequest(const std::vector<FieldViolation>& violations) {
  google::rpc::BadRequest bad_request;
  for (const auto& v : violations) {
    auto* fv = bad_request.add_field_violations();
    fv->set_field(v.field);
    fv->set_description(v.description);
  }
  return bad_request;
}

}  // namespace

void FieldViolations::Add(std::string field, std::string description) {
  violations_.push_back({utf8::Valid(field), utf8::Valid(description)});
}

absl::Status FieldViolations::ToStatus() const {
  return ToStatus(absl::StatusCode::kInvalidArgument);
}

absl::Status FieldViolations::ToStatus(absl::StatusCode code) const {
  if (violations_.empty()) return absl::OkStatus();
  std::vector<std::string> parts;
  parts.reserve(violations_.size());
  for (const auto& v : violations_) parts.push_back(absl::StrCat(v.field, ": ", v.description));
  absl::Status status(code, absl::StrCat(violations_.size() == 1 ? "invalid field: "
                                                                  : "invalid fields: ",
                                         absl::StrJoin(parts, "; ")));
  status.SetPayload(kBadRequestTypeUrl, absl::Cord(ToBadRequest(violations_).SerializeAsString()));
  return status;
}

absl::Status InvalidField(std::string field, std::string description) {
  FieldViolations v;
  v.Add(std::move(field), std::move(description));
  return v.ToStatus();
}

std::vector<FieldViolation> GetFieldViolations(const absl::Status& status) {
  std::vector<FieldViolation> out;
  auto payload = status.GetPayload(kBadRequestTypeUrl);
  if (!payload) return out;
  google::rpc::BadRequest bad_request;
  if (!bad_request.ParseFromString(std::string(*payload))) return out;
  for (const auto& fv : bad_request.field_violations()) {
    out.push_back({fv.field(), fv.description()});
  }
  return out;
}

absl::Status WithMessage(const absl::Status& status, absl::string_view message) {
  absl::Status out(status.code(), message);
  status.ForEachPayload([&](absl::string_view url, const absl::Cord& payload) { out.SetPayload(url, payload); });
  return out;
}

absl::Status WithinItem(const absl::Status& status, absl::string_view prefix) {
  if (status.ok()) return status;
  absl::Status out = WithMessage(status, absl::StrCat(prefix, ": ", status.message()));
  auto violations = GetFieldViolations(status);
  if (!violations.empty()) {
    for (auto& v : violations) v.field = absl::StrCat(prefix, ".", v.field);
    out.SetPayload(kBadRequestTypeUrl, absl::Cord(ToBadRequest(violations).SerializeAsString()));
  }
  return out;
}

absl::Status ResourcesNotFound(absl::string_view collection, const std::vector<std::string>& names) {
  // The first names, as many as fit both bounds (at least one: a valid name is short).
  std::string listed;
  size_t listed_count = 0;
  for (const auto& n : names) {
    if (listed_count == kMaxListedNames || (listed_count > 0 && listed.size() + 1 + n.size() > kMaxListedBytes)) break;
    absl::StrAppend(&listed, listed_count > 0 ? "," : "", n);
    ++listed_count;
  }
  const std::vector<std::string> quoted(names.begin(), names.begin() + std::min<size_t>(names.size(), 10));
  absl::Status status = absl::NotFoundError(absl::StrCat(
      collection, " not found: ", absl::StrJoin(quoted, ", "),
      names.size() > quoted.size() ? absl::StrCat(" and ", names.size() - quoted.size(), " more") : ""));
  google::rpc::ErrorInfo info;
  info.set_reason("RESOURCES_NOT_FOUND");
  info.set_domain("khartoum-process");
  (*info.mutable_metadata())["names"] = std::move(listed);
  (*info.mutable_metadata())["count"] = absl::StrCat(names.size());
  status.SetPayload(kErrorInfoTypeUrl, absl::Cord(info.SerializeAsString()));
  return status;
}

namespace {

// The ErrorInfo of a ResourcesNotFound status, if `status` is one.
bool MissingInfo(const absl::Status& status, google::rpc::ErrorInfo* info) {
  auto payload = status.GetPayload(kErrorInfoTypeUrl);
  return payload && info->ParseFromString(std::string(*payload)) && info->reason() == "RESOURCES_NOT_FOUND";
}

}  // namespace

std::vector<std::string> GetMissingNames(const absl::Status& status) {
  google::rpc::ErrorInfo info;
  if (!MissingInfo(status, &info)) return {};
  auto names = info.metadata().find("names");
  if (names == info.metadata().end()) return {};
  return absl::StrSplit(names->second, ',', absl::SkipEmpty());
}

size_t GetMissingCount(const absl::Status& status) {
  google::rpc::ErrorInfo info;
  if (!MissingInfo(status, &info)) return 0;
  auto count = info.metadata().find("count");
  size_t n = 0;
  if (count == info.metadata().end() || !absl::SimpleAtoi(count->second, &n)) return 0;
  return n;
}

const char* StatusCodeName(int code) {
  static const char* kNames[] = {"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
                                 "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
                                 "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL",
                                 "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"};
  return code >= 0 && code < 17 ? kNames[code] : "UNKNOWN";
}

namespace {

// An error travels in HTTP/2 trailers, and clients refuse trailers above about 8 KiB (gRPC's
// default), turning the error into RESOURCE_EXHAUSTED. So the message and the details are
// bounded: the message to kMaxMessageBytes, the field violations to what fits kMaxDetailsBytes
// (the rest summed up in a last violation).
constexpr size_t kMaxMessageBytes = 1024;
constexpr size_t kMaxDetailsBytes = 4096;

// `text` cut to at most `max` bytes on a character boundary, saying it was cut.
std::string Bounded(absl::string_view text, size_t max) {
  std::string valid = utf8::Valid(text);
  if (valid.size() <= max) return valid;
  size_t cut = max - 16;
  while (cut > 0 && (static_cast<unsigned char>(valid[cut]) & 0xC0) == 0x80) --cut;  // not inside a character
  valid.resize(cut);
  return absl::StrCat(valid, " … (truncated)");
}

std::string BoundedBadRequest(const std::string& payload, size_t budget) {
  google::rpc::BadRequest in, out;
  if (!in.ParseFromString(payload) || payload.size() <= budget) return payload;
  int kept = 0;
  for (const auto& v : in.field_violations()) {
    auto* copy = out.add_field_violations();
    *copy = v;
    copy->set_description(Bounded(v.description(), 256));
    if (out.ByteSizeLong() > budget - 96) {
      out.mutable_field_violations()->RemoveLast();
      break;
    }
    ++kept;
  }
  if (kept < in.field_violations_size()) {
    auto* more = out.add_field_violations();
    more->set_description(absl::StrCat("and ", in.field_violations_size() - kept, " more violations"));
  }
  return out.SerializeAsString();
}

}  // namespace

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  // The message may quote the caller's bytes: it leaves as valid UTF-8, and bounded.
  const std::string message = Bounded(status.message(), kMaxMessageBytes);
  google::rpc::Status rpc_status;
  rpc_status.set_code(static_cast<int>(status.code()));
  rpc_status.set_message(message);
  status.ForEachPayload([&](absl::string_view type_url, const absl::Cord& payload) {
    auto* any = rpc_status.add_details();
    any->set_type_url(std::string(type_url));
    any->set_value(type_url == kBadRequestTypeUrl ? BoundedBadRequest(std::string(payload), kMaxDetailsBytes / 2)
                                                   : std::string(payload));
  });
  if (rpc_status.ByteSizeLong() > kMaxDetailsBytes) {
    // Nothing of ours is this large once bounded; whatever is, goes without details.
    rpc_status.clear_details();
  }
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), message,
                      rpc_status.details_size() > 0 ? rpc_status.SerializeAsString() : "");
}

absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  absl::Status out(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
  if (!status.error_details().empty()) {
    google::rpc::Status rpc_status;
    if (rpc_status.ParseFromString(status.error_details())) {
      for (const auto& any : rpc_status.details()) {
        out.SetPayload(any.type_url(), absl::Cord(any.value()));
      }
    }
  }
  return out;
}

}  // namespace kp
