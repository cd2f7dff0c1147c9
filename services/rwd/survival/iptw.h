#pragma once
// Inverse probability of treatment weighting from a propensity score:
// ATE weights 1/ps and 1/(1-ps), ATT weights 1 and ps/(1-ps), optionally
// stabilised by the marginal treatment probability, optionally restricted to
// ps within [trim, 1 - trim]; weight summaries with the effective sample size
// (Kish); standardised mean differences before and after weighting.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace medkoord::survival {

enum class Estimand { kAte, kAtt };

struct IptwOptions {
  Estimand estimand = Estimand::kAte;
  bool stabilised = false;
  // Subjects whose ps lies outside [trim, 1 - trim] get no weight (they leave
  // the weighted analysis); 0 keeps everyone.
  double trim = 0;
};

// One weight per subject; std::nullopt for a subject trimmed away.
std::vector<std::optional<double>> IptwWeights(const std::vector<int>& treated,
                                               const std::vector<double>& ps,
                                               const IptwOptions& options = {});

struct WeightSummary {
  int64_t n = 0;
  double sum = 0, mean = 0, min = 0, q1 = 0, median = 0, q3 = 0, max = 0, ess = 0;
};
WeightSummary SummariseWeights(const std::vector<double>& w);

struct BalanceRow {
  std::string name;
  double mean_treated = 0, mean_control = 0;
  double weighted_mean_treated = 0, weighted_mean_control = 0;
  double smd_before = 0, smd_after = 0;
  bool imbalanced_before = false, imbalanced_after = false;  // |smd| > threshold
};

// SMD = (mean_t - mean_c) / sqrt((var_t + var_c) / 2). The denominator is the
// unweighted pooled SD for both, so that before and after are on one scale.
std::vector<BalanceRow> StandardisedMeanDifferences(const std::vector<int>& treated,
                                                    const std::vector<std::vector<double>>& x,
                                                    const std::vector<std::string>& names,
                                                    const std::vector<double>& weights,
                                                    double threshold = 0.1);

}  // namespace medkoord::survival
