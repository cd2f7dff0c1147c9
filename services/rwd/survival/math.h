#pragma once
// Numerical helpers that reproduce R's own routines, so that the survival
// statistics agree with R to the last few bits: qnorm (Wichura AS241, as R's
// qnorm.c), normal and chi-square tail probabilities, and the LDL' Cholesky
// routines of the survival package (cholesky2/chsolve2/chinv2) with their
// rank tolerance, which decide singular columns exactly as coxph does.

#include <cstddef>
#include <vector>

namespace medkoord::survival {

// A dense symmetric matrix stored row-major, n x n.
struct Matrix {
  int n = 0;
  std::vector<double> v;
  Matrix() = default;
  explicit Matrix(int size) : n(size), v(static_cast<size_t>(size) * size, 0.0) {}
  double& operator()(int i, int j) { return v[static_cast<size_t>(i) * n + j]; }
  double operator()(int i, int j) const { return v[static_cast<size_t>(i) * n + j]; }
};

// Standard normal quantile (R's qnorm(p)).
double Qnorm(double p);
// Upper tail of the standard normal, P(Z > z).
double PnormUpper(double z);
// Two-sided normal p-value, 2 P(Z > |z|) as R's summary.coxph computes it.
double TwoSidedNormalP(double z);
// Upper tail of the chi-square distribution, pchisq(x, df, lower=FALSE).
double ChisqUpper(double x, double df);

// survival's cholesky2: LDL' decomposition in place, using the upper triangle
// of `m` as input. Returns rank (negated if the matrix is not non-negative
// definite). Pivots below toler * max(diag) are zeroed (singular columns).
int Cholesky2(Matrix& m, double toler);
// survival's chsolve2: solves using the decomposition, in place on y.
void Chsolve2(const Matrix& m, std::vector<double>& y);
// survival's chinv2: turns the decomposition into the inverse (full matrix).
void Chinv2(Matrix& m);

// Generalised quadratic form b' V^- b as survival's coxph.wtest computes it
// (Cholesky with toler; singular directions are dropped). `df` receives the
// rank used.
double WaldQuadForm(const Matrix& var, const std::vector<double>& b, double toler,
                    int* df = nullptr);

// Quantile of sorted data, R's default type 7.
double Quantile7(const std::vector<double>& sorted, double p);

}  // namespace medkoord::survival
