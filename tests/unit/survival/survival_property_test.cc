// Tricky cases with values checked against R 4.2.2 / survival 3.5.3: all
// censored, a curve that never reaches 0.5, ties at the last time, a curve
// ending exactly at 0.5, censoring at the last time, a single group,
// singular Cox columns, and invariances (integer weights = replicated rows).

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "services/rwd/survival/cox.h"
#include "services/rwd/survival/km.h"
#include "services/rwd/survival/logrank.h"

namespace medkoord::survival {
namespace {

KmCurve One(std::vector<double> t, std::vector<int> e, std::vector<double> w = {}) {
  SurvivalData d{std::move(t), std::move(e), std::move(w)};
  auto fit = FitKaplanMeier(d, {}, {"all"});
  EXPECT_TRUE(fit.ok()) << fit.status();
  return fit->curves.at(0);
}

TEST(KaplanMeierProperty, CensoredAtTheLastTimeEndingAtOneHalf) {
  // S = .75, .5, .5, .5: the table takes t, quantile() the midpoint to the end.
  const KmCurve c = One({1, 2, 3, 4}, {1, 1, 0, 0});
  EXPECT_EQ(c.median, 2.0);
  EXPECT_EQ(c.median_lcl, 1.0);
  EXPECT_FALSE(c.median_ucl.has_value());
  EXPECT_DOUBLE_EQ(c.rmean, 2.75);
  EXPECT_EQ(c.quantiles.quantile[0], 1.5);
  EXPECT_EQ(c.quantiles.quantile[1], 3.0);
  EXPECT_FALSE(c.quantiles.quantile[2].has_value());
  EXPECT_EQ(c.quantiles.lower[0], 1.0);
  EXPECT_EQ(c.quantiles.lower[1], 1.0);
  EXPECT_EQ(c.quantiles.lower[2], 2.0);
  for (const auto& u : c.quantiles.upper) EXPECT_FALSE(u.has_value());
  EXPECT_EQ(c.n_censor.back(), 1.0);
  EXPECT_EQ(c.surv.back(), 0.5);
}

TEST(KaplanMeierProperty, MidpointWhenTheCurveDropsLater) {
  const KmCurve c = One({1, 2, 3, 4}, {1, 1, 1, 1});
  EXPECT_EQ(c.median, 2.5);
  EXPECT_EQ(c.quantiles.quantile[0], 1.5);
  EXPECT_EQ(c.quantiles.quantile[1], 2.5);
  EXPECT_EQ(c.quantiles.quantile[2], 3.5);
  EXPECT_TRUE(std::isinf(c.std_err.back()));
  EXPECT_TRUE(std::isnan(c.se_surv.back()));
  EXPECT_FALSE(c.lower.back().has_value());
  EXPECT_FALSE(c.upper.back().has_value());
}

TEST(KaplanMeierProperty, TiesAtTheLastTime) {
  const KmCurve c = One({1, 2, 3, 3, 3}, {1, 0, 1, 1, 1});
  ASSERT_EQ(c.time.size(), 3u);
  EXPECT_EQ(c.n_event.back(), 3.0);
  EXPECT_EQ(c.n_risk.back(), 3.0);
  EXPECT_EQ(c.surv.back(), 0.0);
  EXPECT_EQ(c.median, 3.0);
  EXPECT_FALSE(c.median_lcl.has_value());
  EXPECT_FALSE(c.median_ucl.has_value());
  EXPECT_DOUBLE_EQ(c.rmean, 2.6);
  EXPECT_EQ(c.quantiles.quantile[0], 3.0);
  EXPECT_EQ(c.quantiles.lower[0], 1.0);
  EXPECT_FALSE(c.quantiles.lower[1].has_value());
  EXPECT_NEAR(c.std_err[0], 0.2236068, 1e-7);
  EXPECT_TRUE(std::isinf(c.std_err[2]));
}

TEST(KaplanMeierProperty, AllCensored) {
  const KmCurve c = One({1, 2, 3, 4, 5}, {0, 0, 0, 0, 0});
  for (double s : c.surv) EXPECT_EQ(s, 1.0);
  for (double e : c.std_err) EXPECT_EQ(e, 0.0);
  for (const auto& l : c.lower) EXPECT_EQ(l, 1.0);
  EXPECT_FALSE(c.median.has_value());
  EXPECT_FALSE(c.median_lcl.has_value());
  EXPECT_EQ(c.rmean, 5.0);
  EXPECT_EQ(c.se_rmean, 0.0);
  for (const auto& q : c.quantiles.quantile) EXPECT_FALSE(q.has_value());
}

TEST(KaplanMeierProperty, NeverReachesOneHalf) {
  const KmCurve c = One({1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, {1, 0, 1, 0, 0, 0, 0, 0, 0, 0});
  EXPECT_FALSE(c.median.has_value());
  EXPECT_FALSE(c.median_lcl.has_value());
  EXPECT_DOUBLE_EQ(c.rmean, 8.3125);
  EXPECT_EQ(c.quantiles.lower[0], 1.0);
  EXPECT_FALSE(c.quantiles.quantile[0].has_value());
  EXPECT_NEAR(c.std_err[2], 0.1702006, 1e-7);
  EXPECT_NEAR(*c.lower[2], 0.5641252, 1e-7);
}

TEST(KaplanMeierProperty, IntegerWeightsEqualReplicatedRows) {
  const KmCurve w = One({1, 2, 2, 3, 5}, {1, 1, 0, 1, 0}, {2, 1, 3, 2, 1});
  const KmCurve r = One({1, 1, 2, 2, 2, 2, 3, 3, 5}, {1, 1, 1, 0, 0, 0, 1, 1, 0});
  ASSERT_EQ(w.time, r.time);
  for (size_t k = 0; k < w.time.size(); ++k) {
    EXPECT_DOUBLE_EQ(w.surv[k], r.surv[k]);
    EXPECT_DOUBLE_EQ(w.std_err[k], r.std_err[k]);
    EXPECT_DOUBLE_EQ(w.n_risk[k], r.n_risk[k]);
  }
}

TEST(KaplanMeierProperty, TimefixMergesNearlyEqualTimes) {
  const KmCurve c = One({1.0, 1.0 + 1e-12, 2.0}, {1, 1, 0});
  ASSERT_EQ(c.time.size(), 2u);
  EXPECT_EQ(c.n_event[0], 2.0);
}

TEST(KaplanMeierProperty, SingleGroupAndSummaryTimes) {
  SurvivalData d{{1, 2, 3, 4}, {1, 1, 1, 1}, {}};
  auto fit = FitKaplanMeier(d, {0, 0, 0, 0}, {"g=a"});
  ASSERT_TRUE(fit.ok());
  ASSERT_EQ(fit->curves.size(), 1u);
  EXPECT_EQ(fit->curves[0].label, "g=a");
  // Times before the first, between and after the last (dropped, as R).
  const auto rows = SummaryAtTimes(*fit, {0, 2.5, 9});
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].surv, 1.0);
  EXPECT_EQ(rows[0].n_risk, 4.0);
  EXPECT_EQ(rows[0].n_event, 0.0);
  EXPECT_EQ(rows[1].surv, 0.5);
  EXPECT_EQ(rows[1].n_risk, 2.0);
  EXPECT_EQ(rows[1].n_event, 2.0);
  EXPECT_FALSE(SurvDiff(d, {0, 0, 0, 0}, {"g=a"}).ok());
}

TEST(CoxProperty, SingularColumnIsNa) {
  SurvivalData d{{1, 2, 3, 4, 5, 6, 7, 8}, {1, 1, 0, 1, 1, 0, 1, 1}, {}};
  CoxDesign x;
  x.names = {"x", "x2"};
  x.x = {{1, 0, 1, 0, 1, 1, 0, 0}, {2, 0, 2, 0, 2, 2, 0, 0}};
  auto fit = FitCox(d, x);
  ASSERT_TRUE(fit.ok()) << fit.status();
  EXPECT_FALSE(fit->terms[0].singular);
  EXPECT_TRUE(fit->terms[1].singular);
  EXPECT_NEAR(fit->terms[0].coef, 0.1732119, 1e-7);
  EXPECT_EQ(fit->iter, 3);
  EXPECT_NEAR(fit->loglik_null, -7.7142311448490855, 1e-12);
  EXPECT_NEAR(fit->loglik, -7.6993663645764299, 1e-12);
  EXPECT_EQ(fit->lr_test.df, 1);
}

TEST(CoxProperty, EfronEqualsBreslowWithoutTies) {
  SurvivalData d{{1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 1, 0, 1, 1, 0, 1, 1, 1}, {}};
  CoxDesign x;
  x.names = {"z"};
  x.x = {{0.5, 1.2, -0.3, 2.0, 0.1, -1.0, 0.7, 0.0, 1.5}};
  CoxOptions efron, breslow;
  breslow.ties = Ties::kBreslow;
  auto a = FitCox(d, x, efron);
  auto b = FitCox(d, x, breslow);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_DOUBLE_EQ(a->terms[0].coef, b->terms[0].coef);
  EXPECT_DOUBLE_EQ(a->loglik, b->loglik);
  EXPECT_DOUBLE_EQ(a->terms[0].robust_se, b->terms[0].robust_se);
}

TEST(CoxProperty, RejectsBadInput) {
  SurvivalData d{{1, 2}, {1, 0}, {}};
  CoxDesign x;
  x.names = {"z"};
  x.x = {{1, std::numeric_limits<double>::quiet_NaN()}};
  EXPECT_FALSE(FitCox(d, x).ok());
  x.x = {{1}};
  EXPECT_FALSE(FitCox(d, x).ok());
}

}  // namespace
}  // namespace medkoord::survival
