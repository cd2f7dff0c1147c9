#pragma once
// The G-rho family of k-sample tests exactly as R's survdiff computes them
// (C survdiff2.c): rho=0 is the log-rank test, rho=1 the Peto & Peto
// modification of the Gehan-Wilcoxon test. Case weights are not used, as in
// survdiff.

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "services/rwd/survival/km.h"
#include "services/rwd/survival/math.h"

namespace medkoord::survival {

struct LogRankResult {
  double rho = 0;
  std::vector<std::string> groups;  // labels of the groups that have subjects
  std::vector<double> n, obs, exp;
  Matrix var;
  double chisq = 0;
  int df = 0;
  double p = 1;
};

// `group[i]` indexes `labels`; groups without subjects are left out.
absl::StatusOr<LogRankResult> SurvDiff(const SurvivalData& data, const std::vector<int>& group,
                                       const std::vector<std::string>& labels, double rho = 0,
                                       bool timefix = true);

}  // namespace medkoord::survival
