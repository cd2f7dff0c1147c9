#include "services/rwd/survival/safety.h"

#include <algorithm>
#include <cmath>

namespace medkoord::survival {

std::vector<AeArmSummary> SummariseAdverseEvents(const std::vector<int>& arm,
                                                 const std::vector<double>& grade,
                                                 const std::vector<std::string>& arms) {
  std::vector<AeArmSummary> out(arms.size());
  for (size_t a = 0; a < arms.size(); ++a) out[a].arm = arms[a];
  for (size_t i = 0; i < arm.size(); ++i) {
    if (arm[i] < 0 || static_cast<size_t>(arm[i]) >= arms.size()) continue;
    AeArmSummary& s = out[arm[i]];
    ++s.n;
    const double g = grade[i];
    if (std::isnan(g) || g < 0) continue;
    const int gi = std::min(5, static_cast<int>(std::floor(g)));
    ++s.n_known;
    ++s.count_by_grade[gi];
    if (gi >= 3) ++s.grade3_plus;
  }
  for (auto& s : out) {
    if (s.n_known == 0) continue;
    for (int g = 0; g < 6; ++g) s.percent_by_grade[g] = 100.0 * s.count_by_grade[g] / s.n_known;
    s.grade3_plus_percent = 100.0 * s.grade3_plus / s.n_known;
  }
  return out;
}

}  // namespace medkoord::survival
