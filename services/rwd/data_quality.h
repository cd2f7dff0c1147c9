#pragma once
// The data-quality report of a cohort (issue 7): completeness per variable,
// per arm and per source; out-of-range and implausible values; the follow-up
// time distribution; events per arm. Accumulated row by row while an upload
// streams, so memory does not grow with the number of rows (beyond one
// counter per distinct follow-up day).

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "nlohmann/json.hpp"
#include "services/rwd/cohort_row.h"

namespace medkoord::rwd {

enum class VariableKind { kNumeric, kCategorical, kDate, kText };

// The range a known clinical variable must lie in (out of range) and the
// range that is plausible for the adult populations of the protocols.
struct VariableRule {
  double min = 0, max = 0;  // outside: out of range
  bool integer = false;     // a non-integer value is out of range
  std::optional<double> plausible_min, plausible_max;
  std::string what;         // "age in years", shown in the reason
};
// Rules by covariate name (age, ecog, pdl1_pct, max_ae_grade, prior_lines).
const std::map<std::string, VariableRule>& KnownVariableRules();

// Quantiles with R's default (type 7) from a histogram of integer values.
struct Distribution {
  int64_t n = 0;
  double min = 0, q1 = 0, median = 0, q3 = 0, max = 0, mean = 0;
};
Distribution DistributionOf(const std::map<int64_t, int64_t>& histogram);

class DataQuality {
 public:
  // Caps the distinct arms and sources reported; more fall into "(other)".
  static constexpr size_t kMaxGroups = 200;
  static constexpr size_t kMaxExampleLines = 100;

  void SetCovariates(std::vector<std::string> names, bool has_source);

  // An accepted row.
  void Add(const CohortRow& row);
  // A remark on an accepted row found during validation (dates after the
  // data cut, contact after death, ...).
  void AddIssue(const std::string& variable, const std::string& kind, const std::string& reason,
                int64_t line);

  // Decided on the whole file: a covariate is numeric when it has at least
  // one number and no more non-numbers than numbers; then its non-numbers
  // count as missing.
  bool IsNumeric(size_t covariate) const;

  // Lines (capped) with a non-number in covariate `i`, with the total.
  std::pair<int64_t, std::vector<int64_t>> NonNumeric(size_t covariate) const;

  // DataQualityReport in the proto's JSON form (field names as in rwd.proto).
  nlohmann::json Report(const std::string& cohort_name, int64_t rows_rejected) const;

 private:
  struct CovariateCounts {
    int64_t empty = 0, numeric = 0, non_numeric = 0;
  };
  struct Group {
    int64_t patients = 0;
    // Present counts of the fixed variables, in kFixed order.
    std::vector<int64_t> fixed_present;
    std::vector<CovariateCounts> covariates;
  };
  struct Issue {
    int64_t count = 0;
    std::vector<int64_t> lines;
  };
  struct ArmEvents {
    int64_t patients = 0, deaths = 0, progressions = 0, pfs_events = 0;
    std::map<int64_t, int64_t> follow_up;
  };

  Group& GroupFor(std::map<std::string, Group>& groups, const std::string& key);
  void Count(Group& group, const CohortRow& row);
  nlohmann::json GroupJson(const std::string& key, const Group& group) const;

  std::vector<std::string> covariates_;
  bool has_source_ = false;
  Group all_;
  std::map<std::string, Group> by_arm_, by_source_;
  std::vector<Issue> non_numeric_;
  // (variable, kind, reason) -> occurrences.
  std::map<std::tuple<std::string, std::string, std::string>, Issue> issues_;
  // Numeric range problems per covariate, kept apart because they only count
  // once the covariate is known to be numeric.
  std::map<std::tuple<size_t, std::string, std::string>, Issue> range_issues_;
  std::map<int64_t, int64_t> follow_up_;
  std::map<std::string, ArmEvents> events_;
};

}  // namespace medkoord::rwd
