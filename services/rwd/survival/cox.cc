#include "services/rwd/survival/cox.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "absl/status/status.h"

namespace medkoord::survival {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Data sorted by ascending time, covariates row-major (subject-major) after
// centring and scaling, with the scratch space of coxfit6.
struct CoxWork {
  int nvar = 0;
  size_t n = 0;
  std::vector<double> time, w;
  std::vector<int> status;
  std::vector<double> x;  // n * nvar
  std::vector<double> u, a, a2;
  Matrix imat, cmat, cmat2;
};

// One evaluation of the log partial likelihood, its score u and information
// imat (upper triangle), exactly in the order of coxfit6_iter: from the
// largest time down, tied times together, Efron terms added 1/d at a time.
double CoxIterate(CoxWork& wk, bool efron, const std::vector<double>& beta) {
  const int nvar = wk.nvar;
  // Raw pointers: the accumulation is the inner loop of every fit.
  double* __restrict u = wk.u.data();
  double* __restrict a = wk.a.data();
  double* __restrict a2 = wk.a2.data();
  double* __restrict imat = wk.imat.v.data();
  double* __restrict cmat = wk.cmat.v.data();
  double* __restrict cmat2 = wk.cmat2.v.data();
  const double* __restrict b = beta.data();
  const size_t nn = static_cast<size_t>(nvar) * nvar;
  std::fill(u, u + nvar, 0.0);
  std::fill(a2, a2 + nvar, 0.0);
  std::fill(imat, imat + nn, 0.0);
  std::fill(cmat2, cmat2 + nn, 0.0);
  std::fill(a, a + nvar, 0.0);
  std::fill(cmat, cmat + nn, 0.0);
  double loglik = 0, denom = 0;
  long person = static_cast<long>(wk.n) - 1;
  while (person >= 0) {
    const double dtime = wk.time[person];
    int ndead = 0;
    double deadwt = 0, denom2 = 0;
    while (person >= 0 && wk.time[person] == dtime) {
      const double* __restrict xp = &wk.x[static_cast<size_t>(person) * nvar];
      double zbeta = 0;
      for (int i = 0; i < nvar; ++i) zbeta += b[i] * xp[i];
      const double w = wk.w[person];
      const double risk = std::exp(zbeta) * w;
      if (wk.status[person] == 0) {
        denom += risk;
        for (int i = 0; i < nvar; ++i) {
          a[i] += risk * xp[i];
          double* __restrict ci = cmat + static_cast<size_t>(i) * nvar;
          for (int j = 0; j <= i; ++j) ci[j] += risk * xp[i] * xp[j];
        }
      } else {
        ++ndead;
        deadwt += w;
        denom2 += risk;
        loglik += w * zbeta;
        for (int i = 0; i < nvar; ++i) {
          u[i] += w * xp[i];
          a2[i] += risk * xp[i];
          double* __restrict ci = cmat2 + static_cast<size_t>(i) * nvar;
          for (int j = 0; j <= i; ++j) ci[j] += risk * xp[i] * xp[j];
        }
      }
      --person;
    }
    if (ndead > 0) {
      if (!efron || ndead == 1) {
        denom += denom2;
        loglik -= deadwt * std::log(denom);
        for (int i = 0; i < nvar; ++i) {
          a[i] += a2[i];
          const double temp2 = a[i] / denom;
          u[i] -= deadwt * temp2;
          for (int j = 0; j <= i; ++j) {
            cmat[i * nvar + j] += cmat2[i * nvar + j];
            imat[j * nvar + i] += deadwt * (cmat[i * nvar + j] - temp2 * a[j]) / denom;
          }
        }
      } else {
        const double wtave = deadwt / ndead;
        // The log-likelihood and score follow coxfit6 operation by
        // operation; the information (used for the step and the variance
        // only) multiplies by reciprocals, the Efron loop being O(d p^2).
        const double inv_ndead = 1.0 / ndead;
        for (int k = 0; k < ndead; ++k) {
          denom += denom2 / ndead;
          loglik -= wtave * std::log(denom);
          const double w_over_denom = wtave / denom;
          for (int i = 0; i < nvar; ++i) {
            a[i] += a2[i] / ndead;
            const double temp2 = a[i] / denom;
            u[i] -= wtave * temp2;
            double* __restrict ci = cmat + static_cast<size_t>(i) * nvar;
            const double* __restrict c2 = cmat2 + static_cast<size_t>(i) * nvar;
            for (int j = 0; j <= i; ++j) {
              ci[j] += c2[j] * inv_ndead;
              imat[j * nvar + i] += w_over_denom * (ci[j] - temp2 * a[j]);
            }
          }
        }
      }
      std::fill(a2, a2 + nvar, 0.0);
      std::fill(cmat2, cmat2 + nn, 0.0);
    }
  }
  return loglik;
}

// Score residuals (coxscore2) in O(n p): the hazard terms of each death time
// are accumulated once and applied to every subject through running sums.
// Rows are in the sorted order of `time`; x is row-major, any centring.
std::vector<double> ScoreResiduals(const std::vector<double>& time, const std::vector<int>& status,
                                   const std::vector<double>& w, const std::vector<double>& x,
                                   const std::vector<double>& score, int nvar, bool efron) {
  const size_t n = time.size();
  std::vector<size_t> gstart;
  for (size_t i = 0; i < n; ++i)
    if (i == 0 || time[i] != time[i - 1]) gstart.push_back(i);
  const size_t ng = gstart.size();
  gstart.push_back(n);
  // Per group: total hazard, hazard for its own deaths, and the x-weighted
  // versions, plus the average mean used for the deaths' own term.
  std::vector<double> hfull(ng, 0), hdead(ng, 0);
  std::vector<double> hxfull(ng * nvar, 0), hxdead(ng * nvar, 0), meanavg(ng * nvar, 0);
  std::vector<double> a(nvar, 0), a2(nvar, 0), mean(nvar);
  double denom = 0;
  for (size_t g = ng; g-- > 0;) {
    double e_denom = 0, meanwt = 0;
    int deaths = 0;
    std::fill(a2.begin(), a2.end(), 0.0);
    for (size_t i = gstart[g]; i < gstart[g + 1]; ++i) {
      const double risk = score[i] * w[i];
      denom += risk;
      const double* xi = &x[i * nvar];
      for (int j = 0; j < nvar; ++j) a[j] += risk * xi[j];
      if (status[i] == 1) {
        ++deaths;
        e_denom += risk;
        meanwt += w[i];
        for (int j = 0; j < nvar; ++j) a2[j] += risk * xi[j];
      }
    }
    if (deaths == 0) continue;
    if (deaths < 2 || !efron) {
      const double hazard = meanwt / denom;
      hfull[g] = hazard;
      hdead[g] = hazard;
      for (int j = 0; j < nvar; ++j) {
        const double m = a[j] / denom;
        hxfull[g * nvar + j] = hazard * m;
        hxdead[g * nvar + j] = hazard * m;
        meanavg[g * nvar + j] = m;
      }
    } else {
      meanwt /= deaths;
      for (int dd = 0; dd < deaths; ++dd) {
        const double downwt = static_cast<double>(dd) / deaths;
        const double temp = denom - downwt * e_denom;
        const double hazard = meanwt / temp;
        hfull[g] += hazard;
        hdead[g] += hazard * (1 - downwt);
        for (int j = 0; j < nvar; ++j) {
          const double m = (a[j] - downwt * a2[j]) / temp;
          hxfull[g * nvar + j] += hazard * m;
          hxdead[g * nvar + j] += hazard * (1 - downwt) * m;
          meanavg[g * nvar + j] += m / deaths;
        }
      }
    }
  }
  std::vector<double> resid(n * nvar, 0);
  double cum_h = 0;
  std::vector<double> cum_hx(nvar, 0);
  for (size_t g = 0; g < ng; ++g) {
    for (size_t i = gstart[g]; i < gstart[g + 1]; ++i) {
      const double* xi = &x[i * nvar];
      double* ri = &resid[i * nvar];
      if (status[i] == 1) {
        for (int j = 0; j < nvar; ++j) {
          ri[j] = (xi[j] - meanavg[g * nvar + j]) -
                  score[i] * (xi[j] * (cum_h + hdead[g]) - (cum_hx[j] + hxdead[g * nvar + j]));
        }
      } else {
        for (int j = 0; j < nvar; ++j) {
          ri[j] = -score[i] * (xi[j] * (cum_h + hfull[g]) - (cum_hx[j] + hxfull[g * nvar + j]));
        }
      }
    }
    cum_h += hfull[g];
    for (int j = 0; j < nvar; ++j) cum_hx[j] += hxfull[g * nvar + j];
  }
  return resid;
}

// Prefix sums of weights over ranks for the concordance: a Fenwick tree over
// blocks of 32 ranks (small enough to stay in cache) plus the weights of the
// single ranks, summed within the block. With a million distinct scores a
// plain Fenwick tree spends its time in cache misses.
class Fenwick {
 public:
  static constexpr size_t kBlock = 32;
  explicit Fenwick(size_t n) : blocks_(n / kBlock + 2, 0.0), cells_(n) {}
  void Add(size_t i, double v) {
    cells_[i].point += v;
    // Running sums within the block: a short loop over adjacent memory here
    // keeps Prefix (called about three times as often) to two lookups.
    const size_t end = std::min(cells_.size(), (i / kBlock + 1) * kBlock);
    for (size_t r = i; r < end; ++r) cells_[r].cum += v;
    for (size_t b = i / kBlock + 1; b < blocks_.size(); b += b & (~b + 1)) blocks_[b] += v;
  }
  // Weight at rank i alone.
  double At(size_t i) const { return cells_[i].point; }
  // Sum over ranks [0, i).
  double Prefix(size_t i) const {
    double s = 0;
    for (size_t b = i / kBlock; b > 0; b -= b & (~b + 1)) s += blocks_[b];
    if (i % kBlock != 0) s += cells_[i - 1].cum;
    return s;
  }

 private:
  // The weight of a rank and the sum from its block start, side by side so
  // that a query touches one cache line.
  struct Cell {
    double point = 0, cum = 0;
  };
  std::vector<double> blocks_;  // Fenwick over whole blocks, 1-based
  std::vector<Cell> cells_;
};

TestStat MakeTest(double stat, int df) {
  TestStat t;
  t.stat = stat;
  t.df = df;
  t.p = df > 0 ? ChisqUpper(stat, df) : 1.0;
  return t;
}

}  // namespace

namespace {

// The concordance on subjects already in ascending time order.
Concordance ConcordanceSorted(const std::vector<double>& time, const std::vector<int>& event,
                              const std::vector<double>& weight, const std::vector<double>& risk) {
  const size_t n = time.size();
  auto wt = [&](size_t i) { return weight[i]; };
  // Rank of each risk score among the distinct scores (exact ties share one).
  std::vector<uint32_t> rank(n);
  size_t nrank = 0;
  {
    const std::vector<uint32_t> by_risk = RadixOrder(risk);
    for (size_t k = 0; k < n; ++k) {
      if (k > 0 && risk[by_risk[k]] != risk[by_risk[k - 1]]) ++nrank;
      rank[by_risk[k]] = static_cast<uint32_t>(nrank);
    }
    if (n > 0) ++nrank;
  }
  std::vector<size_t> gstart;
  for (size_t k = 0; k < n; ++k)
    if (k == 0 || time[k] != time[k - 1]) gstart.push_back(k);
  const size_t ng = gstart.size();
  gstart.push_back(n);

  // Per-subject weighted counts of the pairs it belongs to (R's influence
  // matrix): concordant, discordant, tied on x, tied on y, tied on both.
  std::vector<double> conc(n, 0), disc(n, 0), tiex(n, 0), tiey(n, 0), tiexy(n, 0);
  Concordance c;
  // Role 1: the subject has the event; comparable partners have a later time
  // or are censored at the same time.
  {
    Fenwick tree(nrank);
    double total = 0;
    for (size_t g = ng; g-- > 0;) {
      for (size_t k = gstart[g]; k < gstart[g + 1]; ++k) {
        const size_t i = k;
        if (!event[i]) {
          tree.Add(rank[i], wt(i));
          total += wt(i);
        }
      }
      // Deaths at this time, grouped by rank, for the tied-on-y pairs.
      std::vector<std::pair<size_t, size_t>> dead;  // (rank, subject)
      double dead_total = 0;
      for (size_t k = gstart[g]; k < gstart[g + 1]; ++k) {
        const size_t i = k;
        if (!event[i]) continue;
        const double less = tree.Prefix(rank[i]);
        const double upto = less + tree.At(rank[i]);
        conc[i] += less;
        disc[i] += total - upto;
        tiex[i] += upto - less;
        c.concordant += wt(i) * less;
        c.discordant += wt(i) * (total - upto);
        c.tied_x += wt(i) * (upto - less);
        dead.emplace_back(rank[i], i);
        dead_total += wt(i);
      }
      if (dead.size() > 1) {
        std::sort(dead.begin(), dead.end());
        for (size_t s = 0; s < dead.size();) {
          size_t e = s;
          double same = 0;
          while (e < dead.size() && dead[e].first == dead[s].first) same += wt(dead[e++].second);
          for (size_t q = s; q < e; ++q) {
            const size_t i = dead[q].second;
            tiexy[i] += same - wt(i);
            tiey[i] += dead_total - same;
            c.tied_xy += wt(i) * (same - wt(i)) / 2;
            c.tied_y += wt(i) * (dead_total - same) / 2;
          }
          s = e;
        }
      }
      for (const auto& [r, i] : dead) {
        tree.Add(r, wt(i));
        total += wt(i);
      }
    }
  }
  // Role 2: the subject is the longer-lived partner of an earlier event.
  {
    Fenwick tree(nrank);
    double total = 0;
    auto query = [&](size_t j) {
      const double less = tree.Prefix(rank[j]);
      const double upto = less + tree.At(rank[j]);
      // The earlier death had the higher risk: concordant.
      conc[j] += total - upto;
      disc[j] += less;
      tiex[j] += upto - less;
    };
    for (size_t g = 0; g < ng; ++g) {
      for (size_t k = gstart[g]; k < gstart[g + 1]; ++k)
        if (event[k]) query(k);
      for (size_t k = gstart[g]; k < gstart[g + 1]; ++k) {
        const size_t i = k;
        if (event[i]) {
          tree.Add(rank[i], wt(i));
          total += wt(i);
        }
      }
      for (size_t k = gstart[g]; k < gstart[g + 1]; ++k)
        if (!event[k]) query(k);
    }
  }
  const double npair = c.concordant + c.discordant + c.tied_x;
  const double somer = (c.concordant - c.discordant) / npair;
  double var = 0;
  for (size_t i = 0; i < n; ++i) {
    const double d = wt(i) * ((conc[i] - disc[i]) / npair - (somer / npair) * (conc[i] + disc[i] + tiex[i]));
    var += d * d;
  }
  c.concordance = (somer + 1) / 2;
  c.std = std::sqrt(var / 4);
  return c;
}

}  // namespace

Concordance CoxConcordance(const std::vector<double>& time, const std::vector<int>& event,
                           const std::vector<double>& weight, const std::vector<double>& risk) {
  const std::vector<uint32_t> order = TimeOrder(time);
  const size_t n = time.size();
  std::vector<double> t(n), w(n), r(n);
  std::vector<int> e(n);
  for (size_t k = 0; k < n; ++k) {
    const size_t i = order[k];
    t[k] = time[i];
    e[k] = event[i];
    w[k] = weight.empty() ? 1.0 : weight[i];
    r[k] = risk[i];
  }
  return ConcordanceSorted(t, e, w, r);
}

absl::StatusOr<CoxFit> FitCox(const SurvivalData& data, const CoxDesign& design,
                              const CoxOptions& options) {
  const size_t n = data.size();
  const int nvar = static_cast<int>(design.x.size());
  if (nvar == 0) return absl::InvalidArgumentError("a Cox model needs at least one covariate");
  if (design.names.size() != design.x.size())
    return absl::InvalidArgumentError("covariate names and columns differ in number");
  if (data.event.size() != n || (!data.weight.empty() && data.weight.size() != n))
    return absl::InvalidArgumentError("survival data vectors differ in length");
  for (const auto& col : design.x)
    if (col.size() != n) return absl::InvalidArgumentError("covariate column length differs");
  if (n == 0) return absl::InvalidArgumentError("no observations");
  for (size_t i = 0; i < n; ++i) {
    if (!std::isfinite(data.time[i])) return absl::InvalidArgumentError("non-finite time");
    if (!(data.w(i) > 0)) return absl::InvalidArgumentError("weights must be > 0");
    for (int j = 0; j < nvar; ++j)
      if (!std::isfinite(design.x[j][i])) return absl::InvalidArgumentError("non-finite covariate");
  }
  const std::vector<uint32_t> order = TimeOrder(data.time);

  CoxWork wk;
  wk.nvar = nvar;
  wk.n = n;
  wk.time.resize(n);
  wk.w.resize(n);
  wk.status.resize(n);
  wk.x.resize(n * nvar);
  CoxFit fit;
  fit.ties = options.ties;
  fit.n = static_cast<int64_t>(n);
  double sumw = 0;
  for (size_t k = 0; k < n; ++k) {
    const size_t i = order[k];
    wk.time[k] = data.time[i];
    wk.w[k] = data.w(i);
    wk.status[k] = data.event[i] != 0 ? 1 : 0;
    sumw += wk.w[k];
    if (wk.status[k]) {
      fit.nevent += 1;
      fit.weighted_nevent += wk.w[k];
    }
  }
  if (options.timefix) AeqSurvSorted(wk.time);
  // Centre at the weighted mean and scale by sum(w)/sum(w|x - mean|), except
  // columns with values only in {-1, 0, 1} (coxph's nocenter default). Done
  // on the contiguous columns, written into rows (sequential), then one
  // gather of whole rows into time order.
  std::vector<double> means(nvar, 0), scale(nvar, 1);
  {
    std::vector<double> rows(n * nvar);
    for (int j = 0; j < nvar; ++j) {
      const double* col = design.x[j].data();
      bool zero_one = true;
      for (size_t i = 0; i < n && zero_one; ++i) zero_one = col[i] == -1 || col[i] == 0 || col[i] == 1;
      if (zero_one) {
        for (size_t i = 0; i < n; ++i) rows[i * nvar + j] = col[i];
        continue;
      }
      double m = 0;
      for (size_t i = 0; i < n; ++i) m += data.w(i) * col[i];
      m /= sumw;
      double sabs = 0;
      for (size_t i = 0; i < n; ++i) sabs += data.w(i) * std::fabs(col[i] - m);
      const double sc = sabs > 0 ? sumw / sabs : 1.0;
      means[j] = m;
      scale[j] = sc;
      for (size_t i = 0; i < n; ++i) rows[i * nvar + j] = (col[i] - m) * sc;
    }
    for (size_t k = 0; k < n; ++k)
      std::copy_n(&rows[static_cast<size_t>(order[k]) * nvar], nvar, &wk.x[k * nvar]);
  }
  wk.u.assign(nvar, 0);
  wk.a.assign(nvar, 0);
  wk.a2.assign(nvar, 0);
  wk.imat = Matrix(nvar);
  wk.cmat = Matrix(nvar);
  wk.cmat2 = Matrix(nvar);
  const bool efron = options.ties == Ties::kEfron;

  std::vector<double> beta(nvar, 0), newbeta(nvar, 0);
  fit.loglik_null = CoxIterate(wk, efron, beta);
  double best = fit.loglik_null;
  std::vector<double> step = wk.u;
  fit.flag = Cholesky2(wk.imat, options.toler_chol);
  Chsolve2(wk.imat, step);
  double sctest = 0;
  for (int i = 0; i < nvar; ++i) sctest += wk.u[i] * step[i];
  for (int i = 0; i < nvar; ++i) newbeta[i] = beta[i] + step[i];
  int halving = 0;
  bool done = false;
  int iter = 0;
  for (iter = 1; iter <= options.iter_max; ++iter) {
    const double newlk = CoxIterate(wk, efron, newbeta);
    fit.flag = Cholesky2(wk.imat, options.toler_chol);
    bool notfinite = !std::isfinite(newlk);
    for (int i = 0; i < nvar; ++i) {
      if (!std::isfinite(wk.u[i])) notfinite = true;
      for (int j = 0; j < nvar; ++j)
        if (!std::isfinite(wk.imat(i, j))) notfinite = true;
    }
    if (!notfinite && std::fabs(1 - best / newlk) <= options.eps) {
      fit.loglik = newlk;
      beta = newbeta;
      done = true;
      break;
    }
    if (notfinite || newlk < best) {
      ++halving;
      for (int i = 0; i < nvar; ++i) newbeta[i] = (newbeta[i] + halving * beta[i]) / (halving + 1.0);
    } else {
      halving = 0;
      best = newlk;
      Chsolve2(wk.imat, wk.u);
      for (int i = 0; i < nvar; ++i) {
        beta[i] = newbeta[i];
        newbeta[i] = newbeta[i] + wk.u[i];
      }
    }
  }
  if (!done) {
    // As coxfit6: iter ends at iter_max + 1, and the information at the last
    // good beta is inverted by chinv2 without a fresh decomposition.
    iter = options.iter_max + 1;
    if (options.iter_max > 1) {
      fit.loglik = CoxIterate(wk, efron, beta);
    } else {
      fit.loglik = best;
    }
    fit.flag = 1000;
    fit.converged = false;
  }
  fit.iter = iter;
  Chinv2(wk.imat);
  fit.var = Matrix(nvar);
  std::vector<double> coef(nvar);
  for (int i = 0; i < nvar; ++i) {
    coef[i] = beta[i] * scale[i];
    for (int j = 0; j < nvar; ++j) fit.var(i, j) = wk.imat(i, j) * scale[i] * scale[j];
  }
  std::vector<bool> singular(nvar, false);
  if (fit.flag < nvar)
    for (int i = 0; i < nvar; ++i) singular[i] = fit.var(i, i) == 0;

  // Linear predictor as R's coxph.fit: x'beta - sum(beta * means).
  fit.linear_predictor.assign(n, 0);
  double offset = 0;
  for (int j = 0; j < nvar; ++j) offset += coef[j] * means[j];
  for (size_t i = 0; i < n; ++i) {
    double lp = 0;
    for (int j = 0; j < nvar; ++j) lp += design.x[j][i] * coef[j];
    fit.linear_predictor[i] = lp - offset;
  }

  // Coefficients that are not singular.
  std::vector<int> ok;
  for (int i = 0; i < nvar; ++i)
    if (!singular[i]) ok.push_back(i);
  const int df = static_cast<int>(ok.size());
  auto sub_matrix = [&](const Matrix& m) {
    Matrix s(df);
    for (int a = 0; a < df; ++a)
      for (int b = 0; b < df; ++b) s(a, b) = m(ok[a], ok[b]);
    return s;
  };
  std::vector<double> coef_ok(df);
  for (int a = 0; a < df; ++a) coef_ok[a] = coef[ok[a]];
  fit.lr_test = MakeTest(2 * (fit.loglik - fit.loglik_null), df);
  fit.score_test = MakeTest(sctest, df);
  fit.wald_test = MakeTest(WaldQuadForm(sub_matrix(fit.var), coef_ok, options.toler_chol), df);

  if (options.robust) {
    // Sorted-order data with covariates centred (not scaled) at `means`.
    std::vector<double> xc(n * nvar), score(n), score0(n, 1.0);
    for (size_t k = 0; k < n; ++k) {
      const size_t i = order[k];
      for (int j = 0; j < nvar; ++j) xc[k * nvar + j] = design.x[j][i] - means[j];
      score[k] = std::exp(fit.linear_predictor[i]);
    }
    std::vector<double> beta_used = coef;
    for (int j = 0; j < nvar; ++j)
      if (singular[j]) beta_used[j] = 0;
    const std::vector<double> resid = ScoreResiduals(wk.time, wk.status, wk.w, xc, score, nvar, efron);
    // dfbeta = w * resid %*% var; robust var = dfbeta' dfbeta.
    fit.robust_var = Matrix(nvar);
    std::vector<double> d(nvar);
    for (size_t k = 0; k < n; ++k) {
      for (int a = 0; a < nvar; ++a) {
        double s = 0;
        for (int b = 0; b < nvar; ++b) s += resid[k * nvar + b] * fit.var(b, a);
        d[a] = s * wk.w[k];
      }
      for (int a = 0; a < nvar; ++a)
        for (int b = 0; b < nvar; ++b) fit.robust_var(a, b) += d[a] * d[b];
    }
    const std::vector<double> resid0 =
        ScoreResiduals(wk.time, wk.status, wk.w, xc, score0, nvar, efron);
    Matrix s0(nvar);
    std::vector<double> u0(nvar, 0);
    for (size_t k = 0; k < n; ++k) {
      for (int a = 0; a < nvar; ++a) {
        const double ra = resid0[k * nvar + a] * wk.w[k];
        u0[a] += ra;
        for (int b = 0; b < nvar; ++b) s0(a, b) += ra * resid0[k * nvar + b] * wk.w[k];
      }
    }
    int rdf = 0;
    const double rscore = WaldQuadForm(s0, u0, options.toler_chol, &rdf);
    fit.robust_score_test = MakeTest(rscore, df);
    fit.robust_wald_test =
        MakeTest(WaldQuadForm(sub_matrix(fit.robust_var), coef_ok, options.toler_chol), df);
    fit.has_robust = true;
  }

  const double z = Qnorm(1 - (1 - options.conf_int) / 2);
  for (int j = 0; j < nvar; ++j) {
    CoxTerm t;
    t.name = design.names[j];
    t.mean = means[j];
    t.singular = singular[j];
    if (singular[j]) {
      t.coef = t.se = t.z = t.p = t.hr = t.hr_lower = t.hr_upper = kNaN;
      t.robust_se = t.robust_z = t.robust_p = t.robust_hr_lower = t.robust_hr_upper = kNaN;
    } else {
      t.coef = coef[j];
      t.se = std::sqrt(fit.var(j, j));
      t.z = t.coef / t.se;
      t.p = TwoSidedNormalP(t.z);
      t.hr = std::exp(t.coef);
      t.hr_lower = std::exp(t.coef - z * t.se);
      t.hr_upper = std::exp(t.coef + z * t.se);
      if (fit.has_robust) {
        t.robust_se = std::sqrt(fit.robust_var(j, j));
        t.robust_z = t.coef / t.robust_se;
        t.robust_p = TwoSidedNormalP(t.robust_z);
        t.robust_hr_lower = std::exp(t.coef - z * t.robust_se);
        t.robust_hr_upper = std::exp(t.coef + z * t.robust_se);
      }
    }
    fit.terms.push_back(t);
  }
  if (options.concordance) {
    std::vector<double> risk(n);
    for (size_t k = 0; k < n; ++k) risk[k] = fit.linear_predictor[order[k]];
    fit.concordance = ConcordanceSorted(wk.time, wk.status, wk.w, risk);
  }
  return fit;
}

}  // namespace medkoord::survival
