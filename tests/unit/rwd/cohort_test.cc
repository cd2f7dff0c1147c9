#include "services/rwd/cohort.h"

#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace medkoord::rwd {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

const std::string kKey = "0123456789abcdef0123456789abcdef-test-key";

std::string ReadFixture(const std::string& name) {
  std::ifstream in(std::string(MEDKOORD_FIXTURES_DIR) + "/" + name, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Pseudonymiser MakePseudonymiser(const std::string& key = kKey) {
  return *Pseudonymiser::Create(key);
}

struct Uploaded {
  std::vector<CohortRow> rows;
  std::vector<RowIssue> errors, warnings;
  int64_t read = 0, accepted = 0, rejected = 0;
  nlohmann::json report;
};

// Feeds `csv` in chunks of `chunk` bytes, as a client stream would.
Uploaded Upload(const std::string& csv, size_t chunk, const Pseudonymiser& p,
                std::optional<absl::CivilDay> data_cut = std::nullopt) {
  CohortUpload upload(p, data_cut);
  Uploaded out;
  std::vector<CohortRow> batch;
  for (size_t i = 0; i < csv.size(); i += chunk) {
    EXPECT_TRUE(upload.Feed(std::string_view(csv).substr(i, chunk), batch).ok());
    for (auto& r : batch) out.rows.push_back(std::move(r));
    batch.clear();
  }
  EXPECT_TRUE(upload.Finish(batch).ok());
  for (auto& r : batch) out.rows.push_back(std::move(r));
  out.report = upload.Report("cohorts/1");
  out.errors = upload.errors();
  out.warnings = upload.warnings();
  out.read = upload.rows_read();
  out.accepted = upload.rows_accepted();
  out.rejected = upload.rows_rejected();
  return out;
}

TEST(CprTest, BothNotationsAndDates) {
  EXPECT_TRUE(IsValidCpr("010160-1234"));
  EXPECT_TRUE(IsValidCpr("0101601234"));
  EXPECT_FALSE(IsValidCpr("12345"));
  EXPECT_FALSE(IsValidCpr("310260-1234"));   // 31 February
  EXPECT_FALSE(IsValidCpr("011360-1234"));   // month 13
  EXPECT_FALSE(IsValidCpr("01016-01234"));   // dash in the wrong place
  EXPECT_FALSE(IsValidCpr("010160--1234"));
  // 29 February: the 7th digit decides the century, hence the leap year.
  EXPECT_TRUE(IsValidCpr("290200-4123"));    // 2000, a leap year
  EXPECT_FALSE(IsValidCpr("290200-2123"));   // 1900, not one
  EXPECT_TRUE(IsValidCpr("290296-1123"));    // 1996
}

TEST(CprTest, ClassifyPatientRef) {
  auto cpr = ClassifyPatientRef("010160-1234");
  ASSERT_TRUE(cpr.ok());
  EXPECT_TRUE(cpr->is_cpr);
  EXPECT_EQ(cpr->value, "0101601234");

  auto pseudonym = ClassifyPatientRef("P-c88f63d6");
  ASSERT_TRUE(pseudonym.ok());
  EXPECT_FALSE(pseudonym->is_cpr);
  EXPECT_EQ(pseudonym->value, "P-c88f63d6");

  auto bad = ClassifyPatientRef("12345");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()), Not(HasSubstr("12345")));
  EXPECT_FALSE(ClassifyPatientRef("0101-601234").ok());
  EXPECT_FALSE(ClassifyPatientRef("").ok());
}

TEST(PseudonymTest, BothNotationsGiveOnePseudonymUnderOneKey) {
  Pseudonymiser p = MakePseudonymiser();
  std::string dashed = p.PatientKey(*ClassifyPatientRef("010160-1234"));
  std::string plain = p.PatientKey(*ClassifyPatientRef("0101601234"));
  EXPECT_EQ(dashed, plain);
  EXPECT_EQ(dashed.size(), 4u + 64u);
  EXPECT_EQ(dashed.rfind("cpr:", 0), 0u);
  EXPECT_EQ(dashed.find("0101601234"), std::string::npos);
  EXPECT_EQ(dashed.find("010160"), std::string::npos);

  // Another key, another pseudonym: nobody without the key can link them.
  Pseudonymiser other = MakePseudonymiser(kKey + "x");
  EXPECT_NE(other.PatientKey(*ClassifyPatientRef("0101601234")), dashed);
  // Another person, another pseudonym.
  EXPECT_NE(p.PatientKey(*ClassifyPatientRef("0101601235")), dashed);
  // A source pseudonym is kept as given.
  EXPECT_EQ(p.PatientKey(*ClassifyPatientRef("P-1")), "ref:P-1");
  EXPECT_FALSE(Pseudonymiser::Create("short").ok());
}

TEST(HeaderTest, ReportsEveryMissingColumnAtOnce) {
  auto layout = ParseHeader({"patient_ref", "arm", "age", "age"});
  ASSERT_FALSE(layout.ok());
  std::string message(layout.status().message());
  EXPECT_THAT(message, HasSubstr("header.index_date"));
  EXPECT_THAT(message, HasSubstr("header.death_date"));
  EXPECT_THAT(message, HasSubstr("header.progression_date"));
  EXPECT_THAT(message, HasSubstr("header.last_contact_date"));
  EXPECT_THAT(message, HasSubstr("header.age"));
}

std::vector<std::string> Describe(const std::vector<RowIssue>& issues) {
  std::vector<std::string> out;
  for (const RowIssue& i : issues) out.push_back(std::to_string(i.line) + " " + i.field);
  return out;
}

// fixtures/README.md, "rwd_cohort_bad_rows.csv": lines 2 and 11 are stored,
// every other line is rejected with exactly this column.
TEST(BadRowsTest, RejectionsAreExactlyTheFixtureReadmes) {
  Pseudonymiser p = MakePseudonymiser();
  const std::string csv = ReadFixture("rwd_cohort_bad_rows.csv");
  for (size_t chunk : {csv.size(), size_t{1}, size_t{7}, size_t{64}}) {
    SCOPED_TRACE(chunk);
    Uploaded up = Upload(csv, chunk, p);
    EXPECT_EQ(up.read, 10);
    EXPECT_EQ(up.accepted, 2);
    EXPECT_EQ(up.rejected, 8);
    EXPECT_THAT(Describe(up.errors),
                ElementsAre("3 death_date", "4 last_contact_date", "5 index_date",
                            "6 patient_ref", "7 progression_date", "8 patient_ref", "9 arm",
                            "10 last_contact_date"));
    ASSERT_EQ(up.rows.size(), 2u);
    EXPECT_EQ(up.rows[0].line, 2);
    EXPECT_EQ(up.rows[1].line, 11);
    EXPECT_THAT(up.errors[0].reason, HasSubstr("before `index_date`"));
    EXPECT_THAT(up.errors[1].reason, HasSubstr("required"));
    EXPECT_THAT(up.errors[2].reason, HasSubstr("2022-13-10"));
    EXPECT_THAT(up.errors[3].reason, HasSubstr("not a CPR number"));
    EXPECT_THAT(up.errors[4].reason, HasSubstr("after `death_date`"));
    EXPECT_THAT(up.errors[5].reason, HasSubstr("same patient as line 2"));
    EXPECT_THAT(up.errors[6].reason, HasSubstr("required"));
    EXPECT_THAT(up.errors[7].reason, HasSubstr("before `index_date`"));
    for (const RowIssue& e : up.errors) {
      // No reason ever repeats a patient identifier.
      EXPECT_THAT(e.reason, Not(HasSubstr("12345")));
      EXPECT_THAT(e.reason, Not(HasSubstr("-1234")));
    }
    // Line 11: `abc` is no number; accepted, counted as missing and listed.
    EXPECT_THAT(Describe(up.warnings), ElementsAre("11 age"));
    EXPECT_EQ(up.rows[1].covariates[0], "abc");
    bool listed = false;
    for (const auto& issue : up.report["value_issues"]) {
      if (issue["variable"] == "age" && issue["kind"] == "not_a_number") {
        listed = true;
        EXPECT_EQ(issue["count"], 1);
        EXPECT_EQ(issue["lines"], nlohmann::json::array({11}));
      }
    }
    EXPECT_TRUE(listed);
    const auto& overall = up.report["overall"][0];
    EXPECT_EQ(overall["patients"], 2);
    for (const auto& v : overall["variables"]) {
      if (v["variable"] == "age") {
        EXPECT_EQ(v["present"], 1);
        EXPECT_EQ(v["missing"], 1);
        EXPECT_DOUBLE_EQ(v["percent_complete"].get<double>(), 50.0);
      }
    }
  }
}

TEST(UploadTest, BrokenHeaderAndUnreadableFileAreErrors) {
  Pseudonymiser p = MakePseudonymiser();
  CohortUpload upload(p, std::nullopt);
  std::vector<CohortRow> batch;
  EXPECT_EQ(upload.Feed("patient_ref,arm\n1,2\n", batch).code(),
            absl::StatusCode::kInvalidArgument);

  CohortUpload empty(p, std::nullopt);
  EXPECT_EQ(empty.Finish(batch).code(), absl::StatusCode::kInvalidArgument);

  CohortUpload open_quote(p, std::nullopt);
  ASSERT_TRUE(open_quote
                  .Feed("patient_ref,arm,index_date,death_date,progression_date,last_contact_date\n"
                        "P-1,\"chemo,2022-01-01,,,2023-01-01\n",
                        batch)
                  .ok());
  EXPECT_EQ(open_quote.Finish(batch).code(), absl::StatusCode::kInvalidArgument);
}

TEST(UploadTest, RemarksOnAcceptedRows) {
  Pseudonymiser p = MakePseudonymiser();
  std::string csv =
      "patient_ref,arm,index_date,death_date,progression_date,last_contact_date,source,age,ecog\n"
      "P-1,a,2022-01-01,,,2022-01-01,lpr,17,1\n"           // 0 days, age < 18
      "P-2,a,2022-01-01,2022-06-01,,2022-07-01,lpr,60,7\n"  // contact after death, ecog 7
      "P-3,b,2022-01-01,,,2027-01-01,,61,2.5\n";            // after the data cut, ecog 2.5
  Uploaded up = Upload(csv, 5, p, absl::CivilDay(2026, 6, 30));
  EXPECT_EQ(up.accepted, 3);
  EXPECT_THAT(Describe(up.warnings),
              ElementsAre("2 last_contact_date", "3 last_contact_date", "4 last_contact_date"));
  std::map<std::string, int64_t> kinds;
  for (const auto& issue : up.report["value_issues"]) {
    kinds[issue["variable"].get<std::string>() + "/" + issue["kind"].get<std::string>()] +=
        issue["count"].get<int64_t>();
  }
  EXPECT_EQ(kinds["age/implausible"], 1);
  EXPECT_EQ(kinds["ecog/out_of_range"], 2);
  EXPECT_EQ(kinds["last_contact_date/implausible"], 3);
  ASSERT_EQ(up.report["by_source"].size(), 2u);
  EXPECT_EQ(up.report["by_source"][0]["key"], "");
  EXPECT_EQ(up.report["by_source"][1]["key"], "lpr");
  EXPECT_EQ(up.report["by_source"][1]["patients"], 2);
}

TEST(UploadTest, NoCprNumberOutsidePatientRefAndNoneEchoed) {
  Pseudonymiser p = MakePseudonymiser();
  std::string csv =
      "patient_ref,arm,index_date,death_date,progression_date,last_contact_date,note\n"
      "P-1,010160-1234,2022-01-01,,,2023-01-01,x\n"   // CPR as arm
      "P-2,a,2022-01-01,,,2023-01-01,0101601234\n"     // CPR as covariate
      "P-3,a,010160-1234,,,2023-01-01,x\n"             // CPR as a date: not repeated
      "P-4,a,2022-02-30,,,2023-01-01,x\n";             // a date's shape: repeated
  Uploaded up = Upload(csv, 3, p);
  EXPECT_EQ(up.accepted, 0);
  EXPECT_THAT(Describe(up.errors), ElementsAre("2 arm", "3 note", "4 index_date", "5 index_date"));
  for (const RowIssue& e : up.errors) {
    EXPECT_THAT(e.reason, Not(HasSubstr("0101601234")));
    EXPECT_THAT(e.reason, Not(HasSubstr("010160-1234")));
  }
  EXPECT_THAT(up.errors[3].reason, HasSubstr("`2022-02-30`"));
}

TEST(UploadTest, InvalidUtf8InTheHeaderIsRefused) {
  CohortUpload upload(MakePseudonymiser(), std::nullopt);
  std::vector<CohortRow> batch;
  absl::Status s = upload.Feed("patient_ref,arm,\xff\n", batch);
  if (s.ok()) s = upload.Finish(batch);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
}

// Independent counts from the fixture, read naively (it has no quoting).
struct Expected {
  std::map<std::string, int64_t> patients, deaths, progressions, pfs_events;
  std::map<std::string, std::map<std::string, int64_t>> present;  // arm -> column -> count
  std::vector<int64_t> follow_up;
};

Expected Count(const std::string& csv) {
  Expected e;
  std::vector<std::string> lines = absl::StrSplit(csv, '\n', absl::SkipEmpty());
  std::vector<std::string> header = absl::StrSplit(lines[0], ',');
  for (size_t i = 1; i < lines.size(); ++i) {
    std::vector<std::string> f = absl::StrSplit(lines[i], ',');
    const std::string& arm = f[1];
    ++e.patients[arm];
    e.deaths[arm] += f[3].empty() ? 0 : 1;
    e.progressions[arm] += f[4].empty() ? 0 : 1;
    e.pfs_events[arm] += (f[3].empty() && f[4].empty()) ? 0 : 1;
    for (size_t c = 1; c < header.size(); ++c) e.present[arm][header[c]] += f[c].empty() ? 0 : 1;
    auto index = *ParseIsoDate(f[2]);
    auto end = *ParseIsoDate(f[3].empty() ? f[5] : f[3]);
    e.follow_up.push_back(end - index);
  }
  return e;
}

class PilotQualityTest : public ::testing::TestWithParam<std::string> {};

TEST_P(PilotQualityTest, ReportMatchesIndependentCounts) {
  const std::string csv = ReadFixture(GetParam());
  Expected e = Count(csv);
  Uploaded up = Upload(csv, 4096, MakePseudonymiser(), absl::CivilDay(2026, 6, 30));
  int64_t total = 0;
  for (const auto& [arm, n] : e.patients) total += n;
  EXPECT_EQ(up.accepted, total);
  EXPECT_EQ(up.rejected, 0);
  EXPECT_THAT(up.errors, IsEmpty());
  EXPECT_EQ(up.report["patients"], total);

  ASSERT_EQ(up.report["by_arm"].size(), e.patients.size());
  for (const auto& group : up.report["by_arm"]) {
    std::string arm = group["key"];
    EXPECT_EQ(group["patients"], e.patients[arm]) << arm;
    for (const auto& v : group["variables"]) {
      std::string name = v["variable"];
      EXPECT_EQ(v["present"], e.present[arm][name]) << arm << " " << name;
      EXPECT_EQ(v["present"].get<int64_t>() + v["missing"].get<int64_t>(), e.patients[arm]);
    }
  }
  for (const auto& events : up.report["events_by_arm"]) {
    std::string arm = events["arm"];
    EXPECT_EQ(events["patients"], e.patients[arm]);
    EXPECT_EQ(events["deaths"], e.deaths[arm]) << arm;
    EXPECT_EQ(events["progressions"], e.progressions[arm]) << arm;
    EXPECT_EQ(events["pfs_events"], e.pfs_events[arm]) << arm;
  }
  // Follow-up: R's quantile type 7 on the sorted days.
  std::vector<int64_t> days = e.follow_up;
  std::sort(days.begin(), days.end());
  auto q = [&](double p) {
    double h = (days.size() - 1) * p;
    size_t lo = static_cast<size_t>(h);
    double hi = lo + 1 < days.size() ? days[lo + 1] : days[lo];
    return days[lo] + (h - lo) * (hi - days[lo]);
  };
  const auto& fu = up.report["follow_up"];
  EXPECT_EQ(fu["n"], total);
  EXPECT_DOUBLE_EQ(fu["min"].get<double>(), days.front());
  EXPECT_DOUBLE_EQ(fu["max"].get<double>(), days.back());
  EXPECT_DOUBLE_EQ(fu["median"].get<double>(), q(0.5));
  EXPECT_DOUBLE_EQ(fu["q1"].get<double>(), q(0.25));
  EXPECT_DOUBLE_EQ(fu["q3"].get<double>(), q(0.75));
  // Numeric and categorical covariates as the analysis will read them.
  CohortUpload upload(MakePseudonymiser(), std::nullopt);
  std::vector<CohortRow> batch;
  ASSERT_TRUE(upload.Feed(csv, batch).ok());
  ASSERT_TRUE(upload.Finish(batch).ok());
  auto variables = upload.Variables();
  std::map<std::string, VariableKind> kinds(variables.begin(), variables.end());
  EXPECT_EQ(kinds["age"], VariableKind::kNumeric);
  EXPECT_EQ(kinds["sex"], VariableKind::kCategorical);
  EXPECT_EQ(kinds["arm"], VariableKind::kText);
  EXPECT_EQ(kinds["index_date"], VariableKind::kDate);
  EXPECT_EQ(kinds.count("patient_ref"), 0u);
}

INSTANTIATE_TEST_SUITE_P(Pilots, PilotQualityTest,
                         ::testing::Values("rwd_pilot1_cohort.csv", "rwd_pilot2_cohort.csv"));

TEST(PilotTest, BothNotationsInTheFixtureArePseudonymised) {
  const std::string csv = ReadFixture("rwd_pilot1_cohort.csv");
  Uploaded up = Upload(csv, 1000, MakePseudonymiser());
  int cpr = 0, ref = 0;
  for (const CohortRow& row : up.rows) {
    if (row.patient_key.rfind("cpr:", 0) == 0) {
      ++cpr;
      EXPECT_EQ(row.patient_key.size(), 68u);
      EXPECT_EQ(row.patient_key.find_first_not_of("0123456789abcdef", 4), std::string::npos);
    } else {
      ++ref;
      EXPECT_EQ(row.patient_key.rfind("ref:P-", 0), 0u);
    }
  }
  EXPECT_EQ(ref, 40);
  EXPECT_EQ(cpr, 380);
}

}  // namespace
}  // namespace medkoord::rwd
