// The generic standard methods: see crud.h.
#include "absl/strings/string_view.h"
#include "common/resource/crud.h"

#include <google/protobuf/field_mask.pb.h>
#include <google/protobuf/util/field_mask_util.h>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/auth/keys.h"
#include "common/canonical.h"
#include "common/peers.h"
#include "common/resource/reflection.h"
#include "common/resource/validation.h"

namespace kp::resource {

using google::protobuf::FieldMask;
using google::protobuf::Message;
using google::protobuf::util::FieldMaskUtil;

namespace {

constexpr absl::string_view kStandardOutputOnly[] = {"name", "create_time", "update_time",
                                                    "delete_time", "etag"};

const google::protobuf::FieldDescriptor* FieldOf(const Message& m, absl::string_view name) {
  return m.GetDescriptor()->FindFieldByName(std::string(name));
}


// What binds a request id to its request: the SHA-256 of the request's canonical bytes,
// without the request id itself.
std::string RequestHash(const Message& req) {
  std::unique_ptr<Message> copy(req.New());
  copy->CopyFrom(req);
  ClearField(*copy, "request_id");
  return auth::Sha256Hex(CanonicalBytes(*copy));
}

bool GetBool(const Message& m, absl::string_view name) {
  const auto* f = FieldOf(m, name);
  return f != nullptr && m.GetReflection()->GetBool(m, f);
}

}  // namespace

absl::Status ResourceRules::AuthorizeWrite(const auth::Principal& p, const Message& after,
                                           const Message* before) const {
  return auth::Require(p, auth::Access::kWrite,
                       absl::StrCat(before ? "updating " : "creating ", after.GetDescriptor()->name(), "s"));
}

void Crud::Respond(const auth::Principal& p, Message* resp, const Message& resource) const {
  Message* out = resp->GetReflection()->MutableMessage(resp, FieldOf(*resp, repo_->spec().singular));
  out->CopyFrom(resource);
  rules_->Redact(p, *out);
}

bool Crud::IsOutputOnly(absl::string_view path) const {
  const absl::string_view top = path.substr(0, path.find('.'));
  for (auto f : kStandardOutputOnly) {
    if (top == f) return true;
  }
  for (const auto& f : repo_->spec().output_only) {
    if (top == f) return true;
  }
  return false;
}

absl::StatusOr<std::string> Crud::RequireName(const Message& req, absl::string_view field) const {
  std::string name = GetString(req, field);
  FieldViolations v;
  if (name.empty()) v.Add(std::string(field), "is required");
  else CheckResourceName(v, std::string(field), repo_->spec().collection, name);
  RETURN_IF_ERROR(v.ToStatus());
  return name;
}

absl::StatusOr<Crud::NewResource> Crud::BuildCreate(const Message& req, const CallInfo& call, FieldViolations& v) {
  const ResourceSpec& spec = repo_->spec();
  NewResource out;
  out.resource = repo_->New();
  Message& resource = *out.resource;
  resource.CopyFrom(req.GetReflection()->GetMessage(req, FieldOf(req, spec.singular)));
  const std::string id_field = spec.singular + "_id";
  const std::string id = GetString(req, id_field);
  out.request.request_id = GetString(req, "request_id");

  const size_t violations_before = v.list().size();
  if (!id.empty() && !IsValidId(id)) {
    v.Add(id_field, absl::StrCat("'", id, "' must match ^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"));
  }
  if (out.request.request_id.size() > 128) v.Add("request_id", "must be at most 128 characters");
  RETURN_IF_ERROR(rules_->AuthorizeWrite(call.principal, resource, nullptr));
  if (!out.request.request_id.empty() && v.list().size() == violations_before) {
    out.request.request_hash = RequestHash(req);
    ASSIGN_OR_RETURN(out.earlier, repo_->FindByRequestId(call.principal.name, out.request));
    if (out.earlier) return out;
  }
  // Output-only fields sent by the caller are ignored (AIP-203).
  for (auto f : kStandardOutputOnly) ClearField(resource, f);
  for (const auto& f : spec.output_only) ClearField(resource, f);
  rules_->Normalize(resource);
  rules_->Validate(resource, v);
  SetString(resource, "name", absl::StrCat(spec.collection, "/", id.empty() ? NewId() : id));
  return out;
}

absl::Status Crud::Create(const Message& req, Message* resp, const CallInfo& call) {
  FieldViolations v;
  ASSIGN_OR_RETURN(NewResource created, BuildCreate(req, call, v));
  if (created.earlier) {
    Respond(call.principal, resp, *created.earlier);
    return absl::OkStatus();
  }
  RETURN_IF_ERROR(v.ToStatus());
  Message& resource = *created.resource;
  ASSIGN_OR_RETURN(TxCheck check, rules_->Prepare(resource, nullptr, call));
  RETURN_IF_ERROR(repo_->Insert(resource, created.request, check, ActorFrom(call)));
  Respond(call.principal, resp, resource);
  return absl::OkStatus();
}

absl::Status Crud::BatchCreate(const Message& req, Message* resp, const CallInfo& call) {
  const auto* requests = FieldOf(req, "requests");
  const auto* refl = req.GetReflection();
  const int n = refl->FieldSize(req, requests);
  if (n == 0) return InvalidField("requests", "at least one request is required");
  if (n > kMaxBatchSize) return InvalidField("requests", absl::StrCat("at most ", kMaxBatchSize, " (got ", n, ")"));
  FieldViolations v;
  std::vector<NewResource> created;
  created.reserve(n);
  absl::flat_hash_set<std::string> names;
  for (int i = 0; i < n; ++i) {
    const std::string prefix = absl::StrCat("requests[", i, "]");
    FieldViolations item;
    auto one = BuildCreate(refl->GetRepeatedMessage(req, requests, i), call, item);
    if (!one.ok()) return WithinItem(one.status(), prefix);
    for (const auto& fv : item.list()) v.Add(absl::StrCat(prefix, ".", fv.field), fv.description);
    if (!one->earlier && !names.insert(GetString(*one->resource, "name")).second) {
      v.Add(absl::StrCat(prefix, ".", repo_->spec().singular, "_id"), "repeats an id earlier in this batch");
    }
    created.push_back(std::move(*one));
  }
  RETURN_IF_ERROR(v.ToStatus());
  // Peer checks: each distinct referenced resource asked for once for the whole batch.
  PeerMemo memo;
  std::vector<Repository::NewRow> rows;
  for (int i = 0; i < n; ++i) {
    if (created[i].earlier) continue;
    auto check = rules_->Prepare(*created[i].resource, nullptr, call);
    if (!check.ok()) return WithinItem(check.status(), absl::StrCat("requests[", i, "]"));
    rows.push_back({created[i].resource.get(), created[i].request, std::move(*check), i});
  }
  RETURN_IF_ERROR(repo_->InsertMany(rows, ActorFrom(call)));
  const auto* out = FieldOf(*resp, repo_->spec().collection);
  for (auto& c : created) {
    Message* added = resp->GetReflection()->AddMessage(resp, out);
    added->CopyFrom(c.earlier ? *c.earlier : *c.resource);
    rules_->Redact(call.principal, *added);
  }
  return absl::OkStatus();
}

absl::Status Crud::Get(const Message& req, Message* resp, const CallInfo& call) {
  ASSIGN_OR_RETURN(std::string name, RequireName(req, "name"));
  ASSIGN_OR_RETURN(auto resource, repo_->Get(name, GetBool(req, "show_deleted")));
  Respond(call.principal, resp, *resource);
  return absl::OkStatus();
}

absl::Status Crud::BatchGet(const Message& req, Message* resp, const CallInfo& call) {
  const auto* names_field = FieldOf(req, "names");
  const auto* refl = req.GetReflection();
  const int n = refl->FieldSize(req, names_field);
  FieldViolations v;
  if (n > kMaxBatchSize) v.Add("names", absl::StrCat("at most ", kMaxBatchSize, " names (got ", n, ")"));
  std::vector<std::string> names;
  for (int i = 0; i < n && i < kMaxBatchSize; ++i) {
    names.push_back(refl->GetRepeatedString(req, names_field, i));
    CheckResourceName(v, absl::StrCat("names[", i, "]"), repo_->spec().collection, names.back());
  }
  RETURN_IF_ERROR(v.ToStatus());
  ASSIGN_OR_RETURN(auto items, repo_->BatchGet(names));
  size_t bytes = 0;
  for (const auto& item : items) bytes += item->ByteSizeLong();
  if (bytes > kMaxBatchGetBytes) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "the %d %s asked for hold %.1f MiB, more than one response carries (%d MiB): ask for fewer names",
        n, repo_->spec().collection, bytes / 1048576.0, static_cast<int>(kMaxBatchGetBytes >> 20)));
  }
  const auto* out = FieldOf(*resp, repo_->spec().collection);
  for (const auto& item : items) {
    Message* added = resp->GetReflection()->AddMessage(resp, out);
    added->CopyFrom(*item);
    rules_->Redact(call.principal, *added);
  }
  return absl::OkStatus();
}

absl::Status Crud::List(const Message& req, Message* resp, const CallInfo& call) {
  ListParams params;
  const int page_size = req.GetReflection()->GetInt32(req, FieldOf(req, "page_size"));
  FieldViolations v;
  if (page_size < 0) v.Add("page_size", "must not be negative");
  RETURN_IF_ERROR(v.ToStatus());
  params.page_size = page_size == 0 ? kDefaultPageSize : std::min(page_size, kMaxPageSize);
  params.page_token = GetString(req, "page_token");
  params.filter = GetString(req, "filter");
  params.order_by = GetString(req, "order_by");
  params.search = GetString(req, "search");
  params.show_deleted = GetBool(req, "show_deleted");
  ASSIGN_OR_RETURN(ListPage page, repo_->List(params));
  const auto* refl = resp->GetReflection();
  const auto* out = FieldOf(*resp, repo_->spec().collection);
  for (const auto& item : page.items) {
    Message* added = refl->AddMessage(resp, out);
    added->CopyFrom(*item);
    rules_->Redact(call.principal, *added);
  }
  SetString(*resp, "next_page_token", page.next_page_token);
  refl->SetInt32(resp, FieldOf(*resp, "total_size"), static_cast<int32_t>(page.total_size));
  return absl::OkStatus();
}

absl::Status Crud::Update(const Message& req, Message* resp, const CallInfo& call) {
  const ResourceSpec& spec = repo_->spec();
  const Message& patch = req.GetReflection()->GetMessage(req, FieldOf(req, spec.singular));
  const std::string name_field = spec.singular + ".name";
  const std::string name = GetString(patch, "name");
  FieldViolations v;
  if (name.empty()) v.Add(name_field, "is required");
  else CheckResourceName(v, name_field, spec.collection, name);

  FieldMask requested;
  if (const auto* f = FieldOf(req, "update_mask"); f && req.GetReflection()->HasField(req, f)) {
    requested.CopyFrom(req.GetReflection()->GetMessage(req, f));
  }
  FieldMask mask;
  if (requested.paths_size() == 0) {
    for (int i = 0; i < spec.descriptor->field_count(); ++i) {
      const std::string& f = spec.descriptor->field(i)->name();
      if (!IsOutputOnly(f)) mask.add_paths(f);
    }
  } else {
    for (const auto& path : requested.paths()) {
      if (path == "*") {
        v.Add("update_mask", "'*' is not supported; leave the mask empty to update every field");
      } else if (!FieldMaskUtil::GetFieldDescriptors(spec.descriptor, path, nullptr)) {
        v.Add("update_mask", absl::StrCat("'", path, "' is not a field of ", spec.descriptor->name()));
      } else if (!IsOutputOnly(path)) {
        mask.add_paths(path);
      }
    }
  }
  RETURN_IF_ERROR(v.ToStatus());
  return ReadModifyWrite(name, /*show_deleted=*/false, GetString(patch, "etag"), call, resp,
      [&](const Message& before, Message& after) -> absl::Status {
        FieldMask effective;
        FieldViolations violations;
        for (const auto& path : mask.paths()) {
          const bool immutable = std::find(spec.immutable.begin(), spec.immutable.end(), path) !=
                                 spec.immutable.end();
          if (!immutable) {
            effective.add_paths(path);
            continue;
          }
          const std::string wanted = GetString(patch, path);
          if (wanted != GetString(before, path) && (requested.paths_size() > 0 || !wanted.empty())) {
            violations.Add(absl::StrCat(spec.singular, ".", path), "cannot be changed after creation");
          }
        }
        FieldMaskUtil::MergeOptions options;
        options.set_replace_message_fields(true);
        options.set_replace_repeated_fields(true);
        FieldMaskUtil::MergeMessageTo(patch, effective, options, &after);
        RETURN_IF_ERROR(rules_->AuthorizeWrite(call.principal, after, &before));
        rules_->Normalize(after);
        rules_->Validate(after, violations);
        return violations.ToStatus();
      });
}

absl::Status Crud::ReadModifyWrite(const std::string& name, bool show_deleted,
                                   const std::string& client_etag, const CallInfo& call,
                                   Message* resp, const Modifier& modify) {
  const ResourceSpec& spec = repo_->spec();
  for (int attempt = 0;; ++attempt) {
    ASSIGN_OR_RETURN(auto before, repo_->Get(name, show_deleted));
    const std::string before_etag = GetString(*before, "etag");
    if (!client_etag.empty() && client_etag != before_etag) {
      return absl::AbortedError(absl::StrCat(spec.singular, " '", name,
                                             "' has changed since it was read (etag mismatch); "
                                             "read it again and retry"));
    }
    auto after = repo_->New();
    after->CopyFrom(*before);
    RETURN_IF_ERROR(modify(*before, *after));
    ASSIGN_OR_RETURN(TxCheck check, rules_->Prepare(*after, before.get(), call));
    // Compare-and-swap on the etag read above: a concurrent write makes this attempt fail.
    // Without a client etag the change is re-applied to the newer version; with one, the
    // caller's precondition no longer holds and ABORTED is the answer.
    absl::Status status = repo_->Replace(*after, before_etag, check, ActorFrom(call));
    if (absl::IsAborted(status) && client_etag.empty() && attempt < kMaxCasRetries) continue;
    RETURN_IF_ERROR(status);
    Respond(call.principal, resp, *after);
    return absl::OkStatus();
  }
}

absl::Status Crud::Mutate(const Message& req, Message* resp, const CallInfo& call, bool undelete) {
  const ResourceSpec& spec = repo_->spec();
  RETURN_IF_ERROR(auth::Require(call.principal, auth::Access::kDelete,
                                absl::StrCat(undelete ? "undeleting " : "deleting ", spec.collection)));
  ASSIGN_OR_RETURN(std::string name, RequireName(req, "name"));
  return ReadModifyWrite(name, /*show_deleted=*/true, GetString(req, "etag"), call, resp,
      [&](const Message& before, Message& after) -> absl::Status {
        const bool deleted = HasTime(before, "delete_time");
        if (!undelete && deleted) {
          return absl::NotFoundError(absl::StrCat(spec.singular, " '", name, "' is already deleted"));
        }
        if (undelete && !deleted) {
          return absl::FailedPreconditionError(absl::StrCat(spec.singular, " '", name, "' is not deleted"));
        }
        if (undelete) ClearField(after, "delete_time");
        else SetTime(after, "delete_time", absl::ToUnixMicros(absl::Now()));
        return absl::OkStatus();
      });
}

absl::Status Crud::Delete(const Message& req, Message* resp, const CallInfo& call) {
  return Mutate(req, resp, call, false);
}

absl::Status Crud::Undelete(const Message& req, Message* resp, const CallInfo& call) {
  return Mutate(req, resp, call, true);
}

}  // namespace kp::resource
