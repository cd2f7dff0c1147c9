#pragma once
// A validated, pseudonymised patient row of an RWD cohort, and the remarks on
// rows. Shared by the parser (cohort.h) and the data-quality report.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/time/civil_time.h"

namespace medkoord::rwd {

// One accepted patient row, pseudonymised.
struct CohortRow {
  int64_t line = 0;
  std::string patient_key;
  std::string arm;
  absl::CivilDay index_date;
  std::optional<absl::CivilDay> death_date, progression_date, last_contact_date;
  std::string source;                   // "" when absent
  std::vector<std::string> covariates;  // raw text, "" = missing, per layout
};

// A rejected row or a remark on an accepted one.
struct RowIssue {
  int64_t line = 0;
  std::string field;  // column name, or "(row)"
  std::string reason;
};

// A strict ISO date (YYYY-MM-DD, a real calendar day).
std::optional<absl::CivilDay> ParseIsoDate(std::string_view text);
std::string FormatIsoDate(absl::CivilDay day);

// A number as the analysis reads it (strtod syntax, finite, whole field).
std::optional<double> ParseNumber(std::string_view text);

}  // namespace medkoord::rwd
