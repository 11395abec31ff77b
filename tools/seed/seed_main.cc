// kp-seed: loads the seed dataset (data/seed/*.jsonl, one Create*Request per line) through
// the public API. Idempotent: every request carries a request_id and an explicit id, so a
// second run creates nothing new.
#include <fstream>
#include <iostream>
#include <string>

#include <google/protobuf/util/json_util.h>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/channel.h"
#include "common/config.h"
#include "common/status.h"
#include "khartoum/events/v1/events.grpc.pb.h"
#include "khartoum/organisations/v1/organisations.grpc.pb.h"

ABSL_FLAG(std::string, data_dir, "data/seed", "Directory holding organisations.jsonl and events.jsonl.");
ABSL_FLAG(absl::Duration, timeout, absl::Seconds(10), "Deadline of each call.");

namespace {

namespace ov1 = khartoum::organisations::v1;
namespace ev1 = khartoum::events::v1;

struct Counts {
  int created = 0;
  int existing = 0;
  int failed = 0;
};

// Sends every line of `path` as a request through `call`, which returns the create_time of
// the resource it got back. A resource older than this run (an idempotent replay of an
// earlier run's request) or ALREADY_EXISTS counts as already present.
template <typename Request, typename Call>
Counts Load(const std::string& path, absl::Time run_start, Call call) {
  Counts counts;
  std::ifstream in(path);
  if (!in) {
    std::cerr << "kp-seed: cannot read " << path << "\n";
    counts.failed = 1;
    return counts;
  }
  std::string line;
  int line_number = 0;
  while (std::getline(in, line)) {
    ++line_number;
    if (line.empty()) continue;
    Request req;
    auto parsed = google::protobuf::util::JsonStringToMessage(line, &req);
    if (!parsed.ok()) {
      std::cerr << path << ":" << line_number << ": " << parsed.ToString() << "\n";
      ++counts.failed;
      continue;
    }
    absl::StatusOr<absl::Time> created = call(req);
    absl::Status status = created.status();
    if (status.ok()) {
      ++(*created >= run_start ? counts.created : counts.existing);
    } else if (absl::IsAlreadyExists(status)) {
      ++counts.existing;
    } else {
      std::cerr << path << ":" << line_number << ": " << status.ToString() << "\n";
      ++counts.failed;
    }
  }
  return counts;
}

absl::StatusOr<absl::Time> CreateTime(const google::protobuf::Timestamp& ts) {
  return absl::FromUnixSeconds(ts.seconds()) + absl::Nanoseconds(ts.nanos());
}

}  // namespace

int main(int argc, char** argv) {
  kp::config::ParseFlags(argc, argv, "kp-seed: loads the seed dataset through the public API.");
  const std::string dir = absl::GetFlag(FLAGS_data_dir);
  const absl::Duration timeout = absl::GetFlag(FLAGS_timeout);
  auto organisations = ov1::OrganisationService::NewStub(
      kp::MakeChannel(kp::OrganisationsAddress(), "khartoum.organisations.v1.OrganisationService"));
  auto events = ev1::EventService::NewStub(
      kp::MakeChannel(kp::EventsAddress(), "khartoum.events.v1.EventService"));

  const absl::Time start = absl::Now();
  // Organisations first: events name them as hosts and partners.
  Counts o = Load<ov1::CreateOrganisationRequest>(absl::StrCat(dir, "/organisations.jsonl"), start,
      [&](const ov1::CreateOrganisationRequest& req) -> absl::StatusOr<absl::Time> {
        ov1::CreateOrganisationResponse resp;
        auto ctx = kp::NewClientContext(timeout);
        RETURN_IF_ERROR(kp::FromGrpcStatus(organisations->CreateOrganisation(ctx.get(), req, &resp)));
        return CreateTime(resp.organisation().create_time());
      });
  Counts e = Load<ev1::CreateEventRequest>(absl::StrCat(dir, "/events.jsonl"), start,
      [&](const ev1::CreateEventRequest& req) -> absl::StatusOr<absl::Time> {
        ev1::CreateEventResponse resp;
        auto ctx = kp::NewClientContext(timeout);
        RETURN_IF_ERROR(kp::FromGrpcStatus(events->CreateEvent(ctx.get(), req, &resp)));
        return CreateTime(resp.event().create_time());
      });
  std::cout << "organisations: " << o.created << " created, " << o.existing << " already present, "
            << o.failed << " failed\n"
            << "events: " << e.created << " created, " << e.existing << " already present, "
            << e.failed << " failed\n";
  return o.failed + e.failed == 0 ? 0 : 1;
}
