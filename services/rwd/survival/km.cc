#include "services/rwd/survival/km.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <unordered_set>

#include "absl/status/status.h"
#include "services/rwd/survival/math.h"

namespace medkoord::survival {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
const double kTol = std::sqrt(std::numeric_limits<double>::epsilon());

// R's approx(x, y, v, method="constant", f=1, rule=1) after NA pairs are
// removed and x is ordered: the y of the right end of the interval holding v.
// `pts` must be ordered by x (see SortByX).
std::optional<double> ApproxConstantRight(const std::vector<std::pair<double, double>>& pts, double v) {
  if (pts.empty()) return std::nullopt;
  const size_t n = pts.size();
  if (v < pts.front().first || v > pts.back().first) return std::nullopt;
  if (n == 1) return pts[0].second;
  size_t i = 0, j = n - 1;
  while (i < j - 1) {
    const size_t ij = (i + j) / 2;
    if (v < pts[ij].first) {
      j = ij;
    } else {
      i = ij;
    }
  }
  if (v == pts[j].first) return pts[j].second;
  if (v == pts[i].first) return pts[i].second;
  return pts[j].second;
}

void SortByX(std::vector<std::pair<double, double>>& pts) {
  if (std::is_sorted(pts.begin(), pts.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; }))
    return;
  std::stable_sort(pts.begin(), pts.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
}

bool IsNonInteger(double w) { return w != std::floor(w); }

std::pair<std::optional<double>, std::optional<double>> ConfLimits(ConfType type, double s,
                                                                   double std_err, bool logse,
                                                                   double z) {
  switch (type) {
    case ConfType::kPlain: {
      const double se2 = logse ? z * std_err * s : z * std_err;
      if (std::isnan(se2)) return {std::nullopt, std::nullopt};
      return {std::max(s - se2, 0.0), std::min(s + se2, 1.0)};
    }
    case ConfType::kLog: {
      if (s == 0 || std::isnan(s)) return {std::nullopt, std::nullopt};
      const double se2 = logse ? z * std_err : z * std_err / s;
      const double lo = std::exp(std::log(s) - se2);
      const double hi = std::exp(std::log(s) + se2);
      if (std::isnan(lo)) return {std::nullopt, std::nullopt};
      return {lo, std::min(hi, 1.0)};
    }
    case ConfType::kLogLog: {
      if (s == 0 || s == 1 || std::isnan(s)) return {std::nullopt, std::nullopt};
      const double se2 = logse ? z * std_err / std::log(s) : z * std_err / (s * std::log(s));
      const double lo = std::exp(-std::exp(std::log(-std::log(s)) - se2));
      const double hi = std::exp(-std::exp(std::log(-std::log(s)) + se2));
      if (std::isnan(lo)) return {std::nullopt, std::nullopt};
      return {lo, hi};
    }
  }
  return {std::nullopt, std::nullopt};
}

struct Obs {
  double time;
  int event;
  double w;
};

// One curve from subjects already sorted by time.
KmCurve FitCurve(const std::vector<Obs>& obs, bool robust, ConfType conf_type, double z) {
  KmCurve c;
  c.n = static_cast<int64_t>(obs.size());
  const size_t n = obs.size();
  // Distinct times with weighted counts.
  std::vector<size_t> start;  // first obs index of each distinct time
  for (size_t i = 0; i < n; ++i) {
    if (i == 0 || obs[i].time != obs[i - 1].time) {
      start.push_back(i);
      c.time.push_back(obs[i].time);
      c.n_event.push_back(0);
      c.n_censor.push_back(0);
    }
    if (obs[i].event) {
      c.n_event.back() += obs[i].w;
    } else {
      c.n_censor.back() += obs[i].w;
    }
  }
  const size_t nt = c.time.size();
  c.n_risk.assign(nt, 0);
  {
    double cum = 0;
    size_t k = nt;
    for (size_t i = n; i-- > 0;) {
      cum += obs[i].w;
      if (k > 0 && i == start[k - 1]) {
        c.n_risk[k - 1] = cum;
        --k;
      }
    }
  }
  c.surv.resize(nt);
  c.std_err.resize(nt);
  c.cumhaz.resize(nt);
  c.std_chaz.resize(nt);
  double km = 1, greenwood = 0, chaz = 0, vchaz = 0;
  std::vector<double> a_cum(nt), b_cum(nt);  // for the jackknife
  double a = 0, b = 0;
  for (size_t k = 0; k < nt; ++k) {
    const double d = c.n_event[k], r = c.n_risk[k];
    if (d > 0) {
      chaz += d / r;
      vchaz += d / (r * r);
      km *= (r - d) / r;
      greenwood += d / (r * (r - d));
      a += d / (r * (r - d));
      b += d / (r * r);
    }
    a_cum[k] = a;
    b_cum[k] = b;
    c.surv[k] = km;
    c.cumhaz[k] = chaz;
    c.std_err[k] = std::sqrt(greenwood);
    c.std_chaz[k] = std::sqrt(vchaz);
    c.events += d;
  }
  if (robust) {
    // Infinitesimal jackknife: the derivative of S(t) and Lambda(t) with
    // respect to each case weight. A subject still at risk after t has the
    // same influence A(t) (resp. -B(t)); one whose time is <= t has a fixed
    // influence, so both sums are accumulated in one pass over time.
    double w2_after = 0;
    for (size_t i = 0; i < n; ++i) w2_after += obs[i].w * obs[i].w;
    double fixed_s = 0, fixed_h = 0;
    for (size_t k = 0; k < nt; ++k) {
      const size_t end = k + 1 < nt ? start[k + 1] : n;
      const double d = c.n_event[k], r = c.n_risk[k];
      for (size_t i = start[k]; i < end; ++i) {
        const double w2 = obs[i].w * obs[i].w;
        w2_after -= w2;
        const double us = a_cum[k] - (obs[i].event ? 1.0 / (r - d) : 0.0);
        const double uh = (obs[i].event ? 1.0 / r : 0.0) - b_cum[k];
        fixed_s += w2 * us * us;
        fixed_h += w2 * uh * uh;
      }
      const double var_s = fixed_s + a_cum[k] * a_cum[k] * w2_after;
      const double var_h = fixed_h + b_cum[k] * b_cum[k] * w2_after;
      // Once S is 0 its influence is 0 (R reports 0, not 0 * Inf).
      c.std_err[k] = c.surv[k] == 0 ? 0.0 : c.surv[k] * std::sqrt(var_s);
      c.std_chaz[k] = std::sqrt(var_h);
    }
  }
  c.se_log_s.resize(nt);
  c.se_surv.resize(nt);
  c.lower.resize(nt);
  c.upper.resize(nt);
  for (size_t k = 0; k < nt; ++k) {
    if (robust) {
      c.se_surv[k] = c.std_err[k];
      c.se_log_s[k] = c.std_err[k] / c.surv[k];
    } else {
      c.se_log_s[k] = c.std_err[k];
      c.se_surv[k] = c.surv[k] * c.std_err[k];
    }
    auto [lo, hi] = ConfLimits(conf_type, c.surv[k], c.std_err[k], !robust, z);
    c.lower[k] = lo;
    c.upper[k] = hi;
  }
  return c;
}

void SetTableAndQuantiles(KmCurve& c, double end_time, const std::vector<double>& probs) {
  std::vector<std::optional<double>> surv(c.surv.begin(), c.surv.end());
  c.median = TableMedian(c.time, surv);
  c.median_lcl = TableMedian(c.time, c.lower);
  c.median_ucl = TableMedian(c.time, c.upper);

  // survmean with rmean="common": area under S from 0 to end_time, and the
  // variance sum_j hh_j * (area after t_j)^2.
  std::vector<double> temptime, tempsurv, hh;
  for (size_t k = 0; k < c.time.size() && c.time[k] <= end_time; ++k) {
    temptime.push_back(c.time[k]);
    tempsurv.push_back(c.surv[k]);
    const double r = c.n_risk[k], d = c.n_event[k];
    hh.push_back(r - d == 0 ? 0.0 : d / (r * (r - d)));
  }
  if (temptime.empty()) {
    c.rmean = end_time;
    c.se_rmean = 0;
  } else {
    tempsurv.push_back(tempsurv.back());
    temptime.push_back(end_time);
    hh.push_back(0);
    const size_t m = temptime.size();
    std::vector<double> rect(m);
    double prev = 0;
    for (size_t j = 0; j < m; ++j) {
      rect[j] = (temptime[j] - prev) * (j == 0 ? 1.0 : tempsurv[j - 1]);
      prev = temptime[j];
    }
    double mean = 0;
    for (double r : rect) mean += r;
    double varmean = 0, cum = 0;
    for (size_t j = m; j-- > 1;) {
      cum += rect[j];
      varmean += cum * cum * hh[j - 1];
    }
    c.rmean = mean;
    c.se_rmean = std::sqrt(varmean);
  }

  c.quantiles.probs = probs;
  c.quantiles.quantile = FindQuantiles(c.time, surv, probs);
  c.quantiles.lower = FindQuantiles(c.time, c.lower, probs);
  c.quantiles.upper = FindQuantiles(c.time, c.upper, probs);
}

}  // namespace

std::vector<double> AeqSurvTimes(const std::vector<double>& time) {
  std::vector<double> y;
  y.reserve(time.size());
  for (double t : time)
    if (std::isfinite(t)) y.push_back(t);
  std::sort(y.begin(), y.end());
  y.erase(std::unique(y.begin(), y.end()), y.end());
  if (y.size() < 2) return time;
  double mean_abs = 0;
  for (double v : y) mean_abs += std::fabs(v);
  mean_abs /= y.size();
  std::vector<double> cuts = {y[0]};
  bool any_tied = false;
  for (size_t i = 1; i < y.size(); ++i) {
    const double dy = y[i] - y[i - 1];
    const bool tied = dy <= kTol || dy / mean_abs <= kTol;
    if (tied) {
      any_tied = true;
    } else {
      cuts.push_back(y[i]);
    }
  }
  if (!any_tied) return time;
  std::vector<double> out = time;
  for (double& t : out) {
    if (!std::isfinite(t)) continue;
    auto it = std::upper_bound(cuts.begin(), cuts.end(), t);
    t = *(it - 1);
  }
  return out;
}

void AeqSurvSorted(std::vector<double>& sorted) {
  // Mean |t| over the distinct finite times, as aeqSurv.
  double sum_abs = 0;
  size_t distinct = 0;
  for (size_t i = 0; i < sorted.size(); ++i) {
    if (!std::isfinite(sorted[i])) continue;
    if (distinct == 0 || sorted[i] != sorted[i - 1]) {
      sum_abs += std::fabs(sorted[i]);
      ++distinct;
    }
  }
  if (distinct < 2) return;
  const double mean_abs = sum_abs / distinct;
  bool have_prev = false;
  double prev = 0, cut = 0;
  for (double& t : sorted) {
    if (!std::isfinite(t)) continue;
    if (!have_prev) {
      prev = cut = t;
      have_prev = true;
      continue;
    }
    if (t != prev) {
      const double dy = t - prev;
      prev = t;
      if (!(dy <= kTol || dy / mean_abs <= kTol)) cut = t;
    }
    t = cut;
  }
}

std::vector<uint32_t> TimeOrder(const std::vector<double>& time) {
  const size_t n = time.size();
  // Follow-up in whole days is the common case: a counting sort, stable and
  // O(n + range), when every time is an integer in a modest range.
  if (n > 0) {
    double lo = time[0], hi = time[0];
    bool integral = true;
    for (double t : time) {
      if (!(t == std::floor(t)) || std::fabs(t) > 1e15) {
        integral = false;
        break;
      }
      lo = std::min(lo, t);
      hi = std::max(hi, t);
    }
    if (integral && hi - lo <= 4.0 * static_cast<double>(n) + 1e6) {
      const size_t range = static_cast<size_t>(hi - lo) + 1;
      std::vector<uint32_t> count(range + 1, 0);
      for (double t : time) ++count[static_cast<size_t>(t - lo) + 1];
      for (size_t v = 1; v <= range; ++v) count[v] += count[v - 1];
      std::vector<uint32_t> order(n);
      for (size_t i = 0; i < n; ++i) order[count[static_cast<size_t>(time[i] - lo)]++] = static_cast<uint32_t>(i);
      return order;
    }
  }
  return RadixOrder(time);
}

std::vector<uint32_t> RadixOrder(const std::vector<double>& values) {
  const size_t n = values.size();
  std::vector<uint64_t> key(n), key2(n);
  std::vector<uint32_t> idx(n), idx2(n);
  for (size_t i = 0; i < n; ++i) {
    const double v = values[i] == 0 ? 0.0 : values[i];  // -0 sorts with +0
    uint64_t bits;
    std::memcpy(&bits, &v, sizeof bits);
    key[i] = (bits >> 63) ? ~bits : (bits | (uint64_t{1} << 63));
    idx[i] = static_cast<uint32_t>(i);
  }
  std::vector<uint32_t> count(65537);
  for (int pass = 0; pass < 4; ++pass) {
    const int shift = 16 * pass;
    std::fill(count.begin(), count.end(), 0);
    for (size_t i = 0; i < n; ++i) ++count[((key[i] >> shift) & 0xffff) + 1];
    if (count[((key.empty() ? 0 : key[0]) >> shift & 0xffff) + 1] == n) continue;  // one bucket
    for (size_t d = 1; d <= 65536; ++d) count[d] += count[d - 1];
    for (size_t i = 0; i < n; ++i) {
      const size_t pos = count[(key[i] >> shift) & 0xffff]++;
      key2[pos] = key[i];
      idx2[pos] = idx[i];
    }
    key.swap(key2);
    idx.swap(idx2);
  }
  return idx;
}

std::optional<double> TableMedian(const std::vector<double>& time,
                                  const std::vector<std::optional<double>>& y) {
  std::vector<size_t> keep;
  for (size_t i = 0; i < y.size(); ++i)
    if (y[i].has_value() && !std::isnan(*y[i]) && *y[i] < 0.5 + kTol) keep.push_back(i);
  if (keep.empty()) return std::nullopt;
  const double y1 = *y[keep[0]];
  if (std::fabs(y1 - 0.5) < kTol) {
    for (size_t i : keep)
      if (*y[i] < y1) return (time[keep[0]] + time[i]) / 2;
  }
  return time[keep[0]];
}

std::vector<std::optional<double>> FindQuantiles(const std::vector<double>& time,
                                                 const std::vector<std::optional<double>>& surv,
                                                 const std::vector<double>& probs) {
  // findq(c(0, time), c(0, 1 - surv), p, tol) of quantile.survfit.
  std::vector<double> x = {0.0};
  std::vector<std::optional<double>> y = {0.0};
  for (size_t i = 0; i < time.size(); ++i) {
    x.push_back(time[i]);
    if (surv[i].has_value() && !std::isnan(*surv[i])) {
      y.push_back(1 - *surv[i]);
    } else {
      y.push_back(std::nullopt);
    }
  }
  std::vector<std::optional<double>> out(probs.size());
  double ymax = -std::numeric_limits<double>::infinity();
  for (const auto& v : y)
    if (v.has_value()) ymax = std::max(ymax, *v);
  const double pmin = probs.empty() ? 0 : *std::min_element(probs.begin(), probs.end());
  if (ymax < pmin) return out;
  const double xmax = x.back();
  // Drop duplicated y values (the censorings), keeping the first.
  std::vector<double> xd;
  std::vector<std::optional<double>> yd;
  bool seen_na = false;
  std::unordered_set<double> seen;
  for (size_t i = 0; i < y.size(); ++i) {
    bool dup = false;
    if (!y[i].has_value()) {
      dup = seen_na;
      seen_na = true;
    } else {
      dup = !seen.insert(*y[i] == 0 ? 0.0 : *y[i]).second;
    }
    if (!dup) {
      xd.push_back(x[i]);
      yd.push_back(y[i]);
    }
  }
  const size_t n = yd.size();
  std::vector<std::pair<double, double>> plus, minus;
  for (size_t i = 0; i < n; ++i) {
    if (!yd[i].has_value()) continue;
    plus.emplace_back(*yd[i] + kTol, static_cast<double>(i));
    minus.emplace_back(*yd[i] - kTol, static_cast<double>(i));
  }
  SortByX(plus);
  SortByX(minus);
  for (size_t k = 0; k < probs.size(); ++k) {
    const double p = probs[k];
    auto i1 = ApproxConstantRight(plus, p);
    auto i2 = ApproxConstantRight(minus, p);
    std::optional<double> q;
    if (i1 && i2) q = (xd[static_cast<size_t>(*i1)] + xd[static_cast<size_t>(*i2)]) / 2;
    if (p == 0) q = xd[0];
    if (yd[n - 1].has_value() && std::fabs(p - *yd[n - 1]) < kTol) {
      if (i1) {
        q = (xd[static_cast<size_t>(*i1)] + xmax) / 2;
      } else {
        q = std::nullopt;
      }
    }
    out[k] = q;
  }
  return out;
}

absl::StatusOr<KmFit> FitKaplanMeier(const SurvivalData& data, const std::vector<int>& group,
                                     const std::vector<std::string>& labels,
                                     const KmOptions& options) {
  const size_t n = data.size();
  if (data.event.size() != n || (!data.weight.empty() && data.weight.size() != n) ||
      (!group.empty() && group.size() != n)) {
    return absl::InvalidArgumentError("survival data vectors differ in length");
  }
  bool non_integer = false;
  for (size_t i = 0; i < n; ++i) {
    if (!std::isfinite(data.time[i])) return absl::InvalidArgumentError("non-finite time");
    if (!(data.w(i) > 0)) return absl::InvalidArgumentError("weights must be > 0");
    if (IsNonInteger(data.w(i))) non_integer = true;
  }
  const bool robust = options.variance == KmVariance::kRobust ||
                      (options.variance == KmVariance::kDefault && non_integer);
  const size_t ngroups = group.empty() ? 1 : labels.size();
  // One sort of all subjects; timefix on the pooled sorted times (as survfit
  // applies aeqSurv to the whole response), then per curve in that order.
  const std::vector<uint32_t> order = TimeOrder(data.time);
  std::vector<double> sorted_time(n);
  for (size_t k = 0; k < n; ++k) sorted_time[k] = data.time[order[k]];
  if (options.timefix) AeqSurvSorted(sorted_time);
  std::vector<std::vector<Obs>> per_group(ngroups);
  {
    std::vector<size_t> count(ngroups, 0);
    for (size_t i = 0; i < n; ++i) {
      const int g = group.empty() ? 0 : group[i];
      if (g >= 0 && static_cast<size_t>(g) < ngroups) ++count[g];
    }
    for (size_t g = 0; g < ngroups; ++g) per_group[g].reserve(count[g]);
  }
  for (size_t k = 0; k < n; ++k) {
    const size_t i = order[k];
    const int g = group.empty() ? 0 : group[i];
    if (g < 0 || static_cast<size_t>(g) >= ngroups)
      return absl::InvalidArgumentError("group index out of range");
    per_group[g].push_back({sorted_time[k], data.event[i] != 0 ? 1 : 0, data.w(i)});
  }
  KmFit fit;
  fit.conf_type = options.conf_type;
  fit.conf_int = options.conf_int;
  fit.logse = !robust;
  const double z = Qnorm(1 - (1 - options.conf_int) / 2);
  double end_time = -std::numeric_limits<double>::infinity();
  for (size_t g = 0; g < ngroups; ++g) {
    auto& obs = per_group[g];
    if (obs.empty()) continue;
    KmCurve c = FitCurve(obs, robust, options.conf_type, z);
    c.label = labels.empty() ? "all" : labels[g];
    end_time = std::max(end_time, c.time.back());
    fit.curves.push_back(std::move(c));
  }
  for (auto& c : fit.curves) SetTableAndQuantiles(c, end_time, options.probs);
  return fit;
}

std::vector<KmAtTime> SummaryAtTimes(const KmFit& fit, std::vector<double> times) {
  std::sort(times.begin(), times.end());
  times.erase(std::unique(times.begin(), times.end()), times.end());
  std::vector<KmAtTime> out;
  for (const auto& c : fit.curves) {
    double prev_cum = 0;
    for (double t : times) {
      if (c.time.empty() || t > c.time.back()) continue;
      KmAtTime row;
      row.strata = c.label;
      row.time = t;
      // Last curve time <= t.
      const size_t upto =
          static_cast<size_t>(std::upper_bound(c.time.begin(), c.time.end(), t) - c.time.begin());
      if (upto == 0) {
        row.surv = 1;
        row.se_surv = 0;
        row.lower = 1.0;
        row.upper = 1.0;
      } else {
        const size_t k = upto - 1;
        row.surv = c.surv[k];
        row.se_surv = c.se_surv[k];
        row.lower = c.lower[k];
        row.upper = c.upper[k];
      }
      const size_t first_ge =
          static_cast<size_t>(std::lower_bound(c.time.begin(), c.time.end(), t) - c.time.begin());
      row.n_risk = c.n_risk[first_ge];
      double cum = 0;
      for (size_t k = 0; k < upto; ++k) cum += c.n_event[k];
      row.n_event = cum - prev_cum;
      prev_cum = cum;
      out.push_back(row);
    }
  }
  return out;
}

const char* ConfTypeName(ConfType type) {
  switch (type) {
    case ConfType::kLog:
      return "log";
    case ConfType::kLogLog:
      return "log-log";
    case ConfType::kPlain:
      return "plain";
  }
  return "log";
}

}  // namespace medkoord::survival
