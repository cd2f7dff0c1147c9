#include "services/rwd/survival/logistic.h"

#include <cmath>
#include <limits>

#include "absl/status/status.h"

namespace medkoord::survival {
namespace {

constexpr double kThresh = 30.0;
constexpr double kMThresh = -30.0;
const double kEps = std::numeric_limits<double>::epsilon();

double LinkInv(double eta) {
  const double t = eta < kMThresh ? kEps : (eta > kThresh ? 1 / kEps : std::exp(eta));
  return t / (1 + t);
}

double MuEta(double eta) {
  const double opexp = 1 + std::exp(eta);
  return (eta > kThresh || eta < kMThresh) ? kEps : std::exp(eta) / (opexp * opexp);
}

double YLogY(double y, double mu) { return y != 0 ? y * std::log(y / mu) : 0.0; }

double Deviance(const std::vector<int>& y, const std::vector<double>& mu) {
  double dev = 0;
  for (size_t i = 0; i < y.size(); ++i)
    dev += 2 * (YLogY(y[i], mu[i]) + YLogY(1.0 - y[i], 1 - mu[i]));
  return dev;
}

// Weighted least squares by Householder QR of the n x p matrix `a`
// (column-major). Returns the coefficients and leaves R in the upper
// triangle of `a`. False when a column is (numerically) dependent.
bool QrSolve(std::vector<double>& a, std::vector<double>& b, size_t n, size_t p,
             std::vector<double>& coef) {
  for (size_t k = 0; k < p; ++k) {
    double* col = &a[k * n];
    double norm = 0;
    for (size_t i = k; i < n; ++i) norm += col[i] * col[i];
    norm = std::sqrt(norm);
    if (norm == 0) return false;
    const double alpha = col[k] > 0 ? -norm : norm;
    // v = x - alpha e_k, stored in place of the column below the diagonal.
    std::vector<double> v(n - k);
    for (size_t i = k; i < n; ++i) v[i - k] = col[i];
    v[0] -= alpha;
    double vnorm2 = 0;
    for (double e : v) vnorm2 += e * e;
    if (vnorm2 == 0) continue;
    for (size_t j = k; j < p; ++j) {
      double* cj = &a[j * n];
      double dot = 0;
      for (size_t i = k; i < n; ++i) dot += v[i - k] * cj[i];
      const double f = 2 * dot / vnorm2;
      for (size_t i = k; i < n; ++i) cj[i] -= f * v[i - k];
    }
    double dot = 0;
    for (size_t i = k; i < n; ++i) dot += v[i - k] * b[i];
    const double f = 2 * dot / vnorm2;
    for (size_t i = k; i < n; ++i) b[i] -= f * v[i - k];
  }
  const double tol = 1e-7;
  double maxdiag = 0;
  for (size_t k = 0; k < p; ++k) maxdiag = std::max(maxdiag, std::fabs(a[k * n + k]));
  coef.assign(p, 0);
  for (size_t k = p; k-- > 0;) {
    const double rkk = a[k * n + k];
    if (std::fabs(rkk) <= tol * maxdiag) return false;
    double s = b[k];
    for (size_t j = k + 1; j < p; ++j) s -= a[j * n + k] * coef[j];
    coef[k] = s / rkk;
  }
  return true;
}

}  // namespace

absl::StatusOr<LogisticFit> FitLogistic(const std::vector<int>& y,
                                        const std::vector<std::vector<double>>& x,
                                        const std::vector<std::string>& names, double epsilon,
                                        int maxit) {
  const size_t n = y.size();
  const size_t p = x.size() + 1;
  if (names.size() != x.size()) return absl::InvalidArgumentError("names and columns differ");
  for (const auto& c : x)
    if (c.size() != n) return absl::InvalidArgumentError("column length differs");
  if (n < p) return absl::FailedPreconditionError("fewer observations than coefficients");
  LogisticFit fit;
  fit.names.push_back("(Intercept)");
  for (const auto& nm : names) fit.names.push_back(nm);
  auto xval = [&](size_t j, size_t i) { return j == 0 ? 1.0 : x[j - 1][i]; };

  std::vector<double> mu(n), eta(n);
  double ybar = 0;
  for (size_t i = 0; i < n; ++i) {
    mu[i] = (y[i] + 0.5) / 2.0;
    eta[i] = std::log(mu[i] / (1 - mu[i]));
    ybar += y[i];
  }
  ybar /= n;
  {
    std::vector<double> mu0(n, ybar);
    fit.null_deviance = Deviance(y, mu0);
  }
  double devold = Deviance(y, mu);
  std::vector<double> coef, a(n * p), z(n);
  for (int iter = 1; iter <= maxit; ++iter) {
    for (size_t i = 0; i < n; ++i) {
      const double varmu = mu[i] * (1 - mu[i]);
      const double me = MuEta(eta[i]);
      const double zi = eta[i] + (y[i] - mu[i]) / me;
      const double wi = std::sqrt(me * me / varmu);
      z[i] = zi * wi;
      for (size_t j = 0; j < p; ++j) a[j * n + i] = xval(j, i) * wi;
    }
    if (!QrSolve(a, z, n, p, coef))
      return absl::FailedPreconditionError("propensity model is rank deficient");
    for (size_t i = 0; i < n; ++i) {
      double e = 0;
      for (size_t j = 0; j < p; ++j) e += xval(j, i) * coef[j];
      eta[i] = e;
      mu[i] = LinkInv(e);
    }
    const double dev = Deviance(y, mu);
    fit.iter = iter;
    fit.deviance = dev;
    if (std::fabs(dev - devold) / (std::fabs(dev) + 0.1) < epsilon) {
      fit.converged = true;
      break;
    }
    devold = dev;
  }
  // Covariance (R'R)^-1 from the last QR, as summary.glm (dispersion 1).
  std::vector<double> rinv(p * p, 0);  // upper-triangular inverse, row-major
  for (size_t k = 0; k < p; ++k) {
    rinv[k * p + k] = 1 / a[k * n + k];
    for (size_t i = k; i-- > 0;) {
      double s = 0;
      for (size_t j = i + 1; j <= k; ++j) s += a[j * n + i] * rinv[j * p + k];
      rinv[i * p + k] = -s / a[i * n + i];
    }
  }
  fit.coef = coef;
  fit.se.resize(p);
  for (size_t i = 0; i < p; ++i) {
    double s = 0;
    for (size_t k = i; k < p; ++k) s += rinv[i * p + k] * rinv[i * p + k];
    fit.se[i] = std::sqrt(s);
  }
  fit.fitted = mu;
  return fit;
}

}  // namespace medkoord::survival
