// The offline analyse command end to end: lung.csv and veteran.csv give the
// reference JSON (every number the sections share with *_ref.json), a pilot
// cohort in the RWD format gives R's numbers, and bad usage is reported.

#include <sstream>
#include <string>
#include <vector>

#include "services/rwd/analyse/analyse.h"
#include "tests/unit/survival/reference_util.h"

namespace medkoord::analyse {
namespace {

using nlohmann::json;
namespace st = ::medkoord::survival::testing;

// Every number, null and non-finite marker of `ref` must be in `got` at the
// same path; text (formulas, descriptions) is not compared.
void CompareTree(const json& ref, const json& got, const std::string& path) {
  if (ref.is_object()) {
    for (auto it = ref.begin(); it != ref.end(); ++it) {
      if (it.value().is_string()) continue;  // descriptive text
      const std::string p = path + "." + it.key();
      if (!got.is_object() || !got.contains(it.key())) {
        ADD_FAILURE() << "missing " << p;
        continue;
      }
      CompareTree(it.value(), got[it.key()], p);
    }
    return;
  }
  if (ref.is_array()) {
    ASSERT_TRUE(got.is_array()) << path;
    ASSERT_EQ(ref.size(), got.size()) << path;
    for (size_t i = 0; i < ref.size(); ++i) {
      if (ref[i].is_string() && !(ref[i] == "NaN" || ref[i] == "Inf" || ref[i] == "-Inf")) {
        EXPECT_EQ(ref[i], got[i]) << path << "[" << i << "]";
        continue;
      }
      CompareTree(ref[i], got[i], path + "[" + std::to_string(i) + "]");
    }
    return;
  }
  if (ref.is_boolean()) {
    EXPECT_EQ(ref, got) << path;
    return;
  }
  std::optional<double> g;
  if (got.is_number()) {
    g = got.get<double>();
  } else if (got.is_string()) {
    const std::string s = got.get<std::string>();
    g = s == "NaN" ? std::nan("") : (s == "Inf" ? HUGE_VAL : -HUGE_VAL);
  }
  // Medians, quantiles and CI limits are times: exact; the rest 1e-6.
  st::ExpectValue(ref, g, path);
}

std::string Join(const json& times) {
  std::string s;
  for (const auto& t : times) {
    if (!s.empty()) s += ",";
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.17g", t.get<double>());
    s += buf;
  }
  return s;
}

struct CommandRun {
  int code = 0;
  std::string out, err;
};

CommandRun RunCommand(const std::vector<std::string>& args) {
  std::ostringstream out, err;
  CommandRun r;
  r.code = RunAnalyseCommand(args, out, err);
  r.out = out.str();
  r.err = err.str();
  return r;
}

void CheckReference(const std::string& name, const std::string& event, const std::string& group,
                    const std::string& covariates, const std::string& ps) {
  const json ref = st::LoadJson(st::SurvivalFixture(name + "_ref.json"));
  const CommandRun r = RunCommand({"analyse", st::SurvivalFixture(name + ".csv"), "--time", "time", "--event", event,
                            "--group", group, "--covariates", covariates, "--ps-covariates", ps,
                            "--at-times", Join(ref["km"]["overall"]["at_times"]["time"]), "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  const json got = json::parse(r.out);
  for (const char* section : {"km", "survdiff", "survdiff_rho1", "coxph", "weighted"}) {
    ASSERT_TRUE(got.contains(section)) << section;
    CompareTree(ref[section], got[section], section);
  }
  EXPECT_EQ(got["analysis_rows"], ref["analysis_rows"]);
}

TEST(AnalyseCommand, LungMatchesR) {
  if (!st::HaveSurvivalFixtures()) GTEST_SKIP() << "shared fixtures absent";
  CheckReference("lung", "status=2", "sex", "age,sex,ph.ecog", "age,ph.ecog");
}

TEST(AnalyseCommand, VeteranMatchesR) {
  if (!st::HaveSurvivalFixtures()) GTEST_SKIP() << "shared fixtures absent";
  CheckReference("veteran", "status=1", "trt", "trt,karno,age,prior", "karno,age,prior");
}

TEST(AnalyseCommand, NumbersPrintedWithFullPrecision) {
  if (!st::HaveSurvivalFixtures()) GTEST_SKIP() << "shared fixtures absent";
  const CommandRun r = RunCommand({st::SurvivalFixture("lung.csv"), "--time", "time", "--event", "status=2",
                            "--group", "sex", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  // The sex coefficient, printed with %.17g (17 significant digits).
  const size_t at = r.out.find("\"coef\": -0.531023537619508");
  ASSERT_NE(at, std::string::npos);
  const std::string number = r.out.substr(at + 8, r.out.find_first_of(",\n", at) - at - 8);
  EXPECT_EQ(number.size(), 20u) << number;  // "-0." and 17 digits
  EXPECT_NE(r.out.find("\"median\": 310"), std::string::npos);
}

// Pilot 1 (RWD cohort format), overall survival, arm with chemo as the
// reference, a text factor and a log term; numbers from R 4.2.2 /
// survival 3.5.3 on the same file (coxph(..., robust=TRUE), survfit).
TEST(AnalyseCommand, PilotCohortMatchesR) {
  const std::string file = st::FixturesDir() + "/rwd_pilot1_cohort.csv";
  if (!std::filesystem::exists(file)) GTEST_SKIP() << "shared fixtures absent";
  const CommandRun r = RunCommand({"analyse", file, "--endpoint", "os", "--group", "arm", "--covariates",
                            "arm,age,sex,ecog,log(age)", "--ps-covariates", "age,sex,ecog",
                            "--reference", "arm=chemo", "--at-times", "365,730", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  const json j = json::parse(r.out);
  const json& e = j["coxph"]["multi"]["efron"];
  EXPECT_EQ(e["term_names"], json({"armpembrolizumab+chemo", "age", "sexM", "ecog", "log(age)"}));
  const json& arm = e["terms"]["armpembrolizumab+chemo"];
  st::ExpectValue(arm["coef"], -0.5718008412984058042, "arm coef");
  st::ExpectValue(arm["se"], 0.126095167002238689, "arm se");
  st::ExpectValue(arm["robust_se"], 0.122566763586348812, "arm robust se");
  st::ExpectValue(arm["mean"], 0.0, "arm mean (0/1 column is not centred)");
  st::ExpectValue(e["terms"]["log(age)"]["coef"], 1.5817125385444248398, "log(age) coef");
  st::ExpectValue(e["terms"]["log(age)"]["robust_se"], 3.824086154675104599, "log(age) robust se");
  st::ExpectValue(e["loglik_null"], -1581.8859359527703, "loglik null");
  st::ExpectValue(e["loglik"], -1550.5249031941917, "loglik");
  EXPECT_EQ(e["iter"], 4);
  st::ExpectValue(e["concordance"]["concordance"], 0.62854107648725210, "concordance");
  st::ExpectValue(e["concordance"]["std"], 0.017479753113569394, "concordance std");
  st::ExpectValue(e["score_test"]["stat"], 65.420405329754075, "score");
  st::ExpectValue(e["robust_score_test"]["stat"], 61.148044769932994, "robust score");
  st::ExpectValue(e["robust_wald_test"]["stat"], 76.485074074358778, "robust wald");
  const json& b = j["coxph"]["multi"]["breslow"];
  st::ExpectValue(b["terms"]["armpembrolizumab+chemo"]["coef"], -0.5712452891596103699, "breslow coef");
  st::ExpectValue(b["loglik"], -1550.9258501609256, "breslow loglik");
  const json& chemo = j["km"]["by_group"]["curves"]["arm=chemo"];
  EXPECT_EQ(chemo["median"], 215);
  EXPECT_EQ(chemo["median_lcl"], 162);
  EXPECT_EQ(chemo["median_ucl"], 268);
  st::ExpectValue(chemo["rmean"], 289.51521523579629, "rmean chemo");
  st::ExpectValue(chemo["se_rmean"], 24.821169830227038, "se_rmean chemo");
  EXPECT_EQ(chemo["quantiles"]["upper"], json({133, 268, 521}));
  const json& pem = j["km"]["by_group"]["curves"]["arm=pembrolizumab+chemo"];
  EXPECT_EQ(pem["median"], 418);
  EXPECT_EQ(pem["quantiles"]["lower"], json({136, 333, 652}));
  st::ExpectValue(pem["display_months"]["median"], 418 / 30.4375, "median in months");
  const json& ps = j["weighted"]["ps_model"];
  EXPECT_EQ(ps["terms"], json({"(Intercept)", "age", "sexM", "ecog"}));
  st::ExpectValue(ps["coef"][0], 5.148964048646437419, "ps intercept");
  st::ExpectValue(ps["coef"][1], -0.055943640576548631, "ps age");
  st::ExpectValue(ps["coef"][2], -0.313346577445780872, "ps sexM");
  st::ExpectValue(ps["coef"][3], -0.403380416908370565, "ps ecog");
  EXPECT_EQ(ps["iter"], 4);
  EXPECT_EQ(j["weighted"]["balance"].size(), 3u);
  EXPECT_EQ(j["safety"]["by_group"]["arm=chemo"]["n"], 124);
  EXPECT_EQ(j["safety"]["by_group"]["arm=chemo"]["grade3_plus"], 44);
}

// A text group with a chosen reference (R's relevel) as factor covariate,
// with a log term; numbers from R 4.2.2 / survival 3.5.3:
// coxph(Surv(time, status) ~ relevel(celltype, "squamous") + log(karno)).
TEST(AnalyseCommand, FactorWithReferenceMatchesR) {
  if (!st::HaveSurvivalFixtures()) GTEST_SKIP() << "shared fixtures absent";
  const CommandRun r = RunCommand({st::SurvivalFixture("veteran.csv"), "--time", "time", "--event", "status=1",
                                   "--group", "celltype", "--covariates", "celltype,log(karno)",
                                   "--reference", "celltype=squamous", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  const json j = json::parse(r.out);
  const json& e = j["coxph"]["multi"]["efron"];
  st::ExpectValue(e["terms"]["celltypeadeno"]["coef"], 1.03682803781337740, "adeno");
  st::ExpectValue(e["terms"]["celltypelarge"]["coef"], 0.30419451462743735, "large");
  st::ExpectValue(e["terms"]["celltypesmallcell"]["coef"], 0.80505758573990727, "smallcell");
  st::ExpectValue(e["terms"]["log(karno)"]["coef"], -1.25463396346806277, "log(karno)");
  EXPECT_EQ(e["iter"], 5);
  st::ExpectValue(e["concordance"]["concordance"], 0.735858700590640624, "concordance");
  st::ExpectValue(e["concordance"]["std"], 0.023326653125687043, "concordance std");
  EXPECT_EQ(j["survdiff"]["groups"],
            json({"celltype=squamous", "celltype=adeno", "celltype=large", "celltype=smallcell"}));
  st::ExpectValue(j["survdiff"]["chisq"], 25.403700345785353, "survdiff chisq");
  EXPECT_EQ(j["survdiff"]["df"], 3);
}

// survival::colon, deaths only (etype == 2; tests/unit/survival/testdata):
// a three-level factor with a chosen reference, NA rows in `nodes`, a log
// term, heavy ties, curves whose upper band never reaches 0.5, and a
// weighted model with two terms. Numbers from R 4.2.2 / survival 3.5.3.
TEST(AnalyseCommand, ColonMatchesR) {
  const CommandRun r = RunCommand({std::string(MEDKOORD_SURVIVAL_TESTDATA) + "/colon_death.csv", "--time", "time",
                                   "--event", "status=1", "--group", "rx", "--covariates",
                                   "rx,age,sex,nodes,log(age)", "--ps-covariates", "age,nodes", "--reference",
                                   "rx=Obs", "--at-times", "365,1000,3000", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  const json j = json::parse(r.out);
  const json& e = j["coxph"]["multi"]["efron"];
  const std::vector<double> coef = {-0.070224599735455515, -0.39981733927092383, 0.040917117082275418,
                                    -0.020916921433023806, 0.09152609475938854, -1.9181520426648659};
  const std::vector<double> rse = {0.11334997032325717, 0.11987072216542262, 0.02623055343206222,
                                   0.096430152445893313, 0.012220392889930962, 1.3861343499086294};
  EXPECT_EQ(e["term_names"], json({"rxLev", "rxLev+5FU", "age", "sex", "nodes", "log(age)"}));
  for (size_t k = 0; k < coef.size(); ++k) {
    const std::string name = e["term_names"][k].get<std::string>();
    st::ExpectValue(e["terms"][name]["coef"], coef[k], name + " coef");
    st::ExpectValue(e["terms"][name]["robust_se"], rse[k], name + " robust se");
  }
  EXPECT_EQ(e["iter"], 5);
  EXPECT_EQ(e["n"], 911);
  st::ExpectValue(e["concordance"]["concordance"], 0.64305098115891712, "concordance");
  st::ExpectValue(e["concordance"]["std"], 0.013540046931622238, "concordance std");
  st::ExpectValue(e["robust_score_test"]["stat"], 85.792892796358956, "robust score");
  st::ExpectValue(j["coxph"]["multi"]["breslow"]["terms"]["log(age)"]["coef"], -1.9165487504779712, "breslow");
  const json& curves = j["km"]["by_group"]["curves"];
  EXPECT_EQ(curves["rx=Obs"]["median"], 2083);
  EXPECT_EQ(curves["rx=Obs"]["median_lcl"], 1656);
  EXPECT_EQ(curves["rx=Obs"]["median_ucl"], 2789);
  EXPECT_EQ(curves["rx=Lev"]["median_ucl"], nullptr);
  EXPECT_EQ(curves["rx=Lev+5FU"]["median"], nullptr);
  EXPECT_EQ(curves["rx=Lev+5FU"]["median_lcl"], 2725);
  st::ExpectValue(curves["rx=Lev+5FU"]["rmean"], 2331.2056832615763, "rmean");
  st::ExpectValue(curves["rx=Lev"]["se_rmean"], 74.790652152410914, "se rmean");
  EXPECT_EQ(curves["rx=Lev"]["quantiles"]["upper"], json({909, nullptr, nullptr}));
  EXPECT_EQ(curves["rx=Lev+5FU"]["quantiles"]["lower"], json({802, 2725, nullptr}));
  EXPECT_EQ(j["km"]["by_group"]["at_times"]["n_event_cum_interval"], json({24, 79, 65, 29, 78, 54, 25, 52, 46}));
  st::ExpectValue(j["km"]["by_group"]["at_times"]["surv"][5], 0.39248979848359694, "surv at 3000");
  st::ExpectValue(j["survdiff_rho1"]["chisq"], 10.275750506025403, "Peto-Peto");
  const json& w = j["weighted"];
  st::ExpectValue(w["coxph"]["efron"]["terms"]["rxLev"]["coef"], -0.027530492314825527, "weighted rxLev");
  st::ExpectValue(w["coxph"]["efron"]["terms"]["rxLev+5FU"]["robust_se"], 0.12049540481841052, "weighted se");
  const json& wk = w["km_robust_default"]["curves"]["rx=Obs"];
  EXPECT_EQ(wk["median"], 2085);
  EXPECT_EQ(wk["median_lcl"], 1679);
  st::ExpectValue(wk["std_err"][2], 0.0052428966060495755, "IJ se");
}

TEST(AnalyseCommand, ProgressionFreeSurvivalOnPilot2) {
  const std::string file = st::FixturesDir() + "/rwd_pilot2_cohort.csv";
  if (!std::filesystem::exists(file)) GTEST_SKIP() << "shared fixtures absent";
  const CommandRun r = RunCommand({file, "--endpoint", "pfs", "--group", "arm", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  const json j = json::parse(r.out);
  EXPECT_EQ(j["endpoint"], "pfs");
  EXPECT_EQ(j["analysis_rows"], 130);
  EXPECT_TRUE(j["coxph"].contains("group"));
  EXPECT_TRUE(j.contains("survdiff"));
}

TEST(AnalyseCommand, TextSummaryWithoutJson) {
  if (!st::HaveSurvivalFixtures()) GTEST_SKIP() << "shared fixtures absent";
  const CommandRun r = RunCommand({st::SurvivalFixture("lung.csv"), "--time", "time", "--event", "status=2",
                            "--group", "sex"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("sex=1: n=138 events=112 median 270 (95% CI 212-310)"), std::string::npos) << r.out;
}

TEST(AnalyseCommand, UsageErrorsAreReportedTogether) {
  const CommandRun r = RunCommand({"analyse", "--group", "sex", "--bogus", "--json"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("missing FILE.csv"), std::string::npos);
  EXPECT_NE(r.err.find("unknown option: --bogus"), std::string::npos);
  EXPECT_NE(r.err.find("--time (or --endpoint) is required"), std::string::npos);
  const CommandRun r2 = RunCommand({"x.csv", "--endpoint", "os", "--time", "t", "--json"});
  EXPECT_EQ(r2.code, 2);
}

TEST(AnalyseCommand, UnknownColumnAndMissingFile) {
  if (!st::HaveSurvivalFixtures()) GTEST_SKIP() << "shared fixtures absent";
  const CommandRun r = RunCommand({st::SurvivalFixture("lung.csv"), "--time", "days", "--event", "status=2", "--json"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("no such column(s): days"), std::string::npos);
  const CommandRun r2 = RunCommand({"/nonexistent.csv", "--time", "t", "--event", "e=1", "--json"});
  EXPECT_EQ(r2.code, 1);
}

}  // namespace
}  // namespace medkoord::analyse
