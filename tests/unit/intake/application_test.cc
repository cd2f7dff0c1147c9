#include "services/intake/application.h"

#include <fstream>
#include <sstream>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "services/intake/import_parser.h"

namespace medkoord::intake {
namespace {

using ::testing::ElementsAre;
using ::testing::Field;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

constexpr csv::Date kToday{2025, 4, 7};

RawApplication Valid() {
  RawApplication r;
  r.case_ref = "2024-0001";
  r.region = "syddanmark";
  r.submitted_on = "2024-03-04";
  r.drug_name = "Trifluridine/tipiracil";
  r.atc_code = "L01BC59";
  r.indication = "Metastatic colorectal cancer";
  r.icd10 = "C18.9";
  r.cancer = "yes";
  r.marketed_dk = "yes";
  r.medicinraadet_status = "not_assessed";
  r.ema_status = "on_label";
  r.outcome = "recommended";
  r.decided_on = "2024-03-20";
  return r;
}

std::vector<std::string> FieldsOf(const std::vector<Violation>& v) {
  std::vector<std::string> out;
  for (const auto& x : v) out.push_back(x.field);
  return out;
}

TEST(ParseApplication, AcceptsAValidImportRow) {
  ParsedApplication p = ParseApplication(Valid(), ParseMode::kImport, kToday);
  EXPECT_THAT(p.violations, IsEmpty());
  EXPECT_EQ(p.record.state, "decided");
  EXPECT_TRUE(p.record.cancer);
  ASSERT_TRUE(p.record.decided_on.has_value());
  EXPECT_EQ(csv::FormatIsoDate(*p.record.decided_on), "2024-03-20");
}

TEST(ParseApplication, ReportsEveryBadFieldAtOnce) {
  RawApplication r;
  r.region = "jylland";
  r.submitted_on = "2026-01-01";  // after today
  r.atc_code = "L01E";
  r.icd10 = "XYZ";
  r.cancer = "ja";
  r.medicinraadet_status = "maybe";
  ParsedApplication p = ParseApplication(r, ParseMode::kSubmission, kToday);
  EXPECT_THAT(FieldsOf(p.violations),
              UnorderedElementsAre("region", "submitted_on", "drug_name", "atc_code", "indication", "icd10", "cancer",
                                   "marketed_dk", "medicinraadet_status", "ema_status"));
  for (const auto& v : p.violations) {
    if (v.field == "atc_code") EXPECT_EQ(v.reason, "`L01E` is an ATC group, not a 7-character substance code");
    if (v.field == "submitted_on") EXPECT_THAT(v.reason, HasSubstr("in the future"));
  }
}

TEST(ParseApplication, SubmissionIgnoresOutcome) {
  RawApplication r = Valid();
  r.outcome = "maybe";
  r.decided_on = "x";
  ParsedApplication p = ParseApplication(r, ParseMode::kSubmission, kToday);
  EXPECT_THAT(p.violations, IsEmpty());
  EXPECT_EQ(p.record.state, "open");
  EXPECT_EQ(p.record.outcome, "");
}

TEST(ParseApplication, DecisionDateRules) {
  RawApplication r = Valid();
  r.decided_on = "";
  EXPECT_THAT(FieldsOf(ParseApplication(r, ParseMode::kImport, kToday).violations), ElementsAre("decided_on"));
  r.decided_on = "2024-03-01";  // before submitted_on
  EXPECT_THAT(FieldsOf(ParseApplication(r, ParseMode::kImport, kToday).violations), ElementsAre("decided_on"));
  r.outcome = "";
  r.decided_on = "2024-03-20";  // open with a date
  EXPECT_THAT(FieldsOf(ParseApplication(r, ParseMode::kImport, kToday).violations), ElementsAre("decided_on"));
  r.outcome = "not_concluded";
  r.decided_on = "";  // allowed: not concluded need not have a date
  EXPECT_THAT(ParseApplication(r, ParseMode::kImport, kToday).violations, IsEmpty());
}

TEST(ToRaw, WithdrawnIsNotConcluded) {
  ParsedApplication p = ParseApplication(Valid(), ParseMode::kSubmission, kToday);
  ASSERT_THAT(p.violations, IsEmpty());
  p.record.state = kStateWithdrawn;
  EXPECT_EQ(ToRaw(p.record).outcome, "not_concluded");
  EXPECT_EQ(ToRaw(p.record).decided_on, "");
  // Parsed back as an import row it is a valid closed case.
  RawApplication back = ToRaw(p.record);
  back.case_ref = "A-1";
  EXPECT_THAT(ParseApplication(back, ParseMode::kImport, kToday).violations, IsEmpty());
}

TEST(ParseApplication, EchoedValuesAreShort) {
  RawApplication r = Valid();
  r.region = std::string(5000, 'x');
  auto v = ParseApplication(r, ParseMode::kImport, kToday).violations;
  ASSERT_EQ(v.size(), 1u);
  EXPECT_LT(v[0].reason.size(), 200u);
  EXPECT_EQ(v[0].reason.substr(0, 44), "`" + std::string(40, 'x') + "…");
}

TEST(ParseApplication, TextBounds) {
  RawApplication r = Valid();
  r.drug_name = std::string(201, 'x');
  r.indication = "two\nlines";
  r.region_ref = std::string(65, 'r');
  EXPECT_THAT(FieldsOf(ParseApplication(r, ParseMode::kImport, kToday).violations),
              UnorderedElementsAre("drug_name", "indication", "region_ref"));
  r = Valid();
  r.drug_name = std::string(200, 'x');
  EXPECT_THAT(ParseApplication(r, ParseMode::kImport, kToday).violations, IsEmpty());
  // Characters, not bytes: 200 Danish letters are fine.
  r.drug_name.clear();
  for (int i = 0; i < 200; ++i) r.drug_name += "æ";
  EXPECT_THAT(ParseApplication(r, ParseMode::kImport, kToday).violations, IsEmpty());
}

TEST(ApplicationName, RoundTrips) {
  EXPECT_EQ(ApplicationName("syddanmark", "A-2024-0001"), "regions/syddanmark/applications/A-2024-0001");
  auto parts = ParseApplicationName("regions/syddanmark/applications/A-2024-0001");
  ASSERT_TRUE(parts.has_value());
  EXPECT_EQ(parts->region, "syddanmark");
  EXPECT_EQ(parts->case_ref, "A-2024-0001");
  EXPECT_FALSE(ParseApplicationName("regions/jylland/applications/A"));
  EXPECT_FALSE(ParseApplicationName("regions/syddanmark/cases/A"));
  EXPECT_FALSE(ParseApplicationName("regions/syddanmark/applications/a/b"));
}

TEST(ForumCsvFormat, HeaderChecks) {
  std::string error;
  EXPECT_TRUE(ForumCsvFormat::FromHeader(ForumCsvFormat::Columns(false), &error));
  EXPECT_TRUE(ForumCsvFormat::FromHeader(ForumCsvFormat::Columns(true), &error));
  auto cols = ForumCsvFormat::Columns(false);
  cols.erase(cols.begin() + 3);
  cols.push_back("colour");
  EXPECT_FALSE(ForumCsvFormat::FromHeader(cols, &error));
  EXPECT_THAT(error, HasSubstr("unknown column `colour`"));
  EXPECT_THAT(error, HasSubstr("missing column(s) drug_name"));
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The parser's share of the bad-rows fixture: every per-row rule except the
// repeated case_ref (line 9), which needs the rows before it (the store's).
TEST(ApplicationCsvParser, BadRowsFixture) {
  const std::string file = ReadFile(MEDKOORD_FIXTURES "/forum_cases_bad_rows.csv");
  ASSERT_FALSE(file.empty());
  for (size_t chunk : {size_t{1}, size_t{17}, file.size()}) {
    ApplicationCsvParser parser(kToday);
    for (size_t i = 0; i < file.size(); i += chunk) parser.Feed(std::string_view(file).substr(i, chunk));
    parser.Finish();
    ASSERT_FALSE(parser.fatal()) << *parser.fatal();
    EXPECT_EQ(parser.rows_read(), 12);
    std::vector<int64_t> lines;
    for (const auto& row : parser.rows()) lines.push_back(row.line);
    EXPECT_THAT(lines, ElementsAre(2, 9, 12));
    std::vector<std::pair<int64_t, std::string>> errors;
    for (const auto& e : parser.errors()) errors.push_back({e.line, e.column});
    EXPECT_THAT(errors, ElementsAre(std::pair<int64_t, std::string>{3, "region"},
                                    std::pair<int64_t, std::string>{4, "atc_code"},
                                    std::pair<int64_t, std::string>{5, "submitted_on"},
                                    std::pair<int64_t, std::string>{6, "decided_on"},
                                    std::pair<int64_t, std::string>{7, "cancer"},
                                    std::pair<int64_t, std::string>{8, "outcome"},
                                    std::pair<int64_t, std::string>{10, ""},
                                    std::pair<int64_t, std::string>{11, "decided_on"},
                                    std::pair<int64_t, std::string>{13, "icd10"}));
    EXPECT_THAT(parser.errors()[6].reason, HasSubstr("14 fields where the header has 13"));
  }
}

TEST(ApplicationCsvParser, FullFixtureParsesAndRoundTrips) {
  const std::string file = ReadFile(MEDKOORD_FIXTURES "/forum_cases_2024.csv");
  ApplicationCsvParser parser(kToday);
  parser.Feed(file);
  parser.Finish();
  ASSERT_FALSE(parser.fatal());
  EXPECT_THAT(parser.errors(), IsEmpty());
  ASSERT_EQ(parser.rows().size(), 541u);
  std::string out;
  ForumCsvFormat::AppendHeader(out, false);
  for (const auto& row : parser.rows()) ForumCsvFormat::AppendRow(out, row.record, false);
  // Byte for byte the Forum's file (CRLF, quotes only where needed).
  EXPECT_EQ(out.size(), file.size());
  EXPECT_TRUE(out == file);
}

TEST(ApplicationCsvParser, FatalProblems) {
  {
    ApplicationCsvParser parser(kToday);
    parser.Finish();
    EXPECT_THAT(*parser.fatal(), HasSubstr("empty"));
  }
  {
    ApplicationCsvParser parser(kToday);
    parser.Feed("case_ref;region\n");
    EXPECT_THAT(*parser.fatal(), HasSubstr("line 1: the header is not the Forum export format"));
  }
  {
    ApplicationCsvParser parser(kToday, 1024);
    std::string file;
    ForumCsvFormat::AppendHeader(file, false);
    file += std::string(5000, 'x') + "\n";
    parser.Feed(file);
    EXPECT_THAT(*parser.fatal(), HasSubstr("line 2: record longer than 1024 bytes"));
  }
  {
    ApplicationCsvParser parser(kToday);
    std::string file;
    ForumCsvFormat::AppendHeader(file, false);
    file += "\"2024-0001,unterminated\n";
    parser.Feed(file);
    parser.Finish();
    EXPECT_THAT(*parser.fatal(), HasSubstr("line 2: a quoted field is not closed"));
  }
}

TEST(ApplicationCsvParser, BadEncodingNamesLineAndColumn) {
  std::string file;
  ForumCsvFormat::AppendHeader(file, false);
  file += "2024-0001,syddanmark,2024-03-04,Caf\xE9,L01BC59,X,C18.9,yes,yes,not_assessed,on_label,,\n";
  ApplicationCsvParser parser(kToday);
  parser.Feed(file);
  parser.Finish();
  ASSERT_EQ(parser.errors().size(), 1u);
  EXPECT_EQ(parser.errors()[0].line, 2);
  EXPECT_EQ(parser.errors()[0].column, "drug_name");
  EXPECT_EQ(parser.errors()[0].reason, "not valid UTF-8");
  EXPECT_EQ(parser.errors()[0].case_ref, "2024-0001");
}

// Found by the fuzzer: a broken case_ref must not be echoed (the response's
// strings must be UTF-8).
TEST(ApplicationCsvParser, BrokenCaseRefIsNotEchoed) {
  std::string file;
  ForumCsvFormat::AppendHeader(file, false);
  file += "BAD-\xC3,syddanmark,2024-03-04,Drug,L01BC59,X,C18.9,yes,yes,not_assessed,on_label,,\n";
  ApplicationCsvParser parser(kToday);
  parser.Feed(file);
  parser.Finish();
  ASSERT_EQ(parser.errors().size(), 1u);
  EXPECT_EQ(parser.errors()[0].column, "case_ref");
  EXPECT_EQ(parser.errors()[0].case_ref, "");
}

}  // namespace
}  // namespace medkoord::intake
