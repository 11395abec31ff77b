// The audit log, written once for every service: each committed write appends who (principal
// and role), what (method, resource), when, and the etags before and after, in the same
// transaction as the write. Admins read it with ListAuditEntries.
#pragma once

#include <string>

#include <google/protobuf/message.h>

#include "absl/status/status.h"
#include "common/rpc.h"
#include "common/storage/database.h"

namespace kp::resource {

// Who is writing, as recorded in the audit log.
struct Actor {
  std::string principal;
  std::string role;
  std::string method;
  std::string request_id;
};

Actor ActorFrom(const CallInfo& call);

absl::Status AppendAudit(storage::Connection& conn, const Actor& actor, const std::string& resource,
                         const std::string& old_etag, const std::string& new_etag);

// ListAuditEntries for any service: the request has page_size, page_token, resource and
// principal; the response audit_entries and next_page_token. Admins only.
absl::Status ListAudit(storage::Database& db, const CallInfo& call, const google::protobuf::Message& req,
                       google::protobuf::Message* resp);

}  // namespace kp::resource

// The ListAuditEntries override for a service class with `db_` and `pool_` (see
// standard_methods.h).
#define KP_AUDIT_METHOD(ns)                                                                     \
  ::grpc::ServerUnaryReactor* ListAuditEntries(::grpc::CallbackServerContext* ctx,              \
                                               const ns::ListAuditEntriesRequest* req,          \
                                               ns::ListAuditEntriesResponse* resp) override {   \
    return ::kp::Serve(ctx, *pool_, "ListAuditEntries", [=, this](const ::kp::CallInfo& call) { \
      return ::kp::resource::ListAudit(*db_, call, *req, resp);                                 \
    });                                                                                         \
  }
