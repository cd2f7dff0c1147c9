#include "services/rwd/cohort.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <regex>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/csv/validators.h"
#include "common/status.h"

namespace medkoord::rwd {
namespace {

bool AllDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

int Digits(std::string_view s) {
  int v = 0;
  for (char c : s) v = v * 10 + (c - '0');
  return v;
}

// The CPR office's century rule: the 7th digit and the two-digit year give
// the century of birth.
int CprCentury(int seventh, int yy) {
  if (seventh <= 3) return 1900;
  if (seventh == 4 || seventh == 9) return yy <= 36 ? 2000 : 1900;
  return yy <= 57 ? 2000 : 1800;  // 5-8
}

// The 10 CPR digits of a value in either notation, or "" if it is neither.
std::string CprDigits(std::string_view value) {
  if (value.size() == 10 && AllDigits(value)) return std::string(value);
  if (value.size() == 11 && value[6] == '-' && AllDigits(value.substr(0, 6)) &&
      AllDigits(value.substr(7))) {
    std::string digits(value.substr(0, 6));
    digits.append(value.substr(7));
    return digits;
  }
  return "";
}

bool OnlyDigitsAndDashes(std::string_view s) {
  return !s.empty() &&
         std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || c == '-'; });
}

std::string Field(const csv::Record& record, int column) {
  if (column < 0 || column >= static_cast<int>(record.fields.size())) return "";
  // Surrounding spaces are not part of a value in this format, and R's "NA"
  // is missing, as an empty field is.
  std::string value(absl::StripAsciiWhitespace(record.fields[column]));
  return value == "NA" ? std::string() : value;
}

}  // namespace

std::optional<absl::CivilDay> ParseIsoDate(std::string_view text) {
  std::optional<csv::Date> date = csv::ParseIsoDate(text);
  if (!date) return std::nullopt;
  return absl::CivilDay(date->year, date->month, date->day);
}

std::string FormatIsoDate(absl::CivilDay day) { return absl::FormatCivilTime(day); }

std::optional<double> ParseNumber(std::string_view text) {
  if (text.empty()) return std::nullopt;
  double v = 0;
  const char* begin = text.data();
  if (*begin == '+') ++begin;  // from_chars takes no plus sign
  auto [ptr, ec] = std::from_chars(begin, text.data() + text.size(), v);
  if (ec != std::errc() || ptr != text.data() + text.size() || !std::isfinite(v)) {
    return std::nullopt;
  }
  return v;
}

bool IsValidCpr(std::string_view value) {
  std::string digits = CprDigits(value);
  if (digits.empty()) return false;
  int dd = Digits(std::string_view(digits).substr(0, 2));
  int mm = Digits(std::string_view(digits).substr(2, 2));
  int yy = Digits(std::string_view(digits).substr(4, 2));
  int year = CprCentury(digits[6] - '0', yy) + yy;
  return csv::IsValidDate(year, mm, dd);
}

absl::StatusOr<PatientRef> ClassifyPatientRef(std::string_view value) {
  if (value.empty()) return absl::InvalidArgumentError("required");
  if (OnlyDigitsAndDashes(value)) {
    if (!IsValidCpr(value)) {
      return absl::InvalidArgumentError(
          "only digits and dashes but not a CPR number (DDMMYY-NNNN or 10 digits with a valid "
          "date)");
    }
    return PatientRef{true, CprDigits(value)};
  }
  return PatientRef{false, std::string(value)};
}

absl::StatusOr<Pseudonymiser> Pseudonymiser::Create(std::string key) {
  if (key.size() < 32) {
    return absl::InvalidArgumentError("pseudonym_key must be at least 32 bytes");
  }
  return Pseudonymiser(std::move(key));
}

std::string Pseudonymiser::PatientKey(const PatientRef& ref) const {
  if (!ref.is_cpr) return absl::StrCat("ref:", ref.value);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  HMAC(EVP_sha256(), key_.data(), static_cast<int>(key_.size()),
       reinterpret_cast<const unsigned char*>(ref.value.data()), ref.value.size(), mac, &mac_len);
  return absl::StrCat(
      "cpr:", absl::BytesToHexString(absl::string_view(reinterpret_cast<char*>(mac), mac_len)));
}

absl::StatusOr<CohortLayout> ParseHeader(const std::vector<std::string>& header) {
  CohortLayout layout;
  layout.columns = static_cast<int>(header.size());
  FieldViolations violations;
  std::map<std::string, int> seen;
  int* fixed_slot[] = {&layout.patient_ref, &layout.arm, &layout.index_date, &layout.death_date,
                       &layout.progression_date, &layout.last_contact_date, &layout.source};
  const char* fixed_name[] = {kPatientRef, kArm, kIndexDate, kDeathDate,
                              kProgressionDate, kLastContactDate, kSource};
  for (size_t i = 0; i < header.size(); ++i) {
    std::string name(absl::StripAsciiWhitespace(header[i]));
    layout.header.push_back(name);
    if (name.empty()) {
      violations.Add(absl::StrCat("header[", i, "]"), "empty column name");
      continue;
    }
    if (!seen.emplace(name, static_cast<int>(i)).second) {
      violations.Add(absl::StrCat("header.", name), "duplicate column");
      continue;
    }
    bool fixed = false;
    for (size_t f = 0; f < 7; ++f) {
      if (name == fixed_name[f]) {
        *fixed_slot[f] = static_cast<int>(i);
        fixed = true;
      }
    }
    if (!fixed) {
      layout.covariate_names.push_back(name);
      layout.covariate_columns.push_back(static_cast<int>(i));
    }
  }
  for (size_t f = 0; f < 6; ++f) {  // all but `source` are required
    if (*fixed_slot[f] < 0) {
      violations.Add(absl::StrCat("header.", fixed_name[f]), "required column is missing");
    }
  }
  RETURN_IF_ERROR(violations.ToStatus());
  return layout;
}

std::optional<CohortRow> ValidateRecord(const CohortLayout& layout, const csv::Record& record,
                                        const Pseudonymiser& pseudonymiser,
                                        std::optional<absl::CivilDay> data_cut,
                                        std::vector<RowIssue>& errors,
                                        std::vector<RowIssue>& warnings) {
  const int64_t line = record.line;
  size_t errors_before = errors.size();
  auto error = [&](std::string field, std::string reason) {
    errors.push_back({line, std::move(field), std::move(reason)});
  };
  if (!record.error.empty()) {
    std::string field = record.error_field >= 0 && record.error_field < layout.columns
                            ? layout.header[record.error_field]
                            : "(row)";
    error(field, record.error);
    return std::nullopt;
  }
  if (static_cast<int>(record.fields.size()) != layout.columns) {
    error("(row)", absl::StrCat(record.fields.size(), " fields where the header has ",
                                layout.columns));
    return std::nullopt;
  }

  CohortRow row;
  row.line = line;
  absl::StatusOr<PatientRef> ref = ClassifyPatientRef(Field(record, layout.patient_ref));
  if (!ref.ok()) {
    error(kPatientRef, std::string(ref.status().message()));
  } else {
    row.patient_key = pseudonymiser.PatientKey(*ref);
  }
  row.arm = Field(record, layout.arm);
  if (row.arm.empty()) error(kArm, "required");

  auto date = [&](int column, const char* name, bool required) -> std::optional<absl::CivilDay> {
    std::string text = Field(record, column);
    if (text.empty()) {
      if (required) error(name, "required");
      return std::nullopt;
    }
    std::optional<absl::CivilDay> day = ParseIsoDate(text);
    if (!day) {
      // The value is repeated only when it has a date's shape: a CPR number
      // in the wrong column must not travel back in a reply.
      static const std::regex kDateShape("^[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}$");
      error(name, std::regex_match(text, kDateShape)
                      ? absl::StrCat("`", text, "` is not a date (YYYY-MM-DD)")
                      : std::string("not a date (YYYY-MM-DD)"));
    }
    return day;
  };
  std::optional<absl::CivilDay> index = date(layout.index_date, kIndexDate, true);
  row.death_date = date(layout.death_date, kDeathDate, false);
  row.progression_date = date(layout.progression_date, kProgressionDate, false);
  row.last_contact_date = date(layout.last_contact_date, kLastContactDate, false);
  const bool death_text = !Field(record, layout.death_date).empty();
  const bool contact_text = !Field(record, layout.last_contact_date).empty();

  if (!death_text && !contact_text) {
    error(kLastContactDate, "required when `death_date` is empty (no follow-up)");
  }
  if (index) {
    row.index_date = *index;
    if (row.death_date && *row.death_date < *index) error(kDeathDate, "before `index_date`");
    if (row.progression_date && *row.progression_date < *index) {
      error(kProgressionDate, "before `index_date`");
    }
    // Without a death the last contact ends the follow-up; with one, the
    // death date does and a last contact before the index date is a remark.
    if (row.last_contact_date && *row.last_contact_date < *index && !death_text) {
      error(kLastContactDate, "before `index_date`");
    }
  }
  if (row.progression_date && row.death_date && *row.progression_date > *row.death_date) {
    error(kProgressionDate, "after `death_date`");
  }
  if (layout.source >= 0) row.source = Field(record, layout.source);
  row.covariates.reserve(layout.covariate_columns.size());
  for (int column : layout.covariate_columns) row.covariates.push_back(Field(record, column));
  // A CPR number is stored nowhere in clear: one outside patient_ref
  // rejects the row.
  auto no_cpr = [&](const std::string& value, const std::string& field) {
    if (OnlyDigitsAndDashes(value) && IsValidCpr(value)) {
      error(field, "looks like a CPR number; patient identifiers belong in `patient_ref` only");
    }
  };
  no_cpr(row.arm, kArm);
  no_cpr(row.source, kSource);
  for (size_t i = 0; i < row.covariates.size(); ++i) {
    no_cpr(row.covariates[i], layout.covariate_names[i]);
  }
  if (errors.size() != errors_before) return std::nullopt;

  // Accepted; remarks for the data-quality report.
  auto warn = [&](std::string field, std::string reason) {
    warnings.push_back({line, std::move(field), std::move(reason)});
  };
  if (row.death_date && row.last_contact_date) {
    if (*row.last_contact_date > *row.death_date) warn(kLastContactDate, "after `death_date`");
    if (*row.last_contact_date < row.index_date) warn(kLastContactDate, "before `index_date`");
  }
  if (!row.death_date && row.progression_date && *row.progression_date > *row.last_contact_date) {
    warn(kProgressionDate, "after `last_contact_date`");
  }
  absl::CivilDay end = row.death_date ? *row.death_date : *row.last_contact_date;
  if (end == row.index_date) warn(kLastContactDate, "follow-up of 0 days");
  if (data_cut) {
    const std::pair<const char*, std::optional<absl::CivilDay>> dates[] = {
        {kIndexDate, row.index_date},
        {kDeathDate, row.death_date},
        {kProgressionDate, row.progression_date},
        {kLastContactDate, row.last_contact_date}};
    for (const auto& [name, day] : dates) {
      if (day && *day > *data_cut) warn(name, "after the data cut");
    }
  }
  return row;
}

CohortUpload::CohortUpload(const Pseudonymiser& pseudonymiser,
                           std::optional<absl::CivilDay> data_cut, UploadLimits limits)
    : pseudonymiser_(pseudonymiser),
      data_cut_(data_cut),
      limits_(limits),
      sha_(EVP_MD_CTX_new(), EVP_MD_CTX_free) {
  EVP_DigestInit_ex(sha_.get(), EVP_sha256(), nullptr);
}

std::string CohortUpload::Sha256Hex() const {
  std::shared_ptr<EVP_MD_CTX> copy(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  EVP_MD_CTX_copy_ex(copy.get(), sha_.get());
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(copy.get(), digest, &len);
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<char*>(digest), len));
}

void CohortUpload::AddIssue(std::vector<RowIssue>& list, bool& truncated, size_t cap,
                            RowIssue issue) {
  if (list.size() < cap) {
    list.push_back(std::move(issue));
  } else {
    truncated = true;
  }
}

absl::Status CohortUpload::Drain(std::vector<CohortRow>& batch) {
  csv::Record record;
  std::vector<RowIssue> errors, warnings;
  while (reader_.Next(record)) {
    if (!has_header_) {
      if (!record.error.empty()) {
        return InvalidField("header", absl::StrCat("line ", record.line, ": ", record.error));
      }
      ASSIGN_OR_RETURN(layout_, ParseHeader(record.fields));
      has_header_ = true;
      quality_.SetCovariates(layout_.covariate_names, layout_.source >= 0);
      continue;
    }
    ++rows_read_;
    errors.clear();
    warnings.clear();
    std::optional<CohortRow> row =
        ValidateRecord(layout_, record, pseudonymiser_, data_cut_, errors, warnings);
    if (row) {
      // The same patient twice: keyed on 128 bits of a hash of the patient
      // key, which is as good as the key for 10^6 patients (collision odds
      // ~10^-27) and keeps memory at 16 bytes per patient.
      unsigned char digest[EVP_MAX_MD_SIZE];
      unsigned int len = 0;
      EVP_Digest(row->patient_key.data(), row->patient_key.size(), digest, &len, EVP_sha256(),
                 nullptr);
      uint64_t hi = 0, lo = 0;
      std::memcpy(&hi, digest, 8);
      std::memcpy(&lo, digest + 8, 8);
      auto [it, inserted] = seen_.emplace(absl::MakeUint128(hi, lo), row->line);
      if (!inserted) {
        errors.push_back(
            {row->line, kPatientRef, absl::StrCat("the same patient as line ", it->second)});
        row.reset();
      }
    }
    for (RowIssue& e : errors) {
      AddIssue(errors_, errors_truncated_, limits_.max_listed_errors, std::move(e));
    }
    if (!row) {
      ++rows_rejected_;
      continue;
    }
    ++rows_accepted_;
    ++arms_[row->arm];
    for (RowIssue& w : warnings) {
      quality_.AddIssue(w.field, "implausible", w.reason, w.line);
      AddIssue(warnings_, warnings_truncated_, limits_.max_listed_warnings, std::move(w));
    }
    quality_.Add(*row);
    batch.push_back(std::move(*row));
  }
  if (reader_.failed()) {
    return InvalidField("chunk", absl::StrCat("line ", reader_.error().line, ": ",
                                              reader_.error().message, "; the file is unreadable "
                                              "from there on"));
  }
  return absl::OkStatus();
}

absl::Status CohortUpload::Feed(std::string_view chunk, std::vector<CohortRow>& batch) {
  EVP_DigestUpdate(sha_.get(), chunk.data(), chunk.size());
  reader_.Feed(chunk);
  return Drain(batch);
}

absl::Status CohortUpload::Finish(std::vector<CohortRow>& batch) {
  reader_.Finish();
  RETURN_IF_ERROR(Drain(batch));
  if (!has_header_) return InvalidField("chunk", "the file is empty: no header row");
  return absl::OkStatus();
}

std::vector<std::pair<std::string, VariableKind>> CohortUpload::Variables() const {
  std::vector<std::pair<std::string, VariableKind>> out;
  for (size_t i = 0; i < layout_.header.size(); ++i) {
    const std::string& name = layout_.header[i];
    if (static_cast<int>(i) == layout_.patient_ref) continue;
    if (name == kArm || name == kSource) {
      out.emplace_back(name, VariableKind::kText);
    } else if (name == kIndexDate || name == kDeathDate || name == kProgressionDate ||
               name == kLastContactDate) {
      out.emplace_back(name, VariableKind::kDate);
    }
    for (size_t c = 0; c < layout_.covariate_columns.size(); ++c) {
      if (layout_.covariate_columns[c] == static_cast<int>(i)) {
        out.emplace_back(name, quality_.IsNumeric(c) ? VariableKind::kNumeric
                                                     : VariableKind::kCategorical);
      }
    }
  }
  return out;
}

nlohmann::json CohortUpload::Report(const std::string& cohort_name) {
  // "Not a number" in a numeric column is known only now; list those values
  // among the warnings, in line order with the rest.
  for (size_t c = 0; c < layout_.covariate_names.size(); ++c) {
    if (!quality_.IsNumeric(c)) continue;
    for (int64_t line : quality_.NonNumeric(c).second) {
      AddIssue(warnings_, warnings_truncated_, limits_.max_listed_warnings,
               {line, layout_.covariate_names[c], "not a number; counted as missing"});
    }
  }
  std::stable_sort(warnings_.begin(), warnings_.end(),
                   [](const RowIssue& a, const RowIssue& b) { return a.line < b.line; });
  return quality_.Report(cohort_name, rows_rejected_);
}

}  // namespace medkoord::rwd
