// Shared helpers for integration tests: the suite every test uses, builders for valid
// resources, and readers for error details.
#pragma once

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/integration/harness.h"

namespace kp::testing {

namespace ov1 = khartoum::organisations::v1;
namespace ev1 = khartoum::events::v1;
namespace pv1 = khartoum::participants::v1;

// The suite shared by the tests of one binary (started once by a gtest Environment).
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

// A valid event (not created) hosted by `host`.
ev1::Event ValidEvent(const std::string& host);

}  // namespace kp::testing
