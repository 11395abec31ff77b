// Event fields, derivations and validation.
#include "services/events/event_rules.h"

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/resource/reflection.h"
#include "common/resource/validation.h"
#include "khartoum/events/v1/events.pb.h"

namespace kp::events {

namespace v1 = khartoum::events::v1;
namespace r = kp::resource;

resource::ResourceSpec EventSpec() {
  return {
      .collection = "events",
      .singular = "event",
      .descriptor = v1::Event::descriptor(),
      .fields = {"kind", "level", "status", "start_date", "end_date", "location.country_code",
                 "location.city", "hosts", "co_hosts", "partners", "topics", "title"},
      .search_paths = {"title", "summary", "description", "location.city", "topics"},
      .output_only = {"level"},
      .immutable = {},
  };
}

void EventRules::Normalize(google::protobuf::Message& message) const {
  auto& e = static_cast<v1::Event&>(message);
  switch (e.kind()) {
    case v1::EVENT_KIND_STEERING_COMMITTEE_MEETING:
    case v1::EVENT_KIND_SENIOR_OFFICIALS_MEETING:
    case v1::EVENT_KIND_MINISTERIAL_CONFERENCE:
      e.set_level(v1::EVENT_LEVEL_POLITICAL);
      break;
    case v1::EVENT_KIND_UNSPECIFIED:
      e.set_level(v1::EVENT_LEVEL_UNSPECIFIED);
      break;
    default:
      e.set_level(v1::EVENT_LEVEL_TECHNICAL);
  }
  if (e.status() == v1::EVENT_STATUS_UNSPECIFIED) e.set_status(v1::EVENT_STATUS_PLANNED);
}

namespace {

void CheckOrganisationList(FieldViolations& v, const std::string& field,
                           const google::protobuf::RepeatedPtrField<std::string>& names) {
  if (names.size() > r::kMaxRepeated) {
    v.Add(field, absl::StrCat("at most ", r::kMaxRepeated, " entries"));
    return;
  }
  absl::flat_hash_set<std::string> seen;
  for (int i = 0; i < names.size(); ++i) {
    const std::string f = absl::StrCat(field, "[", i, "]");
    r::CheckResourceName(v, f, "organisations", names[i]);
    if (!seen.insert(names[i]).second) v.Add(f, absl::StrCat("'", names[i], "' is listed twice"));
  }
}

}  // namespace

void EventRules::Validate(const google::protobuf::Message& message, FieldViolations& v) const {
  const auto& e = static_cast<const v1::Event&>(message);
  r::CheckRequired(v, "event.title", e.title());
  r::CheckLength(v, "event.title", e.title(), 300);
  r::CheckEnum(v, "event.kind", e, "kind", true);
  r::CheckEnum(v, "event.status", e, "status", false);
  r::CheckDate(v, "event.start_date", e.start_date(), true);
  r::CheckDate(v, "event.end_date", e.end_date(), true);
  const std::string start = r::DateString(e.start_date());
  const std::string end = r::DateString(e.end_date());
  if (!start.empty() && !end.empty() && end < start) {
    v.Add("event.end_date", absl::StrCat("must be on or after start_date (", start, ")"));
  }
  r::CheckLength(v, "event.location.city", e.location().city(), 100);
  r::CheckLength(v, "event.location.venue", e.location().venue(), 200);
  r::CheckCountryCode(v, "event.location.country_code", e.location().country_code());
  CheckOrganisationList(v, "event.hosts", e.hosts());
  CheckOrganisationList(v, "event.co_hosts", e.co_hosts());
  CheckOrganisationList(v, "event.partners", e.partners());
  if (e.topics_size() > 50) v.Add("event.topics", "at most 50 topics");
  absl::flat_hash_set<std::string> topics;
  for (int i = 0; i < e.topics_size() && i < 50; ++i) {
    const std::string f = absl::StrCat("event.topics[", i, "]");
    r::CheckSlug(v, f, e.topics(i));
    if (!topics.insert(e.topics(i)).second) v.Add(f, absl::StrCat("'", e.topics(i), "' is listed twice"));
  }
  r::CheckLength(v, "event.summary", e.summary(), 2000);
  r::CheckLength(v, "event.description", e.description(), 50000);
  if (e.capacity() < 0) v.Add("event.capacity", "must be 0 (unlimited) or positive");
  const auto& ra = e.reported_attendance();
  if (ra.participant_count() < 0) v.Add("event.reported_attendance.participant_count", "must not be negative");
  if (ra.country_count() < 0) v.Add("event.reported_attendance.country_count", "must not be negative");
  if (ra.organisation_count() < 0) v.Add("event.reported_attendance.organisation_count", "must not be negative");
}

absl::StatusOr<resource::TxCheck> EventRules::Prepare(const google::protobuf::Message& after,
                                                      const google::protobuf::Message* before,
                                                      const CallInfo& call) const {
  const auto& e = static_cast<const v1::Event&>(after);
  // Only organisations newly named by this write are checked: an existing reference to an
  // organisation deleted since does not block unrelated edits.
  absl::flat_hash_set<std::string> known;
  if (before != nullptr) {
    const auto& b = static_cast<const v1::Event&>(*before);
    for (const auto* list : {&b.hosts(), &b.co_hosts(), &b.partners()}) known.insert(list->begin(), list->end());
  }
  std::vector<Reference> refs;
  auto collect = [&](const char* field, const google::protobuf::RepeatedPtrField<std::string>& names) {
    for (int i = 0; i < names.size(); ++i) {
      if (!known.contains(names[i])) refs.push_back({absl::StrCat("event.", field, "[", i, "]"), names[i]});
    }
  };
  collect("hosts", e.hosts());
  collect("co_hosts", e.co_hosts());
  collect("partners", e.partners());
  RETURN_IF_ERROR(organisations_->CheckExist(refs, call));
  return resource::TxCheck();
}

}  // namespace kp::events
