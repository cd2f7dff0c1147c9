#include "services/intake/application.h"
#include "services/intake/text.h"

#include <algorithm>

#include "common/csv/reader.h"

namespace medkoord::intake {
namespace {

template <size_t N>
bool OneOf(std::string_view value, const std::string_view (&allowed)[N]) {
  return std::find(std::begin(allowed), std::end(allowed), value) != std::end(allowed);
}

template <size_t N>
std::string List(const std::string_view (&allowed)[N]) {
  return Join(allowed, ", ");
}

// A value echoed in a reason, cut to 40 characters (at a character boundary)
// so that a huge field does not make a huge error list.
std::string Quoted(std::string_view s) {
  constexpr size_t kMaxEcho = 40;
  size_t chars = 0, end = 0;
  for (; end < s.size(); ++end) {
    if ((static_cast<unsigned char>(s[end]) & 0xC0) != 0x80 && ++chars > kMaxEcho) break;
  }
  return Cat("`", s.substr(0, end), end < s.size() ? "…" : "", "`");
}

bool HasControl(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
}

// A one-line text field: required or optional, bounded, no control characters.
void CheckText(std::vector<Violation>& v, const char* field, std::string_view value, size_t max, bool required) {
  if (value.empty()) {
    if (required) v.push_back({field, "required"});
    return;
  }
  if (Utf8Length(value) > max) {
    v.push_back({field, Cat("longer than ", max, " characters")});
  } else if (HasControl(value)) {
    v.push_back({field, "contains a line break or control character"});
  } else if (value.find_first_not_of(' ') == std::string_view::npos) {
    v.push_back({field, "required (only spaces given)"});
  }
}

template <size_t N>
void CheckEnum(std::vector<Violation>& v, const char* field, std::string_view value,
               const std::string_view (&allowed)[N], const char* what) {
  if (value.empty()) {
    v.push_back({field, "required"});
  } else if (!OneOf(value, allowed)) {
    v.push_back({field, Cat(Quoted(value), " is not ", what, " (", List(allowed), ")")});
  }
}

std::optional<csv::Date> CheckDate(std::vector<Violation>& v, const char* field, std::string_view value,
                                   const csv::Date& today, bool required) {
  if (value.empty()) {
    if (required) v.push_back({field, "required"});
    return std::nullopt;
  }
  auto d = csv::ParseIsoDate(value);
  if (!d) {
    v.push_back({field, Cat(Quoted(value), " is not a date (YYYY-MM-DD)")});
    return std::nullopt;
  }
  if (today < *d) {
    v.push_back({field, Cat(Quoted(value), " is in the future (today is ", csv::FormatIsoDate(today), ")")});
    return std::nullopt;
  }
  return d;
}

std::optional<bool> CheckYesNo(std::vector<Violation>& v, const char* field, std::string_view value) {
  if (value.empty()) {
    v.push_back({field, "required"});
    return std::nullopt;
  }
  auto b = csv::ParseYesNo(value);
  if (!b) v.push_back({field, Cat(Quoted(value), " is not `yes`/`no`")});
  return b;
}

const char* YesNo(bool b) { return b ? "yes" : "no"; }

}  // namespace

size_t Utf8Length(std::string_view text) {
  return std::count_if(text.begin(), text.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; });
}

bool IsValidCaseRef(std::string_view case_ref) {
  if (case_ref.empty() || case_ref.size() > kMaxCaseRef) return false;
  return std::all_of(case_ref.begin(), case_ref.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
           c == '-';
  });
}

ParsedApplication ParseApplication(const RawApplication& raw, ParseMode mode, const csv::Date& today) {
  ParsedApplication out;
  ApplicationRecord& r = out.record;
  std::vector<Violation>& v = out.violations;

  if (mode == ParseMode::kImport) {
    if (raw.case_ref.empty()) {
      v.push_back({"case_ref", "required"});
    } else if (!IsValidCaseRef(raw.case_ref)) {
      v.push_back({"case_ref", Cat(Quoted(raw.case_ref),
                                            " is not a case reference (1 to 64 letters, digits, '.', '_', '-')")});
    }
    r.case_ref = raw.case_ref;
  }
  CheckText(v, "region_ref", raw.region_ref, kMaxRegionRef, false);
  r.region_ref = raw.region_ref;
  if (raw.region.empty()) {
    v.push_back({"region", "required"});
  } else if (!OneOf(raw.region, kRegions)) {
    v.push_back({"region", Cat(Quoted(raw.region), " is not a region (", List(kRegions), ")")});
  }
  r.region = raw.region;
  auto submitted = CheckDate(v, "submitted_on", raw.submitted_on, today, true);
  if (submitted) r.submitted_on = *submitted;
  CheckText(v, "drug_name", raw.drug_name, kMaxDrugName, true);
  r.drug_name = raw.drug_name;
  if (std::string problem = csv::AtcProblem(raw.atc_code, false); !problem.empty()) {
    v.push_back({"atc_code", problem});
  }
  r.atc_code = raw.atc_code;
  CheckText(v, "indication", raw.indication, kMaxIndication, true);
  r.indication = raw.indication;
  if (!raw.icd10.empty() && !csv::IsIcd10Code(raw.icd10)) {
    v.push_back({"icd10", Cat(Quoted(raw.icd10), " is not an ICD-10 code (e.g. C18.9 or C18)")});
  }
  r.icd10 = raw.icd10;
  if (auto b = CheckYesNo(v, "cancer", raw.cancer)) r.cancer = *b;
  if (auto b = CheckYesNo(v, "marketed_dk", raw.marketed_dk)) r.marketed_dk = *b;
  CheckEnum(v, "medicinraadet_status", raw.medicinraadet_status, kMedicinraadetStatuses, "a Medicinrådet status");
  r.medicinraadet_status = raw.medicinraadet_status;
  CheckEnum(v, "ema_status", raw.ema_status, kEmaStatuses, "an EMA status");
  r.ema_status = raw.ema_status;
  if (Utf8Length(raw.note) > kMaxNote) v.push_back({"note", Cat("longer than ", kMaxNote, " characters")});
  r.note = raw.note;

  if (mode == ParseMode::kImport) {
    r.source = kSourceImported;
    bool outcome_ok = true;
    if (!raw.outcome.empty() && !OneOf(raw.outcome, kOutcomes)) {
      outcome_ok = false;
      v.push_back({"outcome", Cat(Quoted(raw.outcome), " is not an outcome (", List(kOutcomes),
                                           ", or empty while the case is open)")});
    }
    r.outcome = raw.outcome;
    r.state = raw.outcome.empty() ? kStateOpen : kStateDecided;
    const size_t before = v.size();
    auto decided = CheckDate(v, "decided_on", raw.decided_on, today, false);
    const bool decided_ok = v.size() == before;
    r.decided_on = decided;
    if (outcome_ok && decided_ok) {
      if ((raw.outcome == "recommended" || raw.outcome == "not_recommended") && raw.decided_on.empty()) {
        v.push_back({"decided_on", Cat("required when the outcome is ", Quoted(raw.outcome))});
      } else if (raw.outcome.empty() && !raw.decided_on.empty()) {
        v.push_back({"decided_on", "must be empty while the case is open (no outcome)"});
      } else if (decided && submitted && *decided < *submitted) {
        v.push_back({"decided_on", Cat(Quoted(raw.decided_on), " is before submitted_on ",
                                                Quoted(raw.submitted_on))});
      }
    }
  }
  return out;
}

RawApplication ToRaw(const ApplicationRecord& r) {
  RawApplication raw;
  raw.case_ref = r.case_ref;
  raw.region_ref = r.region_ref;
  raw.region = r.region;
  raw.submitted_on = csv::FormatIsoDate(r.submitted_on);
  raw.drug_name = r.drug_name;
  raw.atc_code = r.atc_code;
  raw.indication = r.indication;
  raw.icd10 = r.icd10;
  raw.cancer = YesNo(r.cancer);
  raw.marketed_dk = YesNo(r.marketed_dk);
  raw.medicinraadet_status = r.medicinraadet_status;
  raw.ema_status = r.ema_status;
  raw.outcome = r.outcome;
  // The export format has no state: a withdrawal is a case closed without a
  // final assessment, which is what `not_concluded` means (DOMAIN.md).
  if (r.state == kStateWithdrawn && r.outcome.empty()) raw.outcome = "not_concluded";
  raw.decided_on = r.decided_on ? csv::FormatIsoDate(*r.decided_on) : "";
  raw.note = r.note;
  return raw;
}

std::string ApplicationName(std::string_view region, std::string_view case_ref) {
  return Cat("regions/", region, "/applications/", case_ref);
}

std::optional<ApplicationNameParts> ParseApplicationName(std::string_view name) {
  std::vector<std::string_view> parts;
  for (size_t start = 0;;) {
    size_t slash = name.find('/', start);
    parts.push_back(name.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start));
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  if (parts.size() != 4 || parts[0] != "regions" || parts[2] != "applications") return std::nullopt;
  if (!OneOf(parts[1], kRegions) || !IsValidCaseRef(parts[3])) return std::nullopt;
  return ApplicationNameParts{std::string(parts[1]), std::string(parts[3])};
}

const std::vector<std::string>& ForumCsvFormat::Columns(bool with_region_ref) {
  static const auto* kWith = new std::vector<std::string>{
      "case_ref",   "region_ref", "region",      "submitted_on",         "drug_name",  "atc_code", "indication",
      "icd10",      "cancer",     "marketed_dk", "medicinraadet_status", "ema_status", "outcome",  "decided_on"};
  static const auto* kWithout = [] {
    auto* v = new std::vector<std::string>(*kWith);
    v->erase(v->begin() + 1);
    return v;
  }();
  return with_region_ref ? *kWith : *kWithout;
}

std::optional<ForumCsvFormat> ForumCsvFormat::FromHeader(const std::vector<std::string>& header, std::string* error) {
  const auto& known = Columns(true);
  ForumCsvFormat format;
  std::vector<std::string> problems;
  for (const std::string& name : header) {
    if (std::find(known.begin(), known.end(), name) == known.end()) {
      problems.push_back(Cat("unknown column ", Quoted(name)));
    } else if (std::find(format.names_.begin(), format.names_.end(), name) != format.names_.end()) {
      problems.push_back(Cat("column ", Quoted(name), " appears twice"));
    }
    format.names_.push_back(name);
  }
  std::vector<std::string> missing;
  for (const std::string& name : Columns(false)) {
    if (std::find(header.begin(), header.end(), name) == header.end()) missing.push_back(name);
  }
  if (!missing.empty()) problems.push_back(Cat("missing column(s) ", Join(missing, ", ")));
  if (!problems.empty()) {
    *error = Cat("the header is not the Forum export format: ", Join(problems, "; "),
                          " (expected ", Join(Columns(false), ","), ", region_ref optional)");
    return std::nullopt;
  }
  return format;
}

RawApplication ForumCsvFormat::ToRaw(const std::vector<std::string>& fields) const {
  RawApplication raw;
  for (size_t i = 0; i < names_.size() && i < fields.size(); ++i) {
    const std::string& n = names_[i];
    const std::string& f = fields[i];
    if (n == "case_ref") raw.case_ref = f;
    else if (n == "region_ref") raw.region_ref = f;
    else if (n == "region") raw.region = f;
    else if (n == "submitted_on") raw.submitted_on = f;
    else if (n == "drug_name") raw.drug_name = f;
    else if (n == "atc_code") raw.atc_code = f;
    else if (n == "indication") raw.indication = f;
    else if (n == "icd10") raw.icd10 = f;
    else if (n == "cancer") raw.cancer = f;
    else if (n == "marketed_dk") raw.marketed_dk = f;
    else if (n == "medicinraadet_status") raw.medicinraadet_status = f;
    else if (n == "ema_status") raw.ema_status = f;
    else if (n == "outcome") raw.outcome = f;
    else if (n == "decided_on") raw.decided_on = f;
  }
  return raw;
}

void ForumCsvFormat::AppendHeader(std::string& out, bool with_region_ref) {
  out += Cat(Join(Columns(with_region_ref), ","), "\r\n");
}

void ForumCsvFormat::AppendRow(std::string& out, const ApplicationRecord& record, bool with_region_ref) {
  const RawApplication raw = intake::ToRaw(record);
  const std::string* values[] = {&raw.case_ref,   &raw.region_ref,  &raw.region,
                                 &raw.submitted_on, &raw.drug_name, &raw.atc_code,
                                 &raw.indication, &raw.icd10,       &raw.cancer,
                                 &raw.marketed_dk, &raw.medicinraadet_status, &raw.ema_status,
                                 &raw.outcome,    &raw.decided_on};
  bool first = true;
  for (size_t i = 0; i < std::size(values); ++i) {
    if (i == 1 && !with_region_ref) continue;
    if (!first) out.push_back(',');
    first = false;
    csv::AppendField(out, *values[i]);
  }
  out.append("\r\n");
}

}  // namespace medkoord::intake
