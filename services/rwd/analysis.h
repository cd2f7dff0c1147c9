#pragma once
// Glue between a stored cohort and the analysis library (services/rwd/
// analyse): the cohort's rows become the same table the offline
// `medkoord analyse FILE --endpoint ...` reads from the cohort file, and the
// result is set side by side with the protocol's trial benchmarks. Pure code.

#include <set>
#include <string>
#include <vector>

#include "medkoord/rwd/v1/rwd.pb.h"
#include "nlohmann/json.hpp"
#include "services/rwd/analyse/table.h"
#include "services/rwd/cohort_row.h"

namespace medkoord::rwd {

inline constexpr double kDaysPerMonth = 30.4375;

// Collects rows into an analyse::Table with the cohort format's columns.
// `patient_ref` holds "L<line>": neither a CPR number nor a pseudonym ever
// reaches an analysis. A non-number in a numeric covariate is written
// missing, as the data-quality report counts it.
class CohortTableBuilder {
 public:
  // `arms`: the arms to keep; empty keeps all.
  CohortTableBuilder(std::vector<std::string> covariate_names, std::vector<bool> numeric,
                     bool has_source, std::set<std::string> arms);
  void Add(const CohortRow& row);
  int64_t rows() const { return rows_; }
  analyse::Table Take() { return std::move(table_); }

 private:
  std::vector<bool> numeric_;
  bool has_source_;
  std::set<std::string> arms_;
  analyse::Table table_;
  int64_t rows_ = 0;
};

// RWD hazard ratios (Cox unadjusted, Cox adjusted when the group is among
// the covariates, IPTW-weighted when computed) and medians per arm against
// every benchmark of `endpoint` in the protocol. `result` is the analysis
// JSON; `group` the group column whose levels are the protocol's arm labels.
std::vector<v1::BenchmarkComparison> CompareWithBenchmarks(const nlohmann::ordered_json& result,
                                                           const std::string& group,
                                                           const v1::Protocol& protocol,
                                                           v1::Endpoint endpoint);

// True if both 95 % intervals [a_lo, a_hi] and [b_lo, b_hi] share a point.
bool IntervalsOverlap(double a_lo, double a_hi, double b_lo, double b_hi);

}  // namespace medkoord::rwd
