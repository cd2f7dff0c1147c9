#include "services/intake/protocol.h"
#include "services/intake/text.h"

#include <algorithm>


namespace medkoord::intake {
namespace {

void Required(std::vector<Violation>& v, const char* field, std::string_view value, size_t max) {
  if (value.find_first_not_of(' ') == std::string_view::npos) {
    v.push_back({field, "required"});
  } else if (Utf8Length(value) > max) {
    v.push_back({field, Cat("longer than ", max, " characters")});
  }
}

}  // namespace

std::vector<Violation> CheckProtocol(const ProtocolRecord& p, std::string_view presented_on, const csv::Date& today,
                                     csv::Date* parsed_presented_on) {
  std::vector<Violation> v;
  Required(v, "title", p.title, kMaxProtocolTitle);
  if (p.region.empty()) {
    v.push_back({"region", "required"});
  } else if (std::find(std::begin(kRegions), std::end(kRegions), p.region) == std::end(kRegions)) {
    v.push_back({"region", Cat("`", p.region, "` is not a region")});
  }
  Required(v, "department", p.department, kMaxDepartment);
  Required(v, "drug_name", p.drug_name, kMaxDrugName);
  if (std::string problem = csv::AtcProblem(p.atc_code, true); !problem.empty()) v.push_back({"atc_code", problem});
  Required(v, "indication", p.indication, kMaxIndication);
  if (!p.icd10.empty() && !csv::IsIcd10Prefix(p.icd10)) {
    v.push_back({"icd10", Cat("`", p.icd10, "` is not an ICD-10 code or prefix")});
  }
  if (presented_on.empty()) {
    v.push_back({"presented_on", "required"});
  } else if (auto d = csv::ParseIsoDate(presented_on); !d) {
    v.push_back({"presented_on", Cat("`", presented_on, "` is not a date")});
  } else if (today < *d) {
    v.push_back({"presented_on", Cat("`", presented_on, "` is in the future")});
  } else {
    *parsed_presented_on = *d;
  }
  return v;
}

std::vector<Violation> CheckProtocolNote(std::string_view text, std::string_view state) {
  std::vector<Violation> v;
  Required(v, "text", text, kMaxNote);
  if (!state.empty() &&
      std::find(std::begin(kProtocolStates), std::end(kProtocolStates), state) == std::end(kProtocolStates)) {
    v.push_back({"state", Cat("`", state, "` is not a protocol state")});
  }
  return v;
}

std::string ProtocolName(std::string_view id) { return Cat("protocols/", id); }

std::optional<std::string> ProtocolIdFromName(std::string_view name) {
  if (name.substr(0, 10) != "protocols/") return std::nullopt;
  std::string id(name.substr(10));
  if (!IsValidCaseRef(id)) return std::nullopt;
  return id;
}

}  // namespace medkoord::intake
