#pragma once
// Cox proportional hazards regression as R's coxph (survival 3.5.3) fits it:
// coxph.fit -> C coxfit6 (Newton-Raphson from beta=0 with centring and scaling
// of the covariates, step halving, convergence on the relative change of the
// log partial likelihood, Cholesky with toler.chol), Efron or Breslow ties,
// case weights, the robust (infinitesimal jackknife / dfbeta sandwich)
// variance with one cluster per row, the score, Wald, likelihood-ratio,
// robust Wald and robust score tests, and the concordance coxph reports.
//
// Efron, B. (1977) "The efficiency of Cox's likelihood function for censored
// data", JASA 72:557-565, for the tie correction.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "services/rwd/survival/km.h"
#include "services/rwd/survival/math.h"

namespace medkoord::survival {

enum class Ties { kEfron, kBreslow };

struct CoxOptions {
  Ties ties = Ties::kEfron;
  double eps = 1e-9;
  double toler_chol = 1.818989403545856e-12;  // .Machine$double.eps^0.75
  int iter_max = 20;
  bool timefix = true;
  bool robust = true;       // also compute the robust variance and tests
  bool concordance = true;  // also compute the concordance
  double conf_int = 0.95;
};

// Covariates by column: x[j][i] is covariate j of subject i.
struct CoxDesign {
  std::vector<std::string> names;
  std::vector<std::vector<double>> x;
};

struct Concordance {
  double concordant = 0, discordant = 0, tied_x = 0, tied_y = 0, tied_xy = 0;
  double concordance = 0, std = 0;
};

struct TestStat {
  double stat = 0;
  int df = 0;
  double p = 1;
};

struct CoxTerm {
  std::string name;
  double coef = 0, se = 0, z = 0, p = 1, hr = 1, hr_lower = 1, hr_upper = 1;
  double robust_se = 0, robust_z = 0, robust_p = 1, robust_hr_lower = 1, robust_hr_upper = 1;
  double mean = 0;
  bool singular = false;  // coef is NA in R
};

struct CoxFit {
  Ties ties = Ties::kEfron;
  int64_t n = 0;
  double nevent = 0;           // number of events (unweighted)
  double weighted_nevent = 0;  // sum of weights of the events
  std::vector<CoxTerm> terms;
  Matrix var, robust_var;
  double loglik_null = 0, loglik = 0;
  int iter = 0;
  int flag = 0;  // coxfit6's flag: rank, or 1000 when out of iterations
  bool converged = true;
  TestStat lr_test, wald_test, score_test, robust_wald_test, robust_score_test;
  bool has_robust = false;
  Concordance concordance;
  std::vector<double> linear_predictor;  // per subject, centred as R's
};

absl::StatusOr<CoxFit> FitCox(const SurvivalData& data, const CoxDesign& design,
                              const CoxOptions& options = {});

// R's concordancefit(y, x, weights, reverse=TRUE, timefix=FALSE) with the
// default time weight "n", as coxph stores in fit$concordance.
Concordance CoxConcordance(const std::vector<double>& time, const std::vector<int>& event,
                           const std::vector<double>& weight, const std::vector<double>& risk);

}  // namespace medkoord::survival
