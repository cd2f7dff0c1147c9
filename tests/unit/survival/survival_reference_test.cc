// Every number of R's reference results (lung_ref.json, veteran_ref.json,
// *_iptw.csv) that the survival library covers, reproduced from the CSVs.

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "services/rwd/analyse/table.h"
#include "services/rwd/survival/cox.h"
#include "services/rwd/survival/iptw.h"
#include "services/rwd/survival/km.h"
#include "services/rwd/survival/logistic.h"
#include "services/rwd/survival/logrank.h"
#include "tests/unit/survival/reference_util.h"

namespace medkoord::survival {
namespace {

using nlohmann::json;
using testing::ExpectValue;
using testing::ExpectVector;

struct DatasetSpec {
  std::string name;
  std::string event_value;
  std::string group;
  std::vector<std::string> multi;
  std::vector<std::string> ps;
};

// A reference data set with numeric columns, NA as nullopt.
struct Dataset {
  DatasetSpec spec;
  json ref;
  std::map<std::string, std::vector<std::optional<double>>> col;
  std::vector<double> time;
  std::vector<int> event;
  size_t rows = 0;
};

Dataset Load(const DatasetSpec& spec) {
  Dataset d;
  d.spec = spec;
  d.ref = testing::LoadJson(testing::SurvivalFixture(spec.name + "_ref.json"));
  auto table = analyse::ReadCsvFile(testing::SurvivalFixture(spec.name + ".csv"));
  EXPECT_TRUE(table.ok()) << table.status();
  d.rows = table->rows();
  for (size_t c = 0; c < table->columns.size(); ++c) {
    auto& v = d.col[table->columns[c]];
    for (const auto& cell : table->cells[c]) v.push_back(analyse::ParseNumber(cell));
  }
  const int status_col = table->Find("status");
  for (size_t r = 0; r < d.rows; ++r) {
    d.time.push_back(*d.col["time"][r]);
    d.event.push_back(table->cells[status_col][r] == spec.event_value ? 1 : 0);
  }
  return d;
}

// Rows (0-based) complete in all the named columns.
std::vector<size_t> CompleteRows(const Dataset& d, const std::vector<std::string>& vars) {
  std::vector<size_t> rows;
  for (size_t r = 0; r < d.rows; ++r) {
    bool ok = true;
    for (const auto& v : vars) ok = ok && d.col.at(v)[r].has_value();
    if (ok) rows.push_back(r);
  }
  return rows;
}

SurvivalData Subset(const Dataset& d, const std::vector<size_t>& rows,
                    const std::vector<double>& weight = {}) {
  SurvivalData s;
  for (size_t r : rows) {
    s.time.push_back(d.time[r]);
    s.event.push_back(d.event[r]);
  }
  s.weight = weight;
  return s;
}

// Group index and strata labels "sex=1", in numeric level order.
void Groups(const Dataset& d, const std::vector<size_t>& rows, std::vector<int>& group,
            std::vector<std::string>& labels, std::vector<double>& levels) {
  std::set<double> lv;
  for (size_t r : rows) lv.insert(*d.col.at(d.spec.group)[r]);
  levels.assign(lv.begin(), lv.end());
  labels.clear();
  for (double v : levels) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.15g", v);
    labels.push_back(d.spec.group + "=" + buf);
  }
  group.clear();
  for (size_t r : rows)
    group.push_back(static_cast<int>(std::lower_bound(levels.begin(), levels.end(),
                                                      *d.col.at(d.spec.group)[r]) -
                                     levels.begin()));
}

void CheckCurve(const json& ref, const KmCurve& c, const std::string& where) {
  EXPECT_EQ(ref["n"].get<int64_t>(), c.n) << where;
  EXPECT_EQ(ref["records"].get<int64_t>(), c.n) << where;
  ExpectVector(ref["time"], c.time, where + ".time", true);
  ExpectVector(ref["n_risk"], c.n_risk, where + ".n_risk");
  ExpectVector(ref["n_event"], c.n_event, where + ".n_event");
  ExpectVector(ref["n_censor"], c.n_censor, where + ".n_censor");
  ExpectVector(ref["surv"], c.surv, where + ".surv");
  ExpectVector(ref["std_err"], c.std_err, where + ".std_err");
  ExpectVector(ref["se_logS"], c.se_log_s, where + ".se_logS");
  ExpectVector(ref["se_surv"], c.se_surv, where + ".se_surv");
  ExpectVector(ref["lower"], c.lower, where + ".lower");
  ExpectVector(ref["upper"], c.upper, where + ".upper");
  ExpectVector(ref["cumhaz"], c.cumhaz, where + ".cumhaz");
  ExpectVector(ref["std_chaz"], c.std_chaz, where + ".std_chaz");
  ExpectValue(ref["median"], c.median, where + ".median", true);
  ExpectValue(ref["median_lcl"], c.median_lcl, where + ".median_lcl", true);
  ExpectValue(ref["median_ucl"], c.median_ucl, where + ".median_ucl", true);
  ExpectValue(ref["events"], c.events, where + ".events");
  ExpectValue(ref["rmean"], c.rmean, where + ".rmean");
  ExpectValue(ref["se_rmean"], c.se_rmean, where + ".se_rmean");
  ExpectVector(ref["quantiles"]["probs"], c.quantiles.probs, where + ".quantiles.probs", true);
  ExpectVector(ref["quantiles"]["quantile"], c.quantiles.quantile, where + ".quantiles.quantile", true);
  ExpectVector(ref["quantiles"]["lower"], c.quantiles.lower, where + ".quantiles.lower", true);
  ExpectVector(ref["quantiles"]["upper"], c.quantiles.upper, where + ".quantiles.upper", true);
}

void CheckKm(const json& ref, const KmFit& fit, const std::string& where) {
  EXPECT_EQ(ref["conf_type"].get<std::string>(), ConfTypeName(fit.conf_type)) << where;
  EXPECT_EQ(ref["conf_int"].get<double>(), fit.conf_int) << where;
  EXPECT_EQ(ref["logse"].get<bool>(), fit.logse) << where;
  ASSERT_EQ(ref["curves"].size(), fit.curves.size()) << where;
  for (const auto& c : fit.curves) {
    ASSERT_TRUE(ref["curves"].contains(c.label)) << where << " " << c.label;
    const json& rc = ref["curves"][c.label];
    EXPECT_EQ(rc["label"].get<std::string>(), c.label);
    EXPECT_EQ(rc["std_err_scale"].get<std::string>(), fit.logse ? "logS" : "S");
    CheckCurve(rc, c, where + "." + c.label);
  }
  const json& at = ref["at_times"];
  std::vector<double> times;
  for (const auto& t : at["time"]) times.push_back(t.get<double>());
  const auto rows = SummaryAtTimes(fit, times);
  ASSERT_EQ(rows.size(), at["time"].size()) << where;
  for (size_t i = 0; i < rows.size(); ++i) {
    const std::string w = where + ".at_times[" + std::to_string(i) + "]";
    if (at.contains("strata")) EXPECT_EQ(at["strata"][i].get<std::string>(), rows[i].strata) << w;
    EXPECT_EQ(at["time"][i].get<double>(), rows[i].time) << w;
    ExpectValue(at["surv"][i], rows[i].surv, w + ".surv");
    ExpectValue(at["se_surv"][i], rows[i].se_surv, w + ".se_surv");
    ExpectValue(at["lower"][i], rows[i].lower, w + ".lower");
    ExpectValue(at["upper"][i], rows[i].upper, w + ".upper");
    ExpectValue(at["n_risk"][i], rows[i].n_risk, w + ".n_risk");
    ExpectValue(at["n_event_cum_interval"][i], rows[i].n_event, w + ".n_event");
  }
}

void CheckMatrix(const json& ref, const Matrix& m, const std::string& where) {
  ASSERT_EQ(ref.size(), static_cast<size_t>(m.n)) << where;
  for (int i = 0; i < m.n; ++i)
    for (int j = 0; j < m.n; ++j)
      ExpectValue(ref[i][j], m(i, j), where + "[" + std::to_string(i) + "," + std::to_string(j) + "]");
}

void CheckTest(const json& ref, const TestStat& t, const std::string& where) {
  ExpectValue(ref["stat"], t.stat, where + ".stat");
  EXPECT_EQ(ref["df"].get<int>(), t.df) << where;
  ExpectValue(ref["p"], t.p, where + ".p");
}

CoxFit FitCoxOn(const Dataset& d, const std::vector<std::string>& vars, Ties ties,
                std::vector<size_t>* rows_out = nullptr, const std::vector<double>& w = {},
                const std::vector<size_t>* rows_in = nullptr) {
  const std::vector<size_t> rows = rows_in ? *rows_in : CompleteRows(d, vars);
  CoxDesign design;
  for (const auto& v : vars) {
    design.names.push_back(v);
    std::vector<double> x;
    for (size_t r : rows) x.push_back(*d.col.at(v)[r]);
    design.x.push_back(x);
  }
  CoxOptions options;
  options.ties = ties;
  auto fit = FitCox(Subset(d, rows, w), design, options);
  EXPECT_TRUE(fit.ok()) << fit.status();
  if (rows_out) *rows_out = rows;
  return *fit;
}

void CheckCox(const json& ref, const Dataset& d, const std::vector<std::string>& vars, Ties ties,
              const std::string& where) {
  std::vector<size_t> rows;
  const CoxFit fit = FitCoxOn(d, vars, ties, &rows);
  EXPECT_EQ(ref["method"].get<std::string>(), ties == Ties::kEfron ? "efron" : "breslow");
  EXPECT_EQ(ref["n"].get<int64_t>(), fit.n) << where;
  EXPECT_EQ(ref["nevent"].get<double>(), fit.nevent) << where;
  std::vector<int64_t> dropped;
  for (size_t r = 0, k = 0; r < d.rows; ++r) {
    if (k < rows.size() && rows[k] == r) {
      ++k;
    } else {
      dropped.push_back(static_cast<int64_t>(r + 1));
    }
  }
  EXPECT_EQ(ref["dropped_csv_rows"].get<std::vector<int64_t>>(), dropped) << where;
  EXPECT_EQ(ref["term_names"].get<std::vector<std::string>>(), vars) << where;
  for (const auto& t : fit.terms) {
    const json& rt = ref["terms"][t.name];
    const std::string w = where + ".terms." + t.name;
    ExpectValue(rt["coef"], t.coef, w + ".coef");
    ExpectValue(rt["se"], t.se, w + ".se");
    ExpectValue(rt["z"], t.z, w + ".z");
    ExpectValue(rt["p"], t.p, w + ".p");
    ExpectValue(rt["hr"], t.hr, w + ".hr");
    ExpectValue(rt["hr_lower"], t.hr_lower, w + ".hr_lower");
    ExpectValue(rt["hr_upper"], t.hr_upper, w + ".hr_upper");
    ExpectValue(rt["robust_se"], t.robust_se, w + ".robust_se");
    ExpectValue(rt["robust_z"], t.robust_z, w + ".robust_z");
    ExpectValue(rt["robust_p"], t.robust_p, w + ".robust_p");
    ExpectValue(rt["robust_hr_lower"], t.robust_hr_lower, w + ".robust_hr_lower");
    ExpectValue(rt["robust_hr_upper"], t.robust_hr_upper, w + ".robust_hr_upper");
    ExpectValue(rt["mean"], t.mean, w + ".mean");
  }
  CheckMatrix(ref["var"], fit.var, where + ".var");
  CheckMatrix(ref["robust_var"], fit.robust_var, where + ".robust_var");
  ExpectValue(ref["loglik_null"], fit.loglik_null, where + ".loglik_null");
  ExpectValue(ref["loglik"], fit.loglik, where + ".loglik");
  EXPECT_EQ(ref["iter"].get<int>(), fit.iter) << where;
  CheckTest(ref["lr_test"], fit.lr_test, where + ".lr_test");
  CheckTest(ref["wald_test"], fit.wald_test, where + ".wald_test");
  CheckTest(ref["score_test"], fit.score_test, where + ".score_test");
  CheckTest(ref["robust_wald_test"], fit.robust_wald_test, where + ".robust_wald_test");
  CheckTest(ref["robust_score_test"], fit.robust_score_test, where + ".robust_score_test");
  const json& rc = ref["concordance"];
  ExpectValue(rc["concordant"], fit.concordance.concordant, where + ".concordant");
  ExpectValue(rc["discordant"], fit.concordance.discordant, where + ".discordant");
  ExpectValue(rc["tied.x"], fit.concordance.tied_x, where + ".tied.x");
  ExpectValue(rc["tied.y"], fit.concordance.tied_y, where + ".tied.y");
  ExpectValue(rc["tied.xy"], fit.concordance.tied_xy, where + ".tied.xy");
  ExpectValue(rc["concordance"], fit.concordance.concordance, where + ".concordance");
  ExpectValue(rc["std"], fit.concordance.std, where + ".concordance.std");
}

class ReferenceTest : public ::testing::TestWithParam<DatasetSpec> {
 protected:
  void SetUp() override {
    if (!testing::HaveSurvivalFixtures()) GTEST_SKIP() << "shared fixtures absent";
    d_ = Load(GetParam());
  }
  Dataset d_;
};

TEST_P(ReferenceTest, KaplanMeierOverall) {
  std::vector<size_t> all(d_.rows);
  for (size_t i = 0; i < d_.rows; ++i) all[i] = i;
  auto fit = FitKaplanMeier(Subset(d_, all), {}, {"all"});
  ASSERT_TRUE(fit.ok()) << fit.status();
  CheckKm(d_.ref["km"]["overall"], *fit, "km.overall");
}

TEST_P(ReferenceTest, KaplanMeierByGroup) {
  std::vector<size_t> rows = CompleteRows(d_, {d_.spec.group});
  std::vector<int> group;
  std::vector<std::string> labels;
  std::vector<double> levels;
  Groups(d_, rows, group, labels, levels);
  auto fit = FitKaplanMeier(Subset(d_, rows), group, labels);
  ASSERT_TRUE(fit.ok()) << fit.status();
  CheckKm(d_.ref["km"]["by_group"], *fit, "km.by_group");
}

TEST_P(ReferenceTest, SurvDiff) {
  std::vector<size_t> rows = CompleteRows(d_, {d_.spec.group});
  std::vector<int> group;
  std::vector<std::string> labels;
  std::vector<double> levels;
  Groups(d_, rows, group, labels, levels);
  for (const char* key : {"survdiff", "survdiff_rho1"}) {
    const json& ref = d_.ref[key];
    auto res = SurvDiff(Subset(d_, rows), group, labels, ref["rho"].get<double>());
    ASSERT_TRUE(res.ok()) << res.status();
    EXPECT_EQ(ref["groups"].get<std::vector<std::string>>(), res->groups);
    ExpectVector(ref["n"], res->n, std::string(key) + ".n");
    ExpectVector(ref["obs"], res->obs, std::string(key) + ".obs");
    ExpectVector(ref["exp"], res->exp, std::string(key) + ".exp");
    CheckMatrix(ref["var"], res->var, std::string(key) + ".var");
    ExpectValue(ref["chisq"], res->chisq, std::string(key) + ".chisq");
    EXPECT_EQ(ref["df"].get<int>(), res->df);
    ExpectValue(ref["p"], res->p, std::string(key) + ".p");
  }
}

TEST_P(ReferenceTest, CoxGroup) {
  CheckCox(d_.ref["coxph"]["group"]["efron"], d_, {d_.spec.group}, Ties::kEfron, "group.efron");
  CheckCox(d_.ref["coxph"]["group"]["breslow"], d_, {d_.spec.group}, Ties::kBreslow,
           "group.breslow");
}

TEST_P(ReferenceTest, CoxMulti) {
  CheckCox(d_.ref["coxph"]["multi"]["efron"], d_, d_.spec.multi, Ties::kEfron, "multi.efron");
  CheckCox(d_.ref["coxph"]["multi"]["breslow"], d_, d_.spec.multi, Ties::kBreslow,
           "multi.breslow");
}

TEST_P(ReferenceTest, Weighted) {
  const json& ref = d_.ref["weighted"];
  std::vector<std::string> vars = d_.spec.multi;
  vars.insert(vars.end(), d_.spec.ps.begin(), d_.spec.ps.end());
  vars.push_back(d_.spec.group);
  const std::vector<size_t> rows = CompleteRows(d_, vars);
  ASSERT_EQ(ref["rows"].get<size_t>(), rows.size());
  std::vector<int> group;
  std::vector<std::string> labels;
  std::vector<double> levels;
  Groups(d_, rows, group, labels, levels);
  std::vector<int> treated;
  for (int g : group) treated.push_back(g != 0);
  std::vector<std::vector<double>> x;
  for (const auto& v : d_.spec.ps) {
    std::vector<double> col;
    for (size_t r : rows) col.push_back(*d_.col.at(v)[r]);
    x.push_back(col);
  }
  auto ps = FitLogistic(treated, x, d_.spec.ps);
  ASSERT_TRUE(ps.ok()) << ps.status();
  EXPECT_EQ(ref["ps_model"]["terms"].get<std::vector<std::string>>(), ps->names);
  ExpectVector(ref["ps_model"]["coef"], ps->coef, "ps_model.coef");
  ExpectVector(ref["ps_model"]["se"], ps->se, "ps_model.se");
  ExpectValue(ref["ps_model"]["deviance"], ps->deviance, "ps_model.deviance");
  EXPECT_EQ(ref["ps_model"]["iter"].get<int>(), ps->iter);

  const auto wopt = IptwWeights(treated, ps->fitted);
  std::vector<double> w;
  for (const auto& v : wopt) w.push_back(*v);
  // Per-row propensity scores and weights of <name>_iptw.csv.
  auto iptw = analyse::ReadCsvFile(testing::SurvivalFixture(d_.spec.name + "_iptw.csv"));
  ASSERT_TRUE(iptw.ok());
  ASSERT_EQ(iptw->rows(), rows.size());
  for (size_t k = 0; k < rows.size(); ++k) {
    EXPECT_EQ(*analyse::ParseNumber(iptw->cells[0][k]), static_cast<double>(rows[k] + 1));
    EXPECT_EQ(*analyse::ParseNumber(iptw->cells[1][k]), treated[k]);
    ExpectValue(*analyse::ParseNumber(iptw->cells[2][k]), ps->fitted[k], "ps row " + std::to_string(k));
    ExpectValue(*analyse::ParseNumber(iptw->cells[3][k]), w[k], "w row " + std::to_string(k));
  }
  auto check_summary = [&](const json& rs, const std::vector<double>& v, const std::string& where) {
    const WeightSummary s = SummariseWeights(v);
    EXPECT_EQ(rs["n"].get<int64_t>(), s.n) << where;
    ExpectValue(rs["sum"], s.sum, where + ".sum");
    ExpectValue(rs["mean"], s.mean, where + ".mean");
    ExpectValue(rs["min"], s.min, where + ".min");
    ExpectValue(rs["q1"], s.q1, where + ".q1");
    ExpectValue(rs["median"], s.median, where + ".median");
    ExpectValue(rs["q3"], s.q3, where + ".q3");
    ExpectValue(rs["max"], s.max, where + ".max");
    ExpectValue(rs["ess"], s.ess, where + ".ess");
  };
  std::vector<double> wt, wu;
  for (size_t k = 0; k < w.size(); ++k) (treated[k] ? wt : wu).push_back(w[k]);
  check_summary(ref["weights_summary"]["all"], w, "weights.all");
  check_summary(ref["weights_summary"]["treated"], wt, "weights.treated");
  check_summary(ref["weights_summary"]["untreated"], wu, "weights.untreated");

  for (Ties ties : {Ties::kEfron, Ties::kBreslow}) {
    const json& rc = ref["coxph"][ties == Ties::kEfron ? "efron" : "breslow"];
    const CoxFit fit = FitCoxOn(d_, {d_.spec.group}, ties, nullptr, w, &rows);
    const std::string where = std::string("weighted.coxph.") + (ties == Ties::kEfron ? "efron" : "breslow");
    EXPECT_EQ(rc["n"].get<int64_t>(), fit.n);
    EXPECT_EQ(rc["nevent"].get<double>(), fit.nevent);
    ExpectValue(rc["weighted_nevent"], fit.weighted_nevent, where + ".weighted_nevent");
    EXPECT_EQ(rc["term"].get<std::string>(), fit.terms[0].name);
    ExpectValue(rc["coef"], fit.terms[0].coef, where + ".coef");
    ExpectValue(rc["naive_se"], fit.terms[0].se, where + ".naive_se");
    ExpectValue(rc["robust_se"], fit.terms[0].robust_se, where + ".robust_se");
    ExpectValue(rc["hr"], fit.terms[0].hr, where + ".hr");
    ExpectValue(rc["robust_hr_lower"], fit.terms[0].robust_hr_lower, where + ".robust_hr_lower");
    ExpectValue(rc["robust_hr_upper"], fit.terms[0].robust_hr_upper, where + ".robust_hr_upper");
    ExpectValue(rc["robust_p"], fit.terms[0].robust_p, where + ".robust_p");
    ExpectValue(rc["loglik_null"], fit.loglik_null, where + ".loglik_null");
    ExpectValue(rc["loglik"], fit.loglik, where + ".loglik");
    EXPECT_EQ(rc["iter"].get<int>(), fit.iter) << where;
    ExpectValue(rc["score_test"], fit.score_test.stat, where + ".score_test");
    ExpectValue(rc["robust_wald_test"], fit.robust_wald_test.stat, where + ".robust_wald_test");
    ExpectValue(rc["robust_score_test"], fit.robust_score_test.stat, where + ".robust_score_test");
  }

  const SurvivalData weighted = Subset(d_, rows, w);
  auto km_robust = FitKaplanMeier(weighted, group, labels);
  ASSERT_TRUE(km_robust.ok());
  CheckKm(ref["km_robust_default"], *km_robust, "km_robust_default");
  KmOptions greenwood;
  greenwood.variance = KmVariance::kGreenwood;
  auto km_green = FitKaplanMeier(weighted, group, labels, greenwood);
  ASSERT_TRUE(km_green.ok());
  CheckKm(ref["km_greenwood"], *km_green, "km_greenwood");
  if (ref.contains("km_unweighted_same_rows") && ref["km_unweighted_same_rows"].is_object()) {
    auto km_plain = FitKaplanMeier(Subset(d_, rows), group, labels);
    ASSERT_TRUE(km_plain.ok());
    CheckKm(ref["km_unweighted_same_rows"], *km_plain, "km_unweighted_same_rows");
  }
}

INSTANTIATE_TEST_SUITE_P(
    Survival, ReferenceTest,
    ::testing::Values(DatasetSpec{"lung", "2", "sex", {"age", "sex", "ph.ecog"}, {"age", "ph.ecog"}},
                      DatasetSpec{"veteran", "1", "trt", {"trt", "karno", "age", "prior"},
                                  {"karno", "age", "prior"}}),
    [](const ::testing::TestParamInfo<DatasetSpec>& info) { return info.param.name; });

TEST(MathTest, QnormMatchesR) {
  EXPECT_EQ(Qnorm(0.975), 1.9599639845400536);
  EXPECT_NEAR(Qnorm(0.995), 2.5758293035489004, 1e-15);
  EXPECT_NEAR(Qnorm(1e-10), -6.3613409024040557, 1e-13);
}

TEST(MathTest, ChisqUpperTail) {
  EXPECT_NEAR(ChisqUpper(10.326741954885632, 1), 0.0013111645203554882, 1e-18);
  EXPECT_NEAR(ChisqUpper(30.500668773156576, 3) / 1.0828176991986987e-06, 1, 1e-12);
  EXPECT_NEAR(ChisqUpper(2, 4), 0.73575888234288467, 1e-15);
}

}  // namespace
}  // namespace medkoord::survival
