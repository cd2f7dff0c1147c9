#pragma once
// Kaplan-Meier curves as R's survival package (3.5.3) computes them:
// survfit(Surv(time, status) ~ group, weights=, conf.type=), with the printed
// table of summary(fit)$table (median and its CI by the midpoint rule,
// restricted mean with rmean="common"), quantile(fit) and
// summary(fit, times=). Weighted curves use the infinitesimal-jackknife
// (robust) variance by default when any weight is non-integer, as survfit does.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace medkoord::survival {

// Right-censored survival data, one entry per subject. `weight` may be empty
// (all weights 1). `event` is 1 for an event, 0 for censored.
struct SurvivalData {
  std::vector<double> time;
  std::vector<int> event;
  std::vector<double> weight;

  size_t size() const { return time.size(); }
  double w(size_t i) const { return weight.empty() ? 1.0 : weight[i]; }
};

// R's aeqSurv (timefix=TRUE): times closer than sqrt(eps) (absolutely or
// relative to mean |t|) are made identical, so that ties are found as R
// finds them.
std::vector<double> AeqSurvTimes(const std::vector<double>& time);
// The same on times already in ascending order, in place and in O(n): the
// merge is monotone, so a sorted order stays sorted.
void AeqSurvSorted(std::vector<double>& sorted);
// Subject indices in ascending time, ties in index order (stable), by one
// sort of contiguous (time, index) pairs.
std::vector<uint32_t> TimeOrder(const std::vector<double>& time);
// Indices ordering finite values ascending, ties in index order: an LSD
// radix sort on the order-preserving bit pattern (4 passes of 16 bits).
std::vector<uint32_t> RadixOrder(const std::vector<double>& values);

enum class ConfType { kLog, kLogLog, kPlain };
enum class KmVariance { kDefault, kGreenwood, kRobust };

struct KmOptions {
  ConfType conf_type = ConfType::kLog;
  double conf_int = 0.95;
  // kDefault: robust (infinitesimal jackknife) when any weight is non-integer,
  // Greenwood otherwise, as survfit's default.
  KmVariance variance = KmVariance::kDefault;
  bool timefix = true;
  std::vector<double> probs = {0.25, 0.5, 0.75};
};

struct KmQuantiles {
  std::vector<double> probs;
  std::vector<std::optional<double>> quantile, lower, upper;
};

struct KmCurve {
  std::string label;
  int64_t n = 0;  // records
  // One entry per distinct time (events and censorings).
  std::vector<double> time, n_risk, n_event, n_censor, surv;
  std::vector<double> std_err;   // R's fit$std.err: se of log S, or of S if !logse
  std::vector<double> se_log_s, se_surv;
  std::vector<std::optional<double>> lower, upper;
  std::vector<double> cumhaz, std_chaz;
  double events = 0;  // (weighted) number of events
  std::optional<double> median, median_lcl, median_ucl;  // summary(fit)$table
  double rmean = 0, se_rmean = 0;                        // rmean="common"
  KmQuantiles quantiles;                                 // quantile(fit)
};

struct KmFit {
  ConfType conf_type = ConfType::kLog;
  double conf_int = 0.95;
  bool logse = true;  // false under the robust variance: std_err is on the S scale
  std::vector<KmCurve> curves;
};

// `group` holds, per subject, the index into `labels` of its curve; empty
// `group` gives one curve labelled labels[0] (or "all"). Curves with no
// subjects are left out, as survfit does.
absl::StatusOr<KmFit> FitKaplanMeier(const SurvivalData& data, const std::vector<int>& group,
                                     const std::vector<std::string>& labels,
                                     const KmOptions& options = {});

// summary(fit, times=): one row per curve and requested time that is not
// beyond the curve's last time.
struct KmAtTime {
  std::string strata;
  double time = 0;
  double surv = 1, se_surv = 0;
  std::optional<double> lower, upper;
  double n_risk = 0;
  double n_event = 0;  // events in (previous requested time, time]
};
std::vector<KmAtTime> SummaryAtTimes(const KmFit& fit, std::vector<double> times);

// The midpoint rules, exposed for tests: survmean's minmin (printed table) and
// quantile.survfit's findq.
std::optional<double> TableMedian(const std::vector<double>& time,
                                  const std::vector<std::optional<double>>& y);
std::vector<std::optional<double>> FindQuantiles(const std::vector<double>& time,
                                                 const std::vector<std::optional<double>>& surv,
                                                 const std::vector<double>& probs);

const char* ConfTypeName(ConfType type);

}  // namespace medkoord::survival
