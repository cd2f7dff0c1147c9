// The annual report's pure code, fed from the Forum fixture parsed here and
// from small hand-made case sets (the report must be computed from data).

#include "services/assessment/report.h"

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/numbers.h"
#include "common/csv/reader.h"
#include "nlohmann/json.hpp"

namespace medkoord::assessment {
namespace {

using ::testing::ElementsAre;
using ::testing::FieldsAre;

const absl::TimeZone& Cph() {
  static absl::TimeZone tz = [] {
    absl::TimeZone z;
    EXPECT_TRUE(absl::LoadTimeZone("Europe/Copenhagen", &z));
    return z;
  }();
  return tz;
}

absl::Time CphTime(int y, int m, int d, int hh = 0) {
  return absl::FromCivil(absl::CivilSecond(y, m, d, hh, 0, 0), Cph());
}

absl::CivilDay ParseDay(const std::string& s) {
  absl::CivilDay d;
  EXPECT_TRUE(absl::ParseCivilTime(s, &d)) << s;
  return d;
}

std::vector<ReportCase> LoadFixture() {
  std::ifstream in(std::string(MEDKOORD_FIXTURES_DIR) + "/forum_cases_2024.csv", std::ios::binary);
  EXPECT_TRUE(in.good()) << "fixture missing under " << MEDKOORD_FIXTURES_DIR;
  std::stringstream bytes;
  bytes << in.rdbuf();
  csv::Reader reader;
  reader.Feed(bytes.str());
  reader.Finish();
  EXPECT_FALSE(reader.failed());
  std::vector<ReportCase> cases;
  csv::Record rec;
  bool header = true;
  while (reader.Next(rec)) {
    const std::vector<std::string>& f = rec.fields;
    EXPECT_EQ(f.size(), 13u) << "line " << rec.line;
    if (header || f.size() != 13) {
      header = false;
      continue;
    }
    ReportCase c;
    c.region = RegionFromSlugKey(f[1]).value_or(0);
    c.submitted_on = ParseDay(f[2]);
    c.drug_name = f[3];
    c.indication = f[5];
    c.cancer = f[7] == "yes";
    c.marketed_dk = f[8] == "yes";
    c.medicinraadet = MedicinraadetFromKey(f[9]).value_or(0);
    c.ema = EmaFromKey(f[10]).value_or(0);
    c.outcome = OutcomeFromKey(f[11]).value_or(-1);
    // An imported decision is known from its date (a not-concluded case
    // without one: from its submission), as the store does it.
    c.known_at = absl::FromCivil(f[12].empty() ? c.submitted_on : ParseDay(f[12]), Cph());
    cases.push_back(std::move(c));
  }
  return cases;
}

int64_t CountOf(const std::vector<Count>& counts, std::string_view name) {
  for (const Count& c : counts) {
    if (c.name == name) return c.count;
  }
  ADD_FAILURE() << "no " << name;
  return -1;
}

double PercentOf(const std::vector<Count>& counts, std::string_view name) {
  for (const Count& c : counts) {
    if (c.name == name) return c.percent;
  }
  ADD_FAILURE() << "no " << name;
  return -1;
}

class FixtureReport : public ::testing::Test {
 protected:
  void SetUp() override {
    cases_ = LoadFixture();
    ASSERT_EQ(cases_.size(), 541u);
    absl::StatusOr<AnnualReport> r =
        BuildAnnualReport(AggregateCases(cases_, 2024, CphTime(2025, 4, 7)));
    ASSERT_TRUE(r.ok()) << r.status();
    report_ = *r;
  }
  std::vector<ReportCase> cases_;
  AnnualReport report_;
};

TEST_F(FixtureReport, NationalFiguresEqualDomainSection2) {
  const ReportSection& n = report_.national;
  EXPECT_EQ(n.total, 541);
  EXPECT_THAT(n.per_year, ElementsAre(std::pair<int, int64_t>(2024, 541)));
  EXPECT_EQ(CountOf(n.outcome, "recommended"), 371);
  EXPECT_EQ(CountOf(n.outcome, "not_recommended"), 143);
  EXPECT_EQ(CountOf(n.outcome, "not_concluded"), 27);
  EXPECT_EQ(CountOf(n.outcome, "open"), 0);
  EXPECT_DOUBLE_EQ(PercentOf(n.outcome, "recommended"), 68.6);
  EXPECT_DOUBLE_EQ(PercentOf(n.outcome, "not_recommended"), 26.4);
  EXPECT_DOUBLE_EQ(PercentOf(n.outcome, "not_concluded"), 5.0);
  EXPECT_EQ(CountOf(n.cancer, "yes"), 385);
  EXPECT_EQ(CountOf(n.cancer, "no"), 156);
  EXPECT_DOUBLE_EQ(PercentOf(n.cancer, "yes"), 71.2);
  EXPECT_EQ(CountOf(n.marketed_dk, "yes"), 436);
  EXPECT_EQ(CountOf(n.marketed_dk, "no"), 105);
  EXPECT_DOUBLE_EQ(PercentOf(n.marketed_dk, "yes"), 80.6);
  EXPECT_EQ(CountOf(n.medicinraadet_status, "not_assessed"), 306);
  EXPECT_EQ(CountOf(n.medicinraadet_status, "under_assessment"), 102);
  EXPECT_EQ(CountOf(n.medicinraadet_status, "rejected"), 110);
  EXPECT_EQ(CountOf(n.medicinraadet_status, "recommended_outside_criteria"), 23);
  EXPECT_DOUBLE_EQ(PercentOf(n.medicinraadet_status, "not_assessed"), 56.6);
  EXPECT_DOUBLE_EQ(PercentOf(n.medicinraadet_status, "under_assessment"), 18.9);
  EXPECT_DOUBLE_EQ(PercentOf(n.medicinraadet_status, "rejected"), 20.3);
  EXPECT_EQ(CountOf(n.ema_status, "on_label"), 348);
  EXPECT_EQ(CountOf(n.ema_status, "off_label"), 183);
  EXPECT_EQ(CountOf(n.ema_status, "unknown"), 10);
  EXPECT_EQ(CountOf(n.region, "hovedstaden"), 159);
  EXPECT_EQ(CountOf(n.region, "syddanmark"), 129);
  EXPECT_EQ(CountOf(n.region, "midtjylland"), 122);
  EXPECT_EQ(CountOf(n.region, "sjaelland"), 83);
  EXPECT_EQ(CountOf(n.region, "nordjylland"), 48);
}

TEST_F(FixtureReport, RankedListsByCountThenName) {
  const ReportSection& n = report_.national;
  EXPECT_THAT(n.top_drugs, ElementsAre(FieldsAre("Trifluridine/tipiracil", 49, 9.1),
                                       FieldsAre("Trastuzumab deruxtecan", 29, 5.4),
                                       FieldsAre("Mepolizumab", 26, 4.8),
                                       FieldsAre("Brentuximab vedotin", 23, 4.3),
                                       FieldsAre("Ibrutinib", 20, 3.7)));
  // Two indications tie at 20: name ascending decides.
  EXPECT_THAT(n.top_indications,
              ElementsAre(FieldsAre("Metastatic colorectal cancer", 68, 12.6),
                          FieldsAre("Chronic rhinosinusitis with nasal polyps", 36, 6.7),
                          FieldsAre("HER2-low breast cancer", 29, 5.4),
                          FieldsAre("Hodgkin lymphoma", 23, 4.3),
                          FieldsAre("Hidradenitis suppurativa", 20, 3.7)));
  ASSERT_GE(n.top_non_cancer_indications.size(), 3u);
  EXPECT_EQ(n.top_non_cancer_indications[0].name, "Chronic rhinosinusitis with nasal polyps");
  EXPECT_EQ(n.top_non_cancer_indications[0].count, 36);
  EXPECT_EQ(n.top_non_cancer_indications[1].name, "Hidradenitis suppurativa");
  EXPECT_EQ(n.top_non_cancer_indications[2].name, "Achondroplasia");
  EXPECT_EQ(n.top_non_cancer_indications[2].count, 14);
  // Four indications tie at 9; byte order of the names decides.
  ASSERT_EQ(n.top_non_cancer_indications.size(), 5u);
  EXPECT_EQ(n.top_non_cancer_indications[3].name, "Crohn's disease");
  EXPECT_EQ(n.top_non_cancer_indications[4].name, "Eosinophilic granulomatosis with polyangiitis");
}

TEST_F(FixtureReport, RegionsSumToNationalAndMatchTheirRows) {
  const ReportSection& h = report_.regions[0];
  EXPECT_EQ(h.total, 159);
  EXPECT_EQ(CountOf(h.outcome, "recommended"), 109);
  EXPECT_EQ(CountOf(h.outcome, "not_recommended"), 43);
  EXPECT_EQ(CountOf(h.outcome, "not_concluded"), 7);
  EXPECT_EQ(CountOf(h.cancer, "yes"), 111);
  EXPECT_TRUE(h.region.empty());
  ASSERT_GE(h.top_drugs.size(), 2u);
  EXPECT_THAT(h.top_drugs[0], FieldsAre("Trifluridine/tipiracil", 11, 6.9));
  EXPECT_THAT(h.top_drugs[1], FieldsAre("Trastuzumab deruxtecan", 10, 6.3));
  const ReportSection& nj = report_.regions[4];
  EXPECT_EQ(nj.total, 48);
  EXPECT_EQ(CountOf(nj.outcome, "recommended"), 28);
  EXPECT_EQ(CountOf(nj.outcome, "not_recommended"), 14);
  EXPECT_EQ(CountOf(nj.outcome, "not_concluded"), 6);
  int64_t sum = 0;
  for (const ReportSection& r : report_.regions) sum += r.total;
  EXPECT_EQ(sum, 541);
}

TEST_F(FixtureReport, JsonHasTheIssueShape) {
  const nlohmann::json j = nlohmann::json::parse(RenderReportJson(report_));
  EXPECT_EQ(j["year"], 2024);
  EXPECT_EQ(j["as_of"], "2025-04-07T00:00:00+02:00");
  EXPECT_EQ(j["data_source_date"], "2025-04-07");
  EXPECT_EQ(j["total"], 541);
  EXPECT_EQ(j["per_year"], nlohmann::json::parse("[[2024, 541]]"));
  EXPECT_EQ(j["outcome"], nlohmann::json::parse(
                              R"({"recommended": 371, "not_recommended": 143, "not_concluded": 27, "open": 0})"));
  EXPECT_EQ(j["cancer"], nlohmann::json::parse(R"({"yes": 385, "no": 156})"));
  EXPECT_EQ(j["marketed_dk"], nlohmann::json::parse(R"({"yes": 436, "no": 105})"));
  EXPECT_EQ(j["medicinraadet_status"],
            nlohmann::json::parse(R"({"not_assessed": 306, "under_assessment": 102, "rejected": 110,
                                      "recommended_outside_criteria": 23})"));
  EXPECT_EQ(j["ema_status"], nlohmann::json::parse(R"({"on_label": 348, "off_label": 183, "unknown": 10})"));
  EXPECT_EQ(j["region"]["hovedstaden"], 159);
  EXPECT_EQ(j["top_drugs"][0], nlohmann::json::parse(R"(["Trifluridine/tipiracil", 49])"));
  EXPECT_EQ(j["top_indications"][0], nlohmann::json::parse(R"(["Metastatic colorectal cancer", 68])"));
  EXPECT_EQ(j["top_non_cancer_indications"][0],
            nlohmann::json::parse(R"(["Chronic rhinosinusitis with nasal polyps", 36])"));
  EXPECT_DOUBLE_EQ(j["percent"]["outcome"]["recommended"].get<double>(), 68.6);
  EXPECT_DOUBLE_EQ(j["percent"]["top_indications"][0][1].get<double>(), 12.6);
  ASSERT_TRUE(j["regions"].contains("hovedstaden"));
  EXPECT_EQ(j["regions"]["hovedstaden"]["total"], 159);
  EXPECT_EQ(j["regions"]["nordjylland"]["outcome"]["not_concluded"], 6);
  EXPECT_FALSE(j["regions"]["hovedstaden"].contains("region"));
  EXPECT_EQ(j["regions"].size(), 5u);
}

TEST_F(FixtureReport, CsvCarriesEveryFigureAndQuotesNames) {
  const std::string csv = RenderReportCsv(report_);
  EXPECT_EQ(csv.rfind("scope,figure,key,count,percent\r\n", 0), 0u);
  EXPECT_NE(csv.find("national,data_source_date,2025-04-07,,\r\n"), std::string::npos);
  EXPECT_NE(csv.find("national,total,,541,\r\n"), std::string::npos);
  EXPECT_NE(csv.find("national,outcome,recommended,371,68.6\r\n"), std::string::npos);
  EXPECT_NE(csv.find("national,top_drugs,Trifluridine/tipiracil,49,9.1\r\n"), std::string::npos);
  EXPECT_NE(csv.find("hovedstaden,total,,159,\r\n"), std::string::npos);
  EXPECT_NE(csv.find("national,per_year,2024,541,\r\n"), std::string::npos);
}

TEST_F(FixtureReport, AsOfMidYearCountsLaterDecisionsAsOpen) {
  absl::StatusOr<AnnualReport> r =
      BuildAnnualReport(AggregateCases(cases_, 2024, CphTime(2024, 6, 30, 12)));
  ASSERT_TRUE(r.ok());
  // Figures computed independently from the fixture rows.
  EXPECT_EQ(r->national.total, 283);
  EXPECT_EQ(CountOf(r->national.outcome, "recommended"), 162);
  EXPECT_EQ(CountOf(r->national.outcome, "not_recommended"), 62);
  EXPECT_EQ(CountOf(r->national.outcome, "not_concluded"), 18);
  EXPECT_EQ(CountOf(r->national.outcome, "open"), 41);
  EXPECT_EQ(r->data_source_date, absl::CivilDay(2024, 6, 30));
}

TEST_F(FixtureReport, OtherYearIsEmptyButSeriesStartsAtFirstDataYear) {
  absl::StatusOr<AnnualReport> r = BuildAnnualReport(AggregateCases(cases_, 2025, CphTime(2026, 1, 1)));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->national.total, 0);
  EXPECT_THAT(r->national.per_year, ElementsAre(std::pair<int, int64_t>(2024, 541),
                                                std::pair<int, int64_t>(2025, 0)));
  EXPECT_DOUBLE_EQ(PercentOf(r->national.outcome, "recommended"), 0);
  EXPECT_TRUE(r->national.top_drugs.empty());
}

ReportCase Case(int region, absl::CivilDay submitted, std::string drug, std::string indication,
                bool cancer, int outcome, absl::Time known_at) {
  ReportCase c;
  c.region = region;
  c.submitted_on = submitted;
  c.drug_name = std::move(drug);
  c.indication = std::move(indication);
  c.cancer = cancer;
  c.marketed_dk = region % 2 == 1;
  c.medicinraadet = 1 + region % 4;
  c.ema = 1 + region % 3;
  c.outcome = outcome;
  c.known_at = known_at;
  return c;
}

TEST(AnnualReport, SmallMultiYearSetWithGapsAndLateDecision) {
  std::vector<ReportCase> cases = {
      Case(1, absl::CivilDay(2019, 3, 1), "Drug A", "Ind X", true, 1, CphTime(2019, 4, 1)),
      Case(2, absl::CivilDay(2021, 5, 1), "Drug A", "Ind X", true, 2, CphTime(2021, 6, 1)),
      Case(2, absl::CivilDay(2021, 12, 31), "Drug B", "Ind Y", false, 1, CphTime(2022, 1, 5)),
      Case(3, absl::CivilDay(2021, 7, 1), "Drug B", "Ind Y", false, 3, CphTime(2021, 7, 2)),
      Case(3, absl::CivilDay(2021, 8, 1), "drug b", "Ind Z", false, 1, CphTime(2022, 3, 1)),  // decided after as_of
      Case(5, absl::CivilDay(2022, 1, 1), "Drug C", "Ind X", true, 0, absl::InfiniteFuture()),  // next year
  };
  absl::StatusOr<AnnualReport> r = BuildAnnualReport(AggregateCases(cases, 2021, CphTime(2022, 2, 1)));
  ASSERT_TRUE(r.ok());
  const ReportSection& n = r->national;
  EXPECT_EQ(n.total, 4);
  EXPECT_THAT(n.per_year, ElementsAre(std::pair<int, int64_t>(2019, 1), std::pair<int, int64_t>(2020, 0),
                                      std::pair<int, int64_t>(2021, 4)));
  EXPECT_EQ(CountOf(n.outcome, "recommended"), 1);
  EXPECT_EQ(CountOf(n.outcome, "not_recommended"), 1);
  EXPECT_EQ(CountOf(n.outcome, "not_concluded"), 1);
  EXPECT_EQ(CountOf(n.outcome, "open"), 1);
  EXPECT_DOUBLE_EQ(PercentOf(n.outcome, "open"), 25.0);
  // Names as stored: "drug b" and "Drug B" are different names.
  EXPECT_THAT(n.top_drugs, ElementsAre(FieldsAre("Drug B", 2, 50.0), FieldsAre("Drug A", 1, 25.0),
                                       FieldsAre("drug b", 1, 25.0)));
  EXPECT_THAT(n.top_non_cancer_indications,
              ElementsAre(FieldsAre("Ind Y", 2, 50.0), FieldsAre("Ind Z", 1, 25.0)));
  EXPECT_EQ(CountOf(n.region, "hovedstaden"), 0);
  EXPECT_EQ(CountOf(n.region, "midtjylland"), 2);
  EXPECT_EQ(CountOf(n.region, "syddanmark"), 2);
  // Regional series share the national first year.
  EXPECT_THAT(r->regions[0].per_year,
              ElementsAre(std::pair<int, int64_t>(2019, 1), std::pair<int, int64_t>(2020, 0),
                          std::pair<int, int64_t>(2021, 0)));
  EXPECT_EQ(r->regions[2].total, 2);
  EXPECT_EQ(CountOf(r->regions[2].outcome, "open"), 1);
}

TEST(AnnualReport, TopNCutsAfterOrdering) {
  std::vector<ReportCase> cases;
  for (int i = 0; i < 8; ++i) {
    for (int k = 0; k <= i; ++k) {
      cases.push_back(Case(1, absl::CivilDay(2023, 1, 1), std::string(1, static_cast<char>('A' + i)), "I", true, 1,
                           CphTime(2023, 1, 2)));
    }
  }
  absl::StatusOr<AnnualReport> r = BuildAnnualReport(AggregateCases(cases, 2023, CphTime(2024, 1, 1)), 3);
  ASSERT_TRUE(r.ok());
  EXPECT_THAT(r->national.top_drugs,
              ElementsAre(FieldsAre("H", 8, testing::_), FieldsAre("G", 7, testing::_),
                          FieldsAre("F", 6, testing::_)));
}

TEST(AnnualReport, RejectsOutOfRangeCells) {
  ReportInput in;
  in.year = 2024;
  in.categories.push_back({7, 0, true, true, 1, 1, 3});
  EXPECT_EQ(BuildAnnualReport(in).status().code(), absl::StatusCode::kInvalidArgument);
  in.categories = {{1, 0, true, true, 9, 1, 3}};
  EXPECT_EQ(BuildAnnualReport(in).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(AnnualReport, PercentRoundsToOneDecimal) {
  EXPECT_DOUBLE_EQ(Percent(371, 541), 68.6);
  EXPECT_DOUBLE_EQ(Percent(1, 3), 33.3);
  EXPECT_DOUBLE_EQ(Percent(2, 3), 66.7);
  EXPECT_DOUBLE_EQ(Percent(5, 0), 0);
}

}  // namespace
}  // namespace medkoord::assessment
