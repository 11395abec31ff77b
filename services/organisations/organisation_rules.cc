// Organisation fields and validation.
#include "services/organisations/organisation_rules.h"

#include "absl/strings/str_cat.h"
#include "common/resource/validation.h"
#include "khartoum/organisations/v1/organisations.pb.h"

namespace kp::organisations {

using khartoum::organisations::v1::Organisation;
using khartoum::organisations::v1::ORGANISATION_KIND_GOVERNMENT;
namespace r = kp::resource;

resource::ResourceSpec OrganisationSpec() {
  return {
      .collection = "organisations",
      .singular = "organisation",
      .descriptor = Organisation::descriptor(),
      .fields = {"kind", "country_code", "process_role", "display_name", "acronym"},
      .search_paths = {"display_name", "acronym", "description"},
      .output_only = {},
      .immutable = {},
  };
}

void OrganisationRules::Validate(const google::protobuf::Message& message, FieldViolations& v) const {
  const auto& o = static_cast<const Organisation&>(message);
  r::CheckRequired(v, "organisation.display_name", o.display_name());
  r::CheckLength(v, "organisation.display_name", o.display_name(), 200);
  r::CheckLength(v, "organisation.acronym", o.acronym(), 32);
  r::CheckEnum(v, "organisation.kind", o, "kind", false);
  r::CheckEnum(v, "organisation.process_role", o, "process_role", false);
  r::CheckCountryCode(v, "organisation.country_code", o.country_code());
  if (o.kind() == ORGANISATION_KIND_GOVERNMENT && o.country_code().empty()) {
    v.Add("organisation.country_code", "is required for a GOVERNMENT organisation");
  }
  r::CheckHttpUri(v, "organisation.website_uri", o.website_uri());
  r::CheckLength(v, "organisation.description", o.description(), 10000);
  if (o.external_ids_size() > 32) v.Add("organisation.external_ids", "at most 32 entries");
  for (const auto& [key, value] : o.external_ids()) {
    const std::string field = absl::StrCat("organisation.external_ids[\"", key, "\"]");
    if (!r::IsValidId(key)) v.Add(field, "key must be a lower-case registry name such as 'wikidata'");
    r::CheckRequired(v, field, value);
    r::CheckLength(v, field, value, 200);
  }
}

}  // namespace kp::organisations
