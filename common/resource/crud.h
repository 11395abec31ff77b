// The standard methods (AIP-131..135, 155, 164, 231) written once for every resource. Request
// and response messages are read by reflection on their AIP field names, so a service's RPC
// handler is one line; the service supplies only its rules.
#pragma once

#include "absl/strings/string_view.h"
#include <functional>
#include <memory>

#include <google/protobuf/message.h>

#include "absl/status/statusor.h"
#include "common/auth/principal.h"
#include "common/resource/repository.h"
#include "common/rpc.h"
#include "common/status.h"

namespace kp::resource {

// What a service adds to the generic methods for one resource.
class ResourceRules {
 public:
  virtual ~ResourceRules() = default;
  // Sets derived output-only fields and defaults (runs before validation).
  virtual void Normalize(google::protobuf::Message& resource) const {}
  // Local checks; report fields as "<singular>.<path>".
  virtual void Validate(const google::protobuf::Message& resource, FieldViolations& v) const = 0;
  // Checks that need other services (outside the transaction); returns a check to run inside
  // the write transaction, or an empty one. `before` is null on create.
  virtual absl::StatusOr<TxCheck> Prepare(const google::protobuf::Message& after,
                                          const google::protobuf::Message* before,
                                          const CallInfo& call) const {
    return TxCheck();
  }
  // Whether `p` may create (`before` null) or update the resource. By default editors and
  // admins may; services that let registrars write within their organisation override it.
  virtual absl::Status AuthorizeWrite(const auth::Principal& p, const google::protobuf::Message& after,
                                      const google::protobuf::Message* before) const;
  // Clears what `p` may not see (personal data) from a resource about to be returned.
  virtual void Redact(const auth::Principal& p, google::protobuf::Message& resource) const {}
};

class Crud {
 public:
  Crud(Repository* repo, const ResourceRules* rules) : repo_(repo), rules_(rules) {}

  absl::Status Create(const google::protobuf::Message& req, google::protobuf::Message* resp,
                      const CallInfo& call);
  // AIP-233: `requests` (Create requests), all in one transaction or none.
  absl::Status BatchCreate(const google::protobuf::Message& req, google::protobuf::Message* resp,
                           const CallInfo& call);
  absl::Status Get(const google::protobuf::Message& req, google::protobuf::Message* resp, const CallInfo& call);
  absl::Status BatchGet(const google::protobuf::Message& req, google::protobuf::Message* resp,
                        const CallInfo& call);
  absl::Status List(const google::protobuf::Message& req, google::protobuf::Message* resp, const CallInfo& call);
  absl::Status Update(const google::protobuf::Message& req, google::protobuf::Message* resp,
                      const CallInfo& call);
  absl::Status Delete(const google::protobuf::Message& req, google::protobuf::Message* resp,
                      const CallInfo& call);
  absl::Status Undelete(const google::protobuf::Message& req, google::protobuf::Message* resp,
                        const CallInfo& call);

  Repository& repo() { return *repo_; }

 private:
  // Builds `after` from `before` (a copy of it on entry); an error ends the write.
  using Modifier = std::function<absl::Status(const google::protobuf::Message& before,
                                              google::protobuf::Message& after)>;
  // One Create request checked (violations added to `v`), its name chosen; or the result of an
  // earlier create with its request_id (`earlier` set).
  struct NewResource {
    std::unique_ptr<google::protobuf::Message> resource;
    std::unique_ptr<google::protobuf::Message> earlier;
    Repository::RequestKey request;
  };
  absl::StatusOr<NewResource> BuildCreate(const google::protobuf::Message& req, const CallInfo& call,
                                          FieldViolations& v);
  // Read, check the client's etag, modify, prepare, compare-and-swap; retried on conflict.
  absl::Status ReadModifyWrite(const std::string& name, bool show_deleted,
                               const std::string& client_etag, const CallInfo& call,
                               google::protobuf::Message* resp, const Modifier& modify);
  // Delete and undelete.
  absl::Status Mutate(const google::protobuf::Message& req, google::protobuf::Message* resp,
                      const CallInfo& call, bool undelete);
  absl::StatusOr<std::string> RequireName(const google::protobuf::Message& req,
                                          absl::string_view field) const;
  bool IsOutputOnly(absl::string_view path) const;
  // Sets the response's resource field to `resource` as `p` may see it.
  void Respond(const auth::Principal& p, google::protobuf::Message* resp, const google::protobuf::Message& resource) const;

  Repository* repo_;
  const ResourceRules* rules_;
};

inline constexpr int kMaxPageSize = 1000;
inline constexpr int kDefaultPageSize = 50;
inline constexpr int kMaxBatchSize = 1000;
inline constexpr int kMaxCasRetries = 8;

}  // namespace kp::resource
