// The one channel factory: keepalive, round_robin over dns:/// or comma-listed targets,
// and a retry policy for the idempotent read methods of the service it talks to.
#pragma once

#include <memory>
#include <string>

#include <grpcpp/channel.h>
#include <grpcpp/client_context.h>

#include "absl/time/time.h"

namespace kp {

// `target` is a gRPC target (`dns:///host:port`, `ipv4:a:1,b:2`) or a comma list of
// host:port that is turned into one. `service` is the full name of the service called
// (`khartoum.events.v1.EventService`): its Get/BatchGet/List/Summarize methods are retried
// on UNAVAILABLE.
std::shared_ptr<grpc::Channel> MakeChannel(const std::string& target, const std::string& service);

// The service config MakeChannel uses, exposed for tests.
std::string ServiceConfigJson(const std::string& service);
// Normalises a comma list into a gRPC target.
std::string NormalizeTarget(const std::string& target);

// The backend services' addresses (--organisations_address, --events_address,
// --participants_address), for the processes that call them.
std::string OrganisationsAddress();
std::string EventsAddress();
std::string ParticipantsAddress();

// A client context with a deadline (the earlier of now + timeout and `parent_deadline`), the
// request id, credentials (an `authorization` header value; by default "Bearer <--token>") and
// trace context (a child span of `traceparent`, or a new trace).
std::unique_ptr<grpc::ClientContext> NewClientContext(
    absl::Duration timeout, absl::Time parent_deadline = absl::InfiniteFuture(),
    const std::string& request_id = "", const std::string& authorization = "",
    const std::string& traceparent = "");

}  // namespace kp
