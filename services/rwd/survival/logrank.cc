#include "services/rwd/survival/logrank.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "absl/status/status.h"

namespace medkoord::survival {

absl::StatusOr<LogRankResult> SurvDiff(const SurvivalData& data, const std::vector<int>& group,
                                       const std::vector<std::string>& labels, double rho,
                                       bool timefix) {
  const size_t n = data.size();
  if (group.size() != n || data.event.size() != n)
    return absl::InvalidArgumentError("survival data vectors differ in length");
  // Keep only groups with subjects, in label order.
  std::vector<int> count(labels.size(), 0);
  for (int g : group) {
    if (g < 0 || static_cast<size_t>(g) >= labels.size())
      return absl::InvalidArgumentError("group index out of range");
    ++count[g];
  }
  std::vector<int> remap(labels.size(), -1);
  LogRankResult res;
  res.rho = rho;
  for (size_t g = 0; g < labels.size(); ++g) {
    if (count[g] == 0) continue;
    remap[g] = static_cast<int>(res.groups.size());
    res.groups.push_back(labels[g]);
    res.n.push_back(count[g]);
  }
  const int k = static_cast<int>(res.groups.size());
  if (k < 2) return absl::FailedPreconditionError("survdiff needs at least two groups");
  const std::vector<uint32_t> order = TimeOrder(data.time);
  // time[k] is the (timefixed) time of the k-th subject in sorted order.
  std::vector<double> sorted_time(n);
  for (size_t k = 0; k < n; ++k) sorted_time[k] = data.time[order[k]];
  if (timefix) AeqSurvSorted(sorted_time);

  // Left-continuous pooled Kaplan-Meier, the weight S(t-)^rho.
  std::vector<double> kaplan(n, 1.0);
  if (rho != 0) {
    double km = 1;
    for (size_t i = 0; i < n;) {
      const double nrisk = static_cast<double>(n - i);
      double deaths = 0;
      size_t j = i;
      for (; j < n && sorted_time[j] == sorted_time[i]; ++j) {
        kaplan[j] = km;
        deaths += data.event[order[j]] != 0;
      }
      km = km * (nrisk - deaths) / nrisk;
      i = j;
    }
  }
  res.obs.assign(k, 0);
  res.exp.assign(k, 0);
  res.var = Matrix(k);
  std::vector<double> risk(k, 0);
  for (size_t ii = n; ii > 0;) {
    const size_t i = ii - 1;
    const double wt = rho == 0 ? 1.0 : std::pow(kaplan[i], rho);
    double deaths = 0;
    size_t j = i + 1;
    for (; j > 0 && sorted_time[j - 1] == sorted_time[i]; --j) {
      const size_t s = order[j - 1];
      const int g = remap[group[s]];
      const int st = data.event[s] != 0;
      deaths += st;
      risk[g] += 1;
      res.obs[g] += st * wt;
    }
    ii = j;
    const double nrisk = static_cast<double>(n - j);
    if (deaths > 0) {
      for (int g = 0; g < k; ++g) res.exp[g] += wt * deaths * risk[g] / nrisk;
      if (nrisk == 1) continue;
      const double kt = wt * wt * deaths * (nrisk - deaths) / (nrisk * (nrisk - 1));
      for (int a = 0; a < k; ++a) {
        const double tmp = kt * risk[a];
        res.var(a, a) += tmp;
        for (int b = 0; b < k; ++b) res.var(a, b) -= tmp * risk[b] / nrisk;
      }
    }
  }
  // chisq on the groups with expected > 0, dropping the first of them.
  std::vector<int> use;
  for (int g = 0; g < k; ++g)
    if (res.exp[g] > 0) use.push_back(g);
  res.df = static_cast<int>(use.size()) - 1;
  if (res.df < 1) {
    res.chisq = 0;
    res.df = 0;
    res.p = 1;
    return res;
  }
  const int m = res.df;
  Matrix vv(m);
  std::vector<double> diff(m);
  for (int a = 0; a < m; ++a) {
    diff[a] = res.obs[use[a + 1]] - res.exp[use[a + 1]];
    for (int b = 0; b < m; ++b) vv(a, b) = res.var(use[a + 1], use[b + 1]);
  }
  res.chisq = WaldQuadForm(vv, diff, 1e-12);
  res.p = ChisqUpper(res.chisq, res.df);
  return res;
}

}  // namespace medkoord::survival
