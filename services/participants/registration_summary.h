// SummarizeRegistrations (per event) and SummarizeParticipation (across events and
// organisations): counts of live registrations, computed in SQL.
#pragma once

#include "absl/status/status.h"
#include "common/storage/database.h"
#include "khartoum/participants/v1/participants.pb.h"

namespace kp::participants {

absl::Status SummarizeRegistrations(storage::Database& db,
                                    const khartoum::participants::v1::SummarizeRegistrationsRequest& req,
                                    khartoum::participants::v1::SummarizeRegistrationsResponse* resp);

absl::Status SummarizeParticipation(storage::Database& db,
                                    const khartoum::participants::v1::SummarizeParticipationRequest& req,
                                    khartoum::participants::v1::SummarizeParticipationResponse* resp);

}  // namespace kp::participants
