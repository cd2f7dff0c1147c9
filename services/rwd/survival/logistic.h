#pragma once
// Logistic regression by iteratively reweighted least squares, following R's
// glm.fit(family=binomial) step for step (starting values, Householder QR
// solve, deviance convergence |dev - devold|/(|dev| + 0.1) < 1e-8), so the
// fitted propensity scores match R's fitted(glm(...)) to rounding.

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace medkoord::survival {

struct LogisticFit {
  std::vector<std::string> names;  // "(Intercept)" then the covariates
  std::vector<double> coef, se;
  double deviance = 0, null_deviance = 0;
  int iter = 0;
  bool converged = false;
  std::vector<double> fitted;  // P(y = 1 | x) per subject
};

// `y` is 0/1; `x[j][i]` covariate j of subject i; an intercept is added.
absl::StatusOr<LogisticFit> FitLogistic(const std::vector<int>& y,
                                        const std::vector<std::vector<double>>& x,
                                        const std::vector<std::string>& names,
                                        double epsilon = 1e-8, int maxit = 25);

}  // namespace medkoord::survival
