// ImportApplications / ExportApplications against a real PostgreSQL: the
// Forum fixtures, re-imports, validate_only, round trips and broken files.

#include <gmock/gmock.h>

#include "tests/integration/intake/intake_test_env.h"

namespace medkoord::intake::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

struct RowError {
  int64_t line;
  std::string column;
  friend bool operator==(const RowError& a, const RowError& b) { return a.line == b.line && a.column == b.column; }
  friend std::ostream& operator<<(std::ostream& os, const RowError& e) { return os << e.line << ":" << e.column; }
};

std::vector<RowError> Errors(const v1::ImportApplicationsResponse& r) {
  std::vector<RowError> out;
  for (const auto& e : r.errors()) out.push_back({e.line(), e.column()});
  return out;
}

TEST_F(IntakeTest, ImportsTheForumFixtureAndReimportsNothing) {
  const std::string file = ReadFixture("forum_cases_2024.csv");
  v1::ImportApplicationsResponse first;
  grpc::Status s = Import(file, false, 4096, &first);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(first.rows_read(), 541);
  EXPECT_EQ(first.stored(), 541);
  EXPECT_EQ(first.rejected(), 0);
  EXPECT_EQ(first.errors_size(), 0);

  v1::GetApplicationRequest get;
  get.set_name("regions/nordjylland/applications/2024-0003");
  v1::Application app;
  ASSERT_TRUE(stub_->GetApplication(Ctx(Member(), "GetApplication").get(), get, &app).ok());
  EXPECT_EQ(app.source(), v1::APPLICATION_SOURCE_IMPORTED);
  EXPECT_EQ(app.state(), v1::APPLICATION_STATE_DECIDED);
  EXPECT_EQ(app.outcome(), v1::OUTCOME_NOT_RECOMMENDED);
  EXPECT_EQ(app.decided_on().day(), 5);

  // Same file again, in other chunks: nothing created, nothing updated.
  v1::ImportApplicationsResponse again;
  ASSERT_TRUE(Import(file, false, 977, &again).ok());
  EXPECT_EQ(again.stored(), 0);
  EXPECT_EQ(again.unchanged(), 541);
  EXPECT_EQ(again.rejected(), 0);
  EXPECT_EQ(ListAll(Member(), {}, 1000).size(), 541u);

  // One event per stored case, the decided ones registering as decided.
  ASSERT_EQ(*relay_->DeliverPending(), 541);
  auto events = assessment_->events();
  ASSERT_EQ(events.size(), 541u);
  EXPECT_TRUE(events[2].has_application_imported());
  EXPECT_EQ(events[2].application_imported().case_ref(), "2024-0003");
  EXPECT_EQ(events[2].application_imported().outcome(), av1::OUTCOME_NOT_RECOMMENDED);
  EXPECT_EQ(events[2].application_imported().decided_on().day(), 5);
  EXPECT_EQ(events[2].actor(), "forum-secretariat");
}

TEST_F(IntakeTest, BadRowsAreReportedWithLineColumnAndReason) {
  v1::ImportApplicationsResponse r;
  grpc::Status s = Import(ReadFixture("forum_cases_bad_rows.csv"), false, 100, &r);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(r.rows_read(), 12);
  EXPECT_EQ(r.stored(), 2);
  EXPECT_EQ(r.rejected(), 10);
  EXPECT_THAT(Errors(r), ElementsAre(RowError{3, "region"}, RowError{4, "atc_code"}, RowError{5, "submitted_on"},
                                     RowError{6, "decided_on"}, RowError{7, "cancer"}, RowError{8, "outcome"},
                                     RowError{9, "case_ref"}, RowError{10, ""}, RowError{11, "decided_on"},
                                     RowError{13, "icd10"}));
  EXPECT_THAT(r.errors(0).reason(), HasSubstr("`jylland` is not a region"));
  EXPECT_EQ(r.errors(1).reason(), "`L01E` is an ATC group, not a 7-character substance code");
  EXPECT_THAT(r.errors(2).reason(), HasSubstr("`2024-13-01` is not a date"));
  EXPECT_THAT(r.errors(3).reason(), HasSubstr("before submitted_on"));
  EXPECT_THAT(r.errors(4).reason(), HasSubstr("`ja` is not `yes`/`no`"));
  EXPECT_THAT(r.errors(5).reason(), HasSubstr("`maybe` is not an outcome"));
  EXPECT_EQ(r.errors(6).reason(), "`BAD-0001` already appears on line 2 with other content");
  EXPECT_THAT(r.errors(7).reason(), HasSubstr("14 fields where the header has 13"));
  EXPECT_THAT(r.errors(8).reason(), HasSubstr("required when the outcome is `recommended`"));
  EXPECT_THAT(r.errors(9).reason(), HasSubstr("`XYZ` is not an ICD-10 code"));

  std::vector<std::string> stored;
  for (const auto& a : ListAll(Secretariat(), {}, 100)) stored.push_back(a.case_ref());
  EXPECT_THAT(stored, ::testing::UnorderedElementsAre("BAD-0001", "BAD-0011"));
  v1::GetApplicationRequest get;
  get.set_name("regions/syddanmark/applications/BAD-0001");
  v1::Application first;
  ASSERT_TRUE(stub_->GetApplication(Ctx(Secretariat(), "GetApplication").get(), get, &first).ok());
  EXPECT_EQ(first.submitted_on().month(), 3);  // line 2's content, not line 9's
  EXPECT_EQ(*relay_->DeliverPending(), 2);
}

TEST_F(IntakeTest, ValidateOnlyStoresNothing) {
  v1::ImportApplicationsResponse checked;
  ASSERT_TRUE(Import(ReadFixture("forum_cases_bad_rows.csv"), true, 1 << 20, &checked).ok());
  EXPECT_TRUE(checked.validate_only());
  EXPECT_EQ(checked.stored(), 2);  // what the import would store
  EXPECT_EQ(checked.errors_size(), 10);
  EXPECT_TRUE(ListAll(Secretariat(), {}, 100).empty());
  EXPECT_EQ(*relay_->DeliverPending(), 0);
  v1::ImportApplicationsResponse real;
  ASSERT_TRUE(Import(ReadFixture("forum_cases_bad_rows.csv"), false, 1 << 20, &real).ok());
  EXPECT_EQ(real.stored(), 2);
}

TEST_F(IntakeTest, ExportRoundTrips) {
  const std::string file = ReadFixture("forum_cases_2024.csv");
  v1::ImportApplicationsResponse imported;
  ASSERT_TRUE(Import(file, false, 65536, &imported).ok());
  grpc::Status s;
  const std::string exported = Export({}, &s);
  ASSERT_TRUE(s.ok()) << s.error_message();
  // The Forum's own file back, byte for byte (CRLF, quoting, column order).
  EXPECT_EQ(exported.size(), file.size());
  EXPECT_TRUE(exported == file);

  // A submitted application with a region_ref exports with the optional column,
  // and that file imports into a fresh intake as the same cases.
  v1::Application a = ValidApplication();
  a.set_region_ref("SYD \"quoted\", ref");
  v1::Application created;
  ASSERT_TRUE(Submit(Secretariat(), a, "x", &created).ok());
  const std::string with_ref = Export({}, &s);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(with_ref.substr(0, with_ref.find('\r')), "case_ref,region_ref,region,submitted_on,drug_name,atc_code,"
                                                      "indication,icd10,cancer,marketed_dk,medicinraadet_status,"
                                                      "ema_status,outcome,decided_on");
  v1::ImportApplicationsResponse reimported;
  ASSERT_TRUE(Import(with_ref, false, 3000, &reimported).ok());
  EXPECT_EQ(reimported.rows_read(), 542);
  EXPECT_EQ(reimported.unchanged(), 542);
  EXPECT_EQ(reimported.stored(), 0);

  v1::ExportApplicationsRequest region_only;
  region_only.set_parent("regions/nordjylland");
  const std::string nord = Export(region_only, &s);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(std::count(nord.begin(), nord.end(), '\n'), 1 + 48);
}

TEST_F(IntakeTest, ConflictingReimportIsReportedAndChangesNothing) {
  v1::ImportApplicationsResponse r;
  const std::string header =
      "case_ref,region,submitted_on,drug_name,atc_code,indication,icd10,cancer,marketed_dk,"
      "medicinraadet_status,ema_status,outcome,decided_on\r\n";
  ASSERT_TRUE(Import(header + "X-1,syddanmark,2024-03-04,Drug,L01BC59,Ind,C18.9,yes,yes,not_assessed,on_label,,\r\n",
                     false, 1000, &r)
                  .ok());
  ASSERT_EQ(r.stored(), 1);
  // The case was decided since: the same open row is still the same case.
  v1::ApplyDecisionRequest decision;
  decision.set_event_id("e1");
  decision.set_application("regions/syddanmark/applications/X-1");
  decision.set_outcome(v1::OUTCOME_RECOMMENDED);
  decision.mutable_decided_on()->set_year(2024);
  decision.mutable_decided_on()->set_month(4);
  decision.mutable_decided_on()->set_day(1);
  v1::ApplyDecisionResponse applied;
  ASSERT_TRUE(internal_stub_
                  ->ApplyDecision(Ctx(Service(), "ApplyDecision", v1::IntakeInternal::service_full_name()).get(),
                                  decision, &applied)
                  .ok());
  ASSERT_TRUE(Import(header + "X-1,syddanmark,2024-03-04,Drug,L01BC59,Ind,C18.9,yes,yes,not_assessed,on_label,,\r\n",
                     false, 1000, &r)
                  .ok());
  EXPECT_EQ(r.unchanged(), 1);
  EXPECT_EQ(r.rejected(), 0);
  // Other content under the same case_ref: rejected, the stored case kept.
  ASSERT_TRUE(Import(header + "X-1,syddanmark,2024-03-04,Drug,L01BC59,Ind,C18.9,no,yes,not_assessed,on_label,,\r\n",
                     false, 1000, &r)
                  .ok());
  EXPECT_EQ(r.rejected(), 1);
  EXPECT_THAT(Errors(r), ElementsAre(RowError{2, "cancer"}));
}

TEST_F(IntakeTest, BrokenFilesFailWholeAndStoreNothing) {
  const std::string good = ReadFixture("forum_cases_2024.csv");
  v1::ImportApplicationsResponse r;
  // Wrong columns.
  grpc::Status s = Import("case_ref;region;submitted_on\r\nA;b;c\r\n", false, 100, &r);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("line 1"));
  // A huge line after valid rows: nothing of the valid rows stays.
  s = Import(good + std::string(200000, 'x') + "\r\n", false, 50000, &r);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("line 543"));
  // An unterminated quote at the end.
  s = Import(good + "\"2024-9999,syddanmark\r\n", false, 50000, &r);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("not closed"));
  // An empty upload.
  s = Import("", false, 100, &r);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(ListAll(Secretariat(), {}, 10).empty());
  EXPECT_EQ(*relay_->DeliverPending(), 0);

  // Bad encoding in one row is that row's error; the others are stored.
  std::string latin1 = good.substr(0, good.find("\r\n2024-0002"));
  latin1 += "\r\n2024-9001,syddanmark,2024-03-04,Caf\xE9,L01BC59,Ind,C18.9,yes,yes,not_assessed,on_label,,\r\n";
  ASSERT_TRUE(Import(latin1, false, 7, &r).ok());
  EXPECT_EQ(r.stored(), 1);
  EXPECT_THAT(Errors(r), ElementsAre(RowError{3, "drug_name"}));
  // Only the secretariat imports.
  v1::ImportApplicationsResponse denied;
  auto ctx = Ctx(Region(common::v1::REGION_SYDDANMARK), "ImportApplications");
  auto writer = stub_->ImportApplications(ctx.get(), &denied);
  writer->WritesDone();
  EXPECT_EQ(writer->Finish().error_code(), grpc::StatusCode::PERMISSION_DENIED);
}

}  // namespace
}  // namespace medkoord::intake::testing
