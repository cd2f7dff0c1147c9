#include "services/rwd/survival/iptw.h"

#include <algorithm>
#include <cmath>

#include "services/rwd/survival/math.h"

namespace medkoord::survival {

std::vector<std::optional<double>> IptwWeights(const std::vector<int>& treated,
                                               const std::vector<double>& ps,
                                               const IptwOptions& options) {
  const size_t n = treated.size();
  std::vector<bool> keep(n, true);
  double p_treated = 0, kept = 0;
  for (size_t i = 0; i < n; ++i) {
    if (options.trim > 0 && (ps[i] < options.trim || ps[i] > 1 - options.trim)) keep[i] = false;
    if (keep[i]) {
      kept += 1;
      p_treated += treated[i] != 0;
    }
  }
  if (kept > 0) p_treated /= kept;
  std::vector<std::optional<double>> w(n);
  for (size_t i = 0; i < n; ++i) {
    if (!keep[i]) continue;
    const bool t = treated[i] != 0;
    double v;
    if (options.estimand == Estimand::kAte) {
      v = t ? 1 / ps[i] : 1 / (1 - ps[i]);
      if (options.stabilised) v *= t ? p_treated : 1 - p_treated;
    } else {
      v = t ? 1.0 : ps[i] / (1 - ps[i]);
      if (options.stabilised && !t) v *= (1 - p_treated) / p_treated;
    }
    w[i] = v;
  }
  return w;
}

WeightSummary SummariseWeights(const std::vector<double>& w) {
  WeightSummary s;
  s.n = static_cast<int64_t>(w.size());
  if (w.empty()) return s;
  double sum2 = 0;
  for (double v : w) {
    s.sum += v;
    sum2 += v * v;
  }
  s.mean = s.sum / w.size();
  std::vector<double> sorted = w;
  std::sort(sorted.begin(), sorted.end());
  s.min = sorted.front();
  s.max = sorted.back();
  s.q1 = Quantile7(sorted, 0.25);
  s.median = Quantile7(sorted, 0.5);
  s.q3 = Quantile7(sorted, 0.75);
  s.ess = s.sum * s.sum / sum2;
  return s;
}

std::vector<BalanceRow> StandardisedMeanDifferences(const std::vector<int>& treated,
                                                    const std::vector<std::vector<double>>& x,
                                                    const std::vector<std::string>& names,
                                                    const std::vector<double>& weights,
                                                    double threshold) {
  std::vector<BalanceRow> out;
  for (size_t j = 0; j < x.size(); ++j) {
    BalanceRow r;
    r.name = names[j];
    double n[2] = {0, 0}, s[2] = {0, 0}, ws[2] = {0, 0}, wsum[2] = {0, 0};
    for (size_t i = 0; i < treated.size(); ++i) {
      const int g = treated[i] != 0;
      n[g] += 1;
      s[g] += x[j][i];
      ws[g] += weights[i] * x[j][i];
      wsum[g] += weights[i];
    }
    const double m[2] = {s[0] / n[0], s[1] / n[1]};
    double ss[2] = {0, 0};
    for (size_t i = 0; i < treated.size(); ++i) {
      const int g = treated[i] != 0;
      ss[g] += (x[j][i] - m[g]) * (x[j][i] - m[g]);
    }
    const double var_t = n[1] > 1 ? ss[1] / (n[1] - 1) : 0;
    const double var_c = n[0] > 1 ? ss[0] / (n[0] - 1) : 0;
    const double sd = std::sqrt((var_t + var_c) / 2);
    r.mean_treated = m[1];
    r.mean_control = m[0];
    r.weighted_mean_treated = ws[1] / wsum[1];
    r.weighted_mean_control = ws[0] / wsum[0];
    r.smd_before = sd > 0 ? (m[1] - m[0]) / sd : 0;
    r.smd_after = sd > 0 ? (r.weighted_mean_treated - r.weighted_mean_control) / sd : 0;
    r.imbalanced_before = std::fabs(r.smd_before) > threshold;
    r.imbalanced_after = std::fabs(r.smd_after) > threshold;
    out.push_back(r);
  }
  return out;
}

}  // namespace medkoord::survival
