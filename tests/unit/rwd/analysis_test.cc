#include "services/rwd/analysis.h"

#include <fstream>
#include <regex>
#include <sstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/rwd/analyse/analyse.h"
#include "services/rwd/cohort.h"
#include "services/rwd/report.h"

namespace medkoord::rwd {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using OJson = nlohmann::ordered_json;

std::string ReadFixture(const std::string& name) {
  std::ifstream in(std::string(MEDKOORD_FIXTURES_DIR) + "/" + name, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<CohortRow> Rows(const std::string& csv, CohortLayout* layout, std::vector<bool>* numeric) {
  CohortUpload upload(*Pseudonymiser::Create(std::string(32, 'k')), std::nullopt);
  std::vector<CohortRow> rows;
  EXPECT_TRUE(upload.Feed(csv, rows).ok());
  EXPECT_TRUE(upload.Finish(rows).ok());
  *layout = upload.layout();
  numeric->clear();
  for (const auto& name : layout->covariate_names) {
    for (const auto& [variable, kind] : upload.Variables()) {
      if (variable == name) numeric->push_back(kind == VariableKind::kNumeric);
    }
  }
  return rows;
}

TEST(IntervalsTest, Overlap) {
  EXPECT_TRUE(IntervalsOverlap(0.4, 0.6, 0.5, 0.9));
  EXPECT_TRUE(IntervalsOverlap(0.4, 0.6, 0.6, 0.9));  // touching
  EXPECT_FALSE(IntervalsOverlap(0.4, 0.6, 0.61, 0.9));
  EXPECT_FALSE(IntervalsOverlap(0.7, 0.9, 0.38, 0.64));
  EXPECT_TRUE(IntervalsOverlap(0.1, 2.0, 0.5, 0.6));  // containing
}

// The stored cohort, rebuilt as a table, gives the analysis library exactly
// the numbers it computes from the fixture file itself.
TEST(CohortTableTest, SameAnalysisAsTheFile) {
  const std::string csv = ReadFixture("rwd_pilot2_cohort.csv");
  CohortLayout layout;
  std::vector<bool> numeric;
  std::vector<CohortRow> rows = Rows(csv, &layout, &numeric);
  CohortTableBuilder builder(layout.covariate_names, numeric, false, {});
  for (const auto& r : rows) builder.Add(r);
  EXPECT_EQ(builder.rows(), 130);
  analyse::Table stored = builder.Take();
  auto file = analyse::ParseCsv(csv);
  ASSERT_TRUE(file.ok());
  EXPECT_EQ(stored.columns, file->columns);

  analyse::AnalysisSpec spec;
  spec.endpoint = "pfs";
  spec.group = "arm";
  spec.covariates = {"arm", "age", "ecog", "prior_lines"};
  spec.ps_covariates = {"age", "ecog"};
  spec.reference = {{"arm", "tpc"}};
  auto a = analyse::RunAnalysis(stored, spec);
  auto b = analyse::RunAnalysis(*file, spec);
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(analyse::DumpJson(*a), analyse::DumpJson(*b));
}

TEST(CohortTableTest, KeepsChosenArmsAndNoIdentifiers) {
  const std::string csv =
      "patient_ref,arm,index_date,death_date,progression_date,last_contact_date,age,sex\n"
      "010160-1234,a,2022-01-01,,,2023-01-01,60,F\n"
      "P-2,b,2022-01-01,2022-05-01,,2022-05-01,abc,M\n"
      "P-3,c,2022-01-01,,,2023-01-01,61,M\n"
      "P-4,b,2022-01-01,,,2023-01-01,62,M\n";
  CohortLayout layout;
  std::vector<bool> numeric;
  std::vector<CohortRow> rows = Rows(csv, &layout, &numeric);
  ASSERT_EQ(numeric, (std::vector<bool>{true, false}));
  CohortTableBuilder builder(layout.covariate_names, numeric, false, {"a", "b"});
  for (const auto& r : rows) builder.Add(r);
  analyse::Table t = builder.Take();
  EXPECT_EQ(t.cells[0], (std::vector<std::string>{"L2", "L3", "L5"}));
  EXPECT_EQ(t.cells[1], (std::vector<std::string>{"a", "b", "b"}));
  EXPECT_EQ(t.cells[6], (std::vector<std::string>{"60", "", "62"}));  // abc counts as missing
  EXPECT_EQ(t.cells[7], (std::vector<std::string>{"F", "M", "M"}));
}

v1::Protocol TestProtocol() {
  v1::Protocol p;
  p.set_title("test");
  p.mutable_intervention()->set_label("new");
  p.mutable_comparator()->set_label("old");
  auto* os = p.add_benchmarks();
  os->set_trial("T");
  os->set_endpoint(v1::ENDPOINT_OS);
  os->set_hazard_ratio(0.49);
  os->set_hr_lower(0.38);
  os->set_hr_upper(0.64);
  os->set_intervention_median_months(22.0);
  os->set_comparator_median_months(10.7);
  auto* far = p.add_benchmarks();
  far->set_trial("T");
  far->set_endpoint(v1::ENDPOINT_OS);
  far->set_hazard_ratio(0.2);
  far->set_hr_lower(0.1);
  far->set_hr_upper(0.3);
  auto* pfs = p.add_benchmarks();
  pfs->set_trial("T");
  pfs->set_endpoint(v1::ENDPOINT_PFS);
  return p;
}

OJson TestResult() {
  OJson r;
  r["km"]["by_group"]["curves"]["arm=new"] = {
      {"time", {30, 200, 400}}, {"n_risk", {20, 12, 3}}, {"n_event", {2, 3, 1}},
      {"surv", {0.9, 0.675, 0.45}}, {"lower", {0.8, 0.5, 0.2}}, {"upper", {1.0, 0.9, 0.8}},
      {"median", 608.75}, {"median_lcl", 304.375}, {"median_ucl", nullptr},
      {"records", 20}, {"events", 6}, {"rmean", 300.0}};
  r["km"]["by_group"]["curves"]["arm=old"] = {
      {"time", {10, 100}}, {"n_risk", {4, 2}}, {"n_event", {1, 1}}, {"surv", {0.75, 0.375}},
      {"lower", {0.4, 0.1}}, {"upper", {1.0, 0.9}}, {"median", 100}, {"median_lcl", 10},
      {"median_ucl", nullptr}, {"records", 4}, {"events", 2}, {"rmean", 80.0}};
  r["coxph"]["group"]["efron"] = {
      {"n", 24}, {"nevent", 8},
      {"terms", {{"armnew", {{"hr", 0.5}, {"hr_lower", 0.4}, {"hr_upper", 0.62}, {"p", 0.01}}}}}};
  r["weighted"]["coxph"]["efron"] = {
      {"hr", 0.45},
      {"terms", {{"armnew", {{"hr", 0.45}, {"robust_hr_lower", 0.31}, {"robust_hr_upper", 0.66}}}}}};
  r["safety"]["by_group"]["arm=old"] = {{"n", 4},
                                        {"count_by_grade", {0, 1, 3, 0, 0, 0}},
                                        {"percent_by_grade", {0, 25, 75, 0, 0, 0}},
                                        {"grade3_plus", 0},
                                        {"grade3_plus_percent", 0}};
  return r;
}

TEST(BenchmarkTest, SideBySideWithEveryBenchmarkOfTheEndpoint) {
  auto rows = CompareWithBenchmarks(TestResult(), "arm", TestProtocol(), v1::ENDPOINT_OS);
  ASSERT_EQ(rows.size(), 4u);  // 2 OS benchmarks x (unadjusted, iptw)
  EXPECT_EQ(rows[0].rwd_model(), "cox unadjusted");
  EXPECT_DOUBLE_EQ(rows[0].rwd_hazard_ratio(), 0.5);
  EXPECT_TRUE(rows[0].intervals_overlap());
  EXPECT_DOUBLE_EQ(rows[0].rwd_intervention_median_months(), 20.0);
  EXPECT_DOUBLE_EQ(rows[0].rwd_intervention_median_lower(), 10.0);
  EXPECT_FALSE(rows[0].has_rwd_intervention_median_upper());
  EXPECT_DOUBLE_EQ(rows[0].rwd_comparator_median_months(), 100 / kDaysPerMonth);
  EXPECT_EQ(rows[1].rwd_model(), "iptw");
  EXPECT_DOUBLE_EQ(rows[1].rwd_hr_lower(), 0.31);
  EXPECT_TRUE(rows[1].intervals_overlap());
  EXPECT_FALSE(rows[2].intervals_overlap());  // 0.4-0.62 vs 0.1-0.3
  EXPECT_FALSE(rows[3].intervals_overlap());
  EXPECT_EQ(CompareWithBenchmarks(TestResult(), "arm", TestProtocol(), v1::ENDPOINT_PFS).size(), 2u);
}

TEST(ReportTest, SmallCountsAreMasked) {
  EXPECT_EQ(MaskCount(0, 5), "0");
  EXPECT_EQ(MaskCount(1, 5), "&lt;5");
  EXPECT_EQ(MaskCount(4, 5), "&lt;5");
  EXPECT_EQ(MaskCount(5, 5), "5");
  EXPECT_EQ(MaskCount(9, 10), "&lt;10");

  OJson result = TestResult();
  std::string svg = KaplanMeierSvg(result, 5);
  EXPECT_THAT(svg, HasSubstr("<svg"));
  EXPECT_THAT(svg, HasSubstr("&lt;5"));
  EXPECT_FALSE(std::regex_search(svg, std::regex(">[1-4]</text>")));

  v1::Analysis analysis;
  analysis.set_name("analyses/1");
  analysis.mutable_spec()->set_endpoint(v1::ENDPOINT_OS);
  for (auto& c : CompareWithBenchmarks(result, "arm", TestProtocol(), v1::ENDPOINT_OS)) {
    *analysis.add_benchmarks() = c;
  }
  std::string html = AnalysisHtml(analysis, TestProtocol(), result, 5);
  // arm=old: 4 patients, 2 events, grades 1 and 2 with 1 and 3 patients.
  EXPECT_THAT(html, HasSubstr("<td>arm=old</td><td>&lt;5</td><td>&lt;5</td>"));
  EXPECT_THAT(html, HasSubstr("&lt;5 (masked)"));
  EXPECT_THAT(html, Not(HasSubstr("75.0 %")));
  EXPECT_THAT(html, HasSubstr("<td>arm=new</td><td>20</td><td>6</td>"));
  // A lower threshold shows them.
  EXPECT_THAT(AnalysisHtml(analysis, TestProtocol(), result, 1), HasSubstr("75.0 %"));
}

}  // namespace
}  // namespace medkoord::rwd
