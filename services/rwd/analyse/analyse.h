#pragma once
// The offline survival analysis of one CSV file: Kaplan-Meier overall and per
// group, log-rank and Peto-Peto, Cox models (group alone and the given
// covariates, Efron and Breslow, model and robust variance), the IPTW
// analysis from a logistic propensity model, and adverse events by worst
// grade. The result is one JSON object whose sections, keys and nesting
// follow the R reference files (../shared/fixtures/survival/*_ref.json).
//
// This is what `medkoord analyse` and the RWD service's RunAnalysis call, so
// both give the same numbers for the same data and spec.

#include <iosfwd>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "services/rwd/analyse/json_out.h"
#include "services/rwd/analyse/table.h"
#include "services/rwd/survival/iptw.h"
#include "services/rwd/survival/km.h"

namespace medkoord::analyse {

struct AnalysisSpec {
  // Either time_column + event_column/event_values, or endpoint ("os" or
  // "pfs") for a file in the RWD cohort format (times derived from dates).
  std::string time_column;
  std::string event_column;
  std::vector<std::string> event_values;
  std::string endpoint;
  std::string group;                       // optional
  std::vector<std::string> covariates;     // coxph.multi terms: "age", "log(x)"
  std::vector<std::string> ps_covariates;  // propensity model terms
  std::map<std::string, std::string> reference;  // factor column -> reference level
  std::vector<double> at_times;
  survival::ConfType conf_type = survival::ConfType::kLog;
  double conf_int = 0.95;
  survival::IptwOptions iptw;
  // Worst adverse-event grade column; empty: "max_ae_grade" when present.
  std::string ae_column;
};

absl::StatusOr<Json> RunAnalysis(const Table& table, const AnalysisSpec& spec);

// Parses `analyse FILE.csv --time COL --event COL=V[,V...] [--group COL]
// [--covariates A,B,log(C)] [--ps-covariates A,log(C)] [--reference COL=LEVEL]...
// [--at-times T,T...] [--endpoint os|pfs] [--json]` (the leading "analyse" is
// optional). Returns the spec and sets *file and *json.
absl::StatusOr<AnalysisSpec> ParseAnalyseArgs(const std::vector<std::string>& args,
                                              std::string* file, bool* json);

// The command: exit code 0 on success, 2 on bad usage, 1 when the analysis
// fails. With --json prints the JSON object, otherwise a short text summary.
int RunAnalyseCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace medkoord::analyse
