// SummarizeEvents: events per start year by kind and level, computed in SQL.
#pragma once

#include "absl/status/status.h"
#include "common/storage/database.h"
#include "khartoum/events/v1/events.pb.h"

namespace kp::events {

absl::Status SummarizeEvents(storage::Database& db, const khartoum::events::v1::SummarizeEventsRequest& req,
                             khartoum::events::v1::SummarizeEventsResponse* resp);

}  // namespace kp::events
