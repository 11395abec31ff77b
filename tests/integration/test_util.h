// Shared helpers for integration tests: the suite every test uses, builders for valid
// resources, and readers for error details.
#pragma once

#include <string>
#include <vector>

#include <grpcpp/channel.h>
#include <grpcpp/client_context.h>
#include <gtest/gtest.h>

#include "tests/integration/harness.h"

namespace kp::testing {

namespace ov1 = khartoum::organisations::v1;
namespace ev1 = khartoum::events::v1;
namespace pv1 = khartoum::participants::v1;

// The suite shared by the tests of one binary (shared_suite.cc, or the binary's own).
Suite& S();

// The google.rpc.BadRequest field paths carried by a status.
std::vector<std::string> ViolationFields(const grpc::Status& status);

ov1::Organisation CreateOrganisation(const std::string& id, const std::string& country = "KE");
ev1::Event CreateEvent(const std::string& id, const std::vector<std::string>& hosts, int capacity = 0);
pv1::Participant CreateParticipant(const std::string& id, const std::string& organisation,
                                   const std::string& country = "KE",
                                   pv1::Gender gender = pv1::GENDER_FEMALE);
// Lines of the file at `path` containing `needle` (e.g. a server's calls in its log).
int CountLines(const std::string& path, const std::string& needle);

// A unary call with raw request bytes: `bytes` as the request of `method` ("/pkg.Service/Method"),
// the response's bytes in `*response` (if given and OK), its x-kp-cache header in `*cache`.
grpc::Status RawCall(const std::shared_ptr<grpc::Channel>& channel, const std::string& method, const std::string& bytes,
                     grpc::ClientContext* ctx, std::string* response = nullptr, std::string* cache = nullptr);

// The reason of a status's google.rpc.ErrorInfo ("" if none).
std::string ErrorInfoReason(const grpc::Status& status);

// A valid event (not created) hosted by `host`.
ev1::Event ValidEvent(const std::string& host);

// A request registering every participant of `people` as a delegate to `event`.
pv1::BatchCreateRegistrationsRequest DelegatesOf(const std::string& event,
                                                  const pv1::BatchCreateParticipantsResponse& people);

}  // namespace kp::testing
