#include "services/rwd/survival/math.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace medkoord::survival {
namespace {

// Regularised lower incomplete gamma P(a, x) by its series (x < a + 1).
double GammaPSeries(double a, double x) {
  double sum = 1.0 / a;
  double term = sum;
  for (int n = 1; n < 100000; ++n) {
    term *= x / (a + n);
    sum += term;
    if (std::fabs(term) < std::fabs(sum) * 1e-17) break;
  }
  return sum * std::exp(-x + a * std::log(x) - std::lgamma(a));
}

// Regularised upper incomplete gamma Q(a, x) by Lentz's continued fraction
// (x >= a + 1), accurate in relative terms deep into the tail.
double GammaQContinuedFraction(double a, double x) {
  const double tiny = 1e-300;
  double b = x + 1.0 - a;
  double c = 1.0 / tiny;
  double d = 1.0 / b;
  double h = d;
  for (int i = 1; i < 100000; ++i) {
    const double an = -i * (i - a);
    b += 2.0;
    d = an * d + b;
    if (std::fabs(d) < tiny) d = tiny;
    c = b + an / c;
    if (std::fabs(c) < tiny) c = tiny;
    d = 1.0 / d;
    const double del = d * c;
    h *= del;
    if (std::fabs(del - 1.0) < 1e-17) break;
  }
  return std::exp(-x + a * std::log(x) - std::lgamma(a)) * h;
}

}  // namespace

double Qnorm(double p) {
  if (std::isnan(p) || p < 0 || p > 1) return std::numeric_limits<double>::quiet_NaN();
  if (p == 0) return -std::numeric_limits<double>::infinity();
  if (p == 1) return std::numeric_limits<double>::infinity();
  // Wichura (1988), Algorithm AS 241, as in R's qnorm.c.
  const double q = p - 0.5;
  double val;
  if (std::fabs(q) <= 0.425) {
    const double r = 0.180625 - q * q;
    val = q *
          (((((((r * 2509.0809287301226727 + 33430.575583588128105) * r +
                67265.770927008700853) * r + 45921.953931549871457) * r +
              13731.693765509461125) * r + 1971.5909503065514427) * r +
            133.14166789178437745) * r + 3.387132872796366608) /
          (((((((r * 5226.495278852545925 + 28729.085735721942674) * r +
                39307.89580009271061) * r + 21213.794301586595867) * r +
              5394.1960214247511077) * r + 687.1870074920579083) * r +
            42.313330701600911252) * r + 1.0);
    return val;
  }
  double r = q < 0 ? p : 1 - p;
  r = std::sqrt(-std::log(r));
  if (r <= 5.0) {
    r -= 1.6;
    val = (((((((r * 7.7454501427834140764e-4 + 0.0227238449892691845833) * r +
                0.24178072517745061177) * r + 1.27045825245236838258) * r +
              3.64784832476320460504) * r + 5.7694972214606914055) * r +
            4.6303378461565452959) * r + 1.42343711074968357734) /
          (((((((r * 1.05075007164441684324e-9 + 5.475938084995344946e-4) * r +
                0.0151986665636164571966) * r + 0.14810397642748007459) * r +
              0.68976733498510000455) * r + 1.6763848301838038494) * r +
            2.05319162663775882187) * r + 1.0);
  } else {
    r -= 5.0;
    val = (((((((r * 2.01033439929228813265e-7 + 2.71155556874348757815e-5) * r +
                0.0012426609473880784386) * r + 0.026532189526576123093) * r +
              0.29656057182850489123) * r + 1.7848265399172913358) * r +
            5.4637849111641143699) * r + 6.6579046435011037772) /
          (((((((r * 2.04426310338993978564e-15 + 1.4215117583164458887e-7) * r +
                1.8463183175100546818e-5) * r + 7.868691311456132591e-4) * r +
              0.0148753612908506148525) * r + 0.13692988092273580531) * r +
            0.59983220655588793769) * r + 1.0);
  }
  return q < 0 ? -val : val;
}

double PnormUpper(double z) { return 0.5 * std::erfc(z / std::sqrt(2.0)); }

double TwoSidedNormalP(double z) {
  if (std::isnan(z)) return z;
  return std::erfc(std::fabs(z) / std::sqrt(2.0));
}

double ChisqUpper(double x, double df) {
  if (std::isnan(x) || std::isnan(df) || df <= 0) return std::numeric_limits<double>::quiet_NaN();
  if (x <= 0) return 1.0;
  if (std::isinf(x)) return 0.0;
  const double a = df / 2.0;
  const double h = x / 2.0;
  if (df == 1.0) return std::erfc(std::sqrt(h));
  if (h < a + 1.0) return 1.0 - GammaPSeries(a, h);
  return GammaQContinuedFraction(a, h);
}

int Cholesky2(Matrix& m, double toler) {
  const int n = m.n;
  int nonneg = 1;
  double eps = 0;
  for (int i = 0; i < n; ++i) {
    if (m(i, i) > eps) eps = m(i, i);
    for (int j = i + 1; j < n; ++j) m(j, i) = m(i, j);
  }
  eps = eps == 0 ? toler : eps * toler;
  int rank = 0;
  for (int i = 0; i < n; ++i) {
    const double pivot = m(i, i);
    if (!std::isfinite(pivot) || pivot < eps) {
      m(i, i) = 0;
      if (pivot < -8 * eps) nonneg = -1;
    } else {
      ++rank;
      for (int j = i + 1; j < n; ++j) {
        const double temp = m(j, i) / pivot;
        m(j, i) = temp;
        m(j, j) -= temp * temp * pivot;
        for (int k = j + 1; k < n; ++k) m(k, j) -= temp * m(k, i);
      }
    }
  }
  return rank * nonneg;
}

void Chsolve2(const Matrix& m, std::vector<double>& y) {
  const int n = m.n;
  for (int i = 0; i < n; ++i) {
    double temp = y[i];
    for (int j = 0; j < i; ++j) temp -= y[j] * m(i, j);
    y[i] = temp;
  }
  for (int i = n - 1; i >= 0; --i) {
    if (m(i, i) == 0) {
      y[i] = 0;
    } else {
      double temp = y[i] / m(i, i);
      for (int j = i + 1; j < n; ++j) temp -= y[j] * m(j, i);
      y[i] = temp;
    }
  }
}

void Chinv2(Matrix& m) {
  const int n = m.n;
  for (int i = 0; i < n; ++i) {
    if (m(i, i) > 0) {
      m(i, i) = 1 / m(i, i);
      for (int j = i + 1; j < n; ++j) {
        m(j, i) = -m(j, i);
        for (int k = 0; k < i; ++k) m(j, k) += m(j, i) * m(i, k);
      }
    }
  }
  for (int i = 0; i < n; ++i) {
    if (m(i, i) == 0) {
      for (int j = 0; j < i; ++j) m(j, i) = 0;
      for (int j = i; j < n; ++j) m(i, j) = 0;
    } else {
      for (int j = i + 1; j < n; ++j) {
        const double temp = m(j, i) * m(j, j);
        if (j != i) m(i, j) = temp;
        for (int k = i; k < j; ++k) m(i, k) += temp * m(j, k);
      }
    }
  }
  // The inverse is in the upper triangle; mirror it.
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < i; ++j) m(i, j) = m(j, i);
}

double WaldQuadForm(const Matrix& var, const std::vector<double>& b, double toler, int* df) {
  Matrix m = var;
  Cholesky2(m, toler);
  int rank = 0;
  for (int i = 0; i < m.n; ++i)
    if (m(i, i) != 0) ++rank;
  std::vector<double> solve = b;
  Chsolve2(m, solve);
  double sum = 0;
  for (size_t i = 0; i < b.size(); ++i) sum += b[i] * solve[i];
  if (df != nullptr) *df = rank;
  return sum;
}

double Quantile7(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return std::numeric_limits<double>::quiet_NaN();
  const double h = (sorted.size() - 1) * p;
  const size_t lo = static_cast<size_t>(std::floor(h));
  const size_t hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (h - lo) * (sorted[hi] - sorted[lo]);
}

}  // namespace medkoord::survival
