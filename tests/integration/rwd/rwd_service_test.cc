// The RWD service's gRPC API against a real PostgreSQL database: an
// in-process server on port 0, a real stub, principals signed with a test key
// and a fake clock.

#include <fstream>
#include <memory>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <pqxx/pqxx>

#include "absl/strings/escaping.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "common/clock.h"
#include "common/db/migrations.h"
#include "common/db/pool.h"
#include "common/principal.h"
#include "common/server.h"
#include "medkoord/rwd/v1/rwd.grpc.pb.h"
#include "nlohmann/json.hpp"
#include "services/rwd/analyse/analyse.h"
#include "services/rwd/migrations.h"
#include "services/rwd/rwd_service.h"
#include "services/rwd/rwd_store.h"
#include "tests/support/postgres_cluster.h"

namespace medkoord::rwd {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string FixturePath(const std::string& name) {
  return std::string(MEDKOORD_FIXTURES) + "/" + name;
}

std::string ReadFixture(const std::string& name) {
  std::ifstream in(FixturePath(name), std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Every patient_ref of a fixture that is a CPR number, in both notations.
std::set<std::string> CprNumbersOf(const std::string& csv) {
  std::set<std::string> out;
  bool header = true;
  for (absl::string_view line : absl::StrSplit(csv, '\n', absl::SkipEmpty())) {
    if (header) {
      header = false;
      continue;
    }
    std::string ref(line.substr(0, line.find(',')));
    if (!IsValidCpr(ref)) continue;
    std::string digits = ref.size() == 11 ? ref.substr(0, 6) + ref.substr(7) : ref;
    out.insert(digits);
    out.insert(digits.substr(0, 6) + "-" + digits.substr(6));
  }
  return out;
}

class RwdTest : public medkoord::testing::PostgresTest {
 protected:
  void SetUp() override {
    PostgresTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    auto url = cluster().CreateDatabase("rwd");
    ASSERT_TRUE(url.ok()) << url.status();
    url_ = *url;
    pool_ = std::make_unique<db::Pool>(
        db::PoolOptions{.url = url_, .size = 4, .prepare = RwdStore::Prepare});
    auto migrated = db::Migrate(*pool_, Migrations());
    ASSERT_TRUE(migrated.ok()) << migrated.status();
    auto signer = PrincipalSigner::Create(std::string(32, 'k'), &clock_);
    ASSERT_TRUE(signer.ok());
    signer_ = std::make_unique<PrincipalSigner>(*signer);
    store_ = std::make_unique<RwdStore>(*pool_);
    RwdOptions options;
    options.upload.batch_rows = 50;  // several batches per pilot cohort
    service_ = std::make_unique<RwdService>(*store_, *signer_, clock_,
                                            *Pseudonymiser::Create(std::string(40, 'p')), options);
    auto server = Server::Start(ServerOptions{.service_name = "rwd-test"}, {service_.get()});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    stub_ = v1::Rwd::NewStub(grpc::CreateChannel(
        "127.0.0.1:" + std::to_string(server_->port()), grpc::InsecureChannelCredentials()));
  }

  void TearDown() override {
    if (server_) server_->Shutdown();
    server_.reset();
    pool_.reset();
    if (!url_.empty()) (void)cluster().DropDatabase(url_);
  }

  static Principal WithRole(const std::string& id, Role role) {
    Principal p;
    p.set_id(id);
    p.add_roles(role);
    return p;
  }
  static Principal Analyst() { return WithRole("analyst-1", common::v1::ROLE_ANALYST); }
  static Principal Member() { return WithRole("forum-member", common::v1::ROLE_FORUM_MEMBER); }
  static Principal Region() {
    Principal p = WithRole("region-it:syddanmark", common::v1::ROLE_REGION);
    p.set_region(common::v1::REGION_SYDDANMARK);
    return p;
  }

  std::unique_ptr<grpc::ClientContext> Ctx(const Principal& p, const char* method) {
    auto ctx = std::make_unique<grpc::ClientContext>();
    signer_->Attach(*ctx, p, FullMethodName(v1::Rwd::service_full_name(), method));
    return ctx;
  }

  grpc::Status Upload(const std::string& bytes, size_t chunk, v1::UploadCohortResponse* out,
                      bool validate_only = false, const std::string& request_id = "",
                      const Principal& who = Analyst(),
                      const std::string& protocol = "protocols/pilot-1-pembrolizumab-nsclc") {
    auto ctx = Ctx(who, "UploadCohort");
    auto writer = stub_->UploadCohort(ctx.get(), out);
    v1::UploadCohortRequest first;
    first.set_protocol(protocol);
    first.set_request_id(request_id);
    first.set_validate_only(validate_only);
    first.set_display_name("test upload");
    first.mutable_data_cut_date()->set_year(2026);
    first.mutable_data_cut_date()->set_month(6);
    first.mutable_data_cut_date()->set_day(30);
    bool ok = writer->Write(first);
    for (size_t i = 0; ok && i < bytes.size(); i += chunk) {
      v1::UploadCohortRequest m;
      m.set_chunk(bytes.substr(i, chunk));
      ok = writer->Write(m);
    }
    writer->WritesDone();
    return writer->Finish();
  }

  int64_t Count(const std::string& sql) {
    pqxx::connection c(url_);
    pqxx::work tx(c);
    return tx.exec1(sql)[0].as<int64_t>();
  }

  // Every value of every table, as PostgreSQL prints the rows.
  std::string DumpDatabase() {
    pqxx::connection c(url_);
    pqxx::work tx(c);
    std::string all;
    for (const auto& t : tx.exec("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")) {
      std::string table = t[0].as<std::string>();
      for (const auto& row : tx.exec("SELECT t::text FROM " + tx.quote_name(table) + " t")) {
        all += row[0].as<std::string>();
        all += '\n';
      }
    }
    return all;
  }

  std::string url_;
  FakeClock clock_{absl::FromUnixSeconds(1782000000)};  // 2026-06-21
  std::unique_ptr<db::Pool> pool_;
  std::unique_ptr<PrincipalSigner> signer_;
  std::unique_ptr<RwdStore> store_;
  std::unique_ptr<RwdService> service_;
  std::unique_ptr<Server> server_;
  std::unique_ptr<v1::Rwd::Stub> stub_;
};

TEST_F(RwdTest, PilotProtocolsAreSeededWithTheirTrialResults) {
  v1::ListProtocolsRequest request;
  v1::ListProtocolsResponse response;
  ASSERT_TRUE(stub_->ListProtocols(Ctx(Member(), "ListProtocols").get(), request, &response).ok());
  ASSERT_EQ(response.protocols_size(), 2);
  const v1::Protocol& p1 = response.protocols(0);
  const v1::Protocol& p2 = response.protocols(1);
  EXPECT_EQ(p1.name(), "protocols/pilot-1-pembrolizumab-nsclc");
  EXPECT_EQ(p2.name(), "protocols/pilot-2-sacituzumab-tnbc");
  EXPECT_EQ(p1.expected_patients_per_year(), 200);
  EXPECT_EQ(p2.expected_patients_per_year(), 60);
  EXPECT_EQ(p1.recommendation_date().year(), 2020);
  EXPECT_EQ(p1.recommendation_date().month(), 10);
  EXPECT_EQ(p1.recommendation_date().day(), 21);
  EXPECT_EQ(p2.recommendation_date().year(), 2025);
  EXPECT_EQ(p2.recommendation_date().month(), 5);
  EXPECT_EQ(p1.intervention().label(), "pembrolizumab+chemo");
  EXPECT_EQ(p1.comparator().label(), "chemo");
  EXPECT_EQ(p2.intervention().label(), "sacituzumab_govitecan");
  EXPECT_EQ(p2.comparator().label(), "tpc");

  // DOMAIN.md's table, row by row: population, endpoint, medians, HR (CI),
  // source and data cut.
  auto row = [](const v1::TrialBenchmark& b) {
    std::string s = b.trial() + "|" + b.population() + "|" + std::to_string(b.n()) + "|" +
                    v1::Endpoint_Name(b.endpoint()) + "|";
    s += b.has_intervention_median_months() ? absl::StrFormat("%.1f", b.intervention_median_months()) : "-";
    s += " vs ";
    s += b.has_comparator_median_months() ? absl::StrFormat("%.1f", b.comparator_median_months()) : "-";
    for (const auto& l : b.landmarks()) {
      s += absl::StrFormat(" [%gm %.1f%% vs %.1f%%]", l.months(), l.intervention_percent(),
                           l.comparator_percent());
    }
    s += absl::StrFormat("|%.2f (%.2f-%.2f)|", b.hazard_ratio(), b.hr_lower(), b.hr_upper());
    return s + b.source() + "|" + b.data_cut();
  };
  std::vector<std::string> b1, b2;
  for (const auto& b : p1.benchmarks()) b1.push_back(row(b));
  for (const auto& b : p2.benchmarks()) b2.push_back(row(b));
  EXPECT_THAT(b1, ElementsAre(
      "KEYNOTE-189|all|616|ENDPOINT_OS|- vs - [12m 69.2% vs 49.4%]|0.49 (0.38-0.64)|Gandhi et al., NEJM 2018|primary analysis",
      "KEYNOTE-189|all|616|ENDPOINT_PFS|8.8 vs 4.9|0.52 (0.43-0.64)|Gandhi et al., NEJM 2018|primary analysis",
      "KEYNOTE-189|PD-L1 < 1 %|0|ENDPOINT_OS|- vs -|0.59 (0.38-0.92)|Gandhi et al., NEJM 2018 (subgroup)|primary analysis",
      "KEYNOTE-189|all|616|ENDPOINT_OS|22.0 vs 10.7|0.56 (0.45-0.70)|Gadgeel et al., JCO 2020|updated analysis",
      "KEYNOTE-189|all|616|ENDPOINT_OS|22.0 vs 10.6 [60m 19.4% vs 11.3%]|0.60 (0.50-0.72)|Garassino et al., JCO 2023|5-year analysis"));
  EXPECT_TRUE(p1.benchmarks(2).primary());
  EXPECT_THAT(b2, ElementsAre(
      "ASCENT|without brain metastases|468|ENDPOINT_PFS|5.6 vs 1.7|0.41 (0.32-0.52)|Bardia et al., NEJM 2021|primary analysis",
      "ASCENT|without brain metastases|468|ENDPOINT_OS|12.1 vs 6.7|0.48 (0.38-0.59)|Bardia et al., NEJM 2021|primary analysis",
      "ASCENT|all patients|529|ENDPOINT_PFS|4.8 vs 1.7|0.41 (0.33-0.52)|Bardia et al., JCO 2024|final analysis",
      "ASCENT|all patients|529|ENDPOINT_OS|11.8 vs 6.9|0.51 (0.42-0.63)|Bardia et al., JCO 2024|final analysis"));

  // Pagination: one per page, then the end.
  request.set_page_size(1);
  v1::ListProtocolsResponse page1, page2;
  ASSERT_TRUE(stub_->ListProtocols(Ctx(Analyst(), "ListProtocols").get(), request, &page1).ok());
  ASSERT_EQ(page1.protocols_size(), 1);
  ASSERT_FALSE(page1.next_page_token().empty());
  request.set_page_token(page1.next_page_token());
  ASSERT_TRUE(stub_->ListProtocols(Ctx(Analyst(), "ListProtocols").get(), request, &page2).ok());
  ASSERT_EQ(page2.protocols_size(), 1);
  EXPECT_EQ(page2.protocols(0).name(), "protocols/pilot-2-sacituzumab-tnbc");
  EXPECT_TRUE(page2.next_page_token().empty());
}

TEST_F(RwdTest, CreateProtocolValidatesEverythingAndIsIdempotent) {
  v1::CreateProtocolRequest request;
  request.set_protocol_id("X");
  request.mutable_protocol()->set_recommendation_status(v1::RECOMMENDATION_STATUS_CONDITIONAL);
  request.mutable_protocol()->add_benchmarks()->set_hazard_ratio(0.5);
  v1::Protocol out;
  grpc::Status s = stub_->CreateProtocol(Ctx(Analyst(), "CreateProtocol").get(), request, &out);
  ASSERT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  for (const char* field :
       {"protocol_id", "protocol.title", "protocol.medicine", "protocol.intervention.label",
        "protocol.endpoints", "protocol.recommendation_date", "protocol.re_evaluation_date",
        "protocol.benchmarks[0].source", "protocol.benchmarks[0].data_cut"}) {
    EXPECT_THAT(s.error_message(), HasSubstr(field));
  }

  v1::GetProtocolRequest get;
  get.set_name("protocols/pilot-2-sacituzumab-tnbc");
  v1::Protocol base;
  ASSERT_TRUE(stub_->GetProtocol(Ctx(Analyst(), "GetProtocol").get(), get, &base).ok());
  request.set_protocol_id("pilot-2-conditional");
  request.set_request_id("create-1");
  *request.mutable_protocol() = base;
  request.mutable_protocol()->set_recommendation_status(v1::RECOMMENDATION_STATUS_CONDITIONAL);
  request.mutable_protocol()->mutable_re_evaluation_date()->set_year(2027);
  request.mutable_protocol()->mutable_re_evaluation_date()->set_month(5);
  request.mutable_protocol()->mutable_re_evaluation_date()->set_day(21);
  v1::Protocol first, again;
  ASSERT_TRUE(stub_->CreateProtocol(Ctx(Analyst(), "CreateProtocol").get(), request, &first).ok());
  EXPECT_EQ(first.name(), "protocols/pilot-2-conditional");
  EXPECT_EQ(first.created().principal_id(), "analyst-1");
  EXPECT_EQ(first.benchmarks_size(), 4);
  ASSERT_TRUE(stub_->CreateProtocol(Ctx(Analyst(), "CreateProtocol").get(), request, &again).ok());
  EXPECT_EQ(again.SerializeAsString(), first.SerializeAsString());
  request.set_request_id("create-2");
  EXPECT_EQ(stub_->CreateProtocol(Ctx(Analyst(), "CreateProtocol").get(), request, &again).error_code(),
            grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_EQ(Count("SELECT count(*) FROM protocols"), 3);
}

TEST_F(RwdTest, PilotCohortsStoreNoCprNumberAnywhere) {
  std::set<std::string> cprs;
  std::string replies;
  for (const auto& [file, protocol, patients] :
       std::vector<std::tuple<std::string, std::string, int>>{
           {"rwd_pilot1_cohort.csv", "protocols/pilot-1-pembrolizumab-nsclc", 420},
           {"rwd_pilot2_cohort.csv", "protocols/pilot-2-sacituzumab-tnbc", 130}}) {
    const std::string csv = ReadFixture(file);
    auto found = CprNumbersOf(csv);
    cprs.insert(found.begin(), found.end());
    v1::UploadCohortResponse response;
    grpc::Status s = Upload(csv, 997, &response, false, "", Analyst(), protocol);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(response.rows_read(), patients);
    EXPECT_EQ(response.rows_accepted(), patients);
    EXPECT_EQ(response.rows_rejected(), 0);
    EXPECT_EQ(response.errors_size(), 0);
    EXPECT_EQ(response.cohort().patients(), patients);
    EXPECT_EQ(response.cohort().protocol(), protocol);
    replies += response.SerializeAsString();

    v1::GetDataQualityReportRequest dq;
    dq.set_name(response.cohort().name());
    v1::DataQualityReport report;
    ASSERT_TRUE(stub_->GetDataQualityReport(Ctx(Analyst(), "GetDataQualityReport").get(), dq, &report).ok());
    EXPECT_EQ(report.patients(), patients);
    EXPECT_EQ(report.by_arm_size(), 2);
    EXPECT_EQ(report.events_by_arm_size(), 2);
    EXPECT_GT(report.follow_up().median(), 0);
    replies += report.SerializeAsString();
  }
  ASSERT_GT(cprs.size(), 300u);
  EXPECT_EQ(Count("SELECT count(*) FROM cohort_patients"), 550);
  EXPECT_EQ(Count("SELECT count(DISTINCT (cohort_id, patient_key)) FROM cohort_patients"), 550);

  // Every value of every table, text and bytea (hex) alike.
  const std::string dump = DumpDatabase();
  for (const std::string& cpr : cprs) {
    EXPECT_EQ(dump.find(cpr), std::string::npos) << "a CPR number is stored";
    EXPECT_EQ(dump.find(absl::BytesToHexString(cpr)), std::string::npos) << "a CPR number is stored";
    EXPECT_EQ(replies.find(cpr), std::string::npos) << "a CPR number is in a reply";
  }
}

TEST_F(RwdTest, BadRowsAreRejectedAndNothingOfThemIsStored) {
  const std::string csv = ReadFixture("rwd_cohort_bad_rows.csv");
  v1::UploadCohortResponse response;
  ASSERT_TRUE(Upload(csv, 13, &response).ok());
  EXPECT_EQ(response.rows_read(), 10);
  EXPECT_EQ(response.rows_accepted(), 2);
  EXPECT_EQ(response.rows_rejected(), 8);
  std::vector<std::string> errors;
  for (const auto& e : response.errors()) errors.push_back(std::to_string(e.line()) + " " + e.field());
  EXPECT_THAT(errors, ElementsAre("3 death_date", "4 last_contact_date", "5 index_date", "6 patient_ref",
                                  "7 progression_date", "8 patient_ref", "9 arm", "10 last_contact_date"));
  ASSERT_EQ(response.warnings_size(), 1);
  EXPECT_EQ(response.warnings(0).line(), 11);
  EXPECT_EQ(response.warnings(0).field(), "age");

  pqxx::connection c(url_);
  pqxx::work tx(c);
  std::vector<int64_t> lines;
  for (const auto& r : tx.exec("SELECT line FROM cohort_patients ORDER BY line")) lines.push_back(r[0].as<int64_t>());
  EXPECT_THAT(lines, ElementsAre(2, 11));
  tx.commit();
  // Nothing of a rejected row: not its identifier, not its dates.
  const std::string dump = DumpDatabase();
  for (const char* trace : {"0202602345", "020260-2345", "0303603456", "2022-03-10", "2022-13-10",
                            "2022-05-10", "2022-06-10", "2022-07-10", "2022-08-10", "2022-09-10"}) {
    EXPECT_EQ(dump.find(trace), std::string::npos) << trace;
  }
}

TEST_F(RwdTest, ValidateOnlyStoresNothingAndRetriesAreIdempotent) {
  const std::string csv = ReadFixture("rwd_pilot1_cohort.csv");
  v1::UploadCohortResponse checked;
  ASSERT_TRUE(Upload(csv, 4096, &checked, /*validate_only=*/true, "v-1").ok());
  EXPECT_EQ(checked.rows_accepted(), 420);
  EXPECT_FALSE(checked.has_cohort());
  EXPECT_EQ(Count("SELECT count(*) FROM cohorts"), 0);
  EXPECT_EQ(Count("SELECT count(*) FROM cohort_patients"), 0);
  EXPECT_EQ(Count("SELECT count(*) FROM cohort_access"), 0);

  v1::UploadCohortResponse first, again;
  ASSERT_TRUE(Upload(csv, 4096, &first, false, "u-1").ok());
  ASSERT_TRUE(Upload(csv, 333, &again, false, "u-1").ok());
  EXPECT_EQ(first.cohort().name(), again.cohort().name());
  EXPECT_EQ(again.rows_accepted(), 420);
  EXPECT_EQ(Count("SELECT count(*) FROM cohorts"), 1);
  EXPECT_EQ(Count("SELECT count(*) FROM cohort_patients"), 420);

  // A broken file stores nothing either.
  v1::UploadCohortResponse broken;
  grpc::Status s = Upload("patient_ref,arm\nP-1,chemo\n", 10, &broken);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("header.index_date"));
  EXPECT_EQ(Count("SELECT count(*) FROM cohorts"), 1);
}

TEST_F(RwdTest, RunAnalysisGivesTheOfflineCommandsNumbers) {
  v1::UploadCohortResponse uploaded;
  ASSERT_TRUE(Upload(ReadFixture("rwd_pilot1_cohort.csv"), 4096, &uploaded).ok());

  v1::RunAnalysisRequest request;
  request.set_request_id("a-1");
  request.set_protocol("protocols/pilot-1-pembrolizumab-nsclc");
  request.set_cohort(uploaded.cohort().name());
  request.mutable_spec()->set_endpoint(v1::ENDPOINT_OS);
  for (const char* c : {"arm", "age", "ecog", "sex"}) request.mutable_spec()->add_covariates(c);
  for (const char* c : {"age", "ecog", "sex"}) request.mutable_spec()->add_ps_covariates(c);
  request.mutable_spec()->add_at_times(365);
  request.mutable_spec()->add_at_times(730);
  v1::Analysis analysis;
  grpc::Status s = stub_->RunAnalysis(Ctx(Analyst(), "RunAnalysis").get(), request, &analysis);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(analysis.patients(), 420);
  EXPECT_EQ(analysis.spec().group(), "arm");
  EXPECT_EQ(analysis.spec().reference_levels().at("arm"), "chemo");

  std::ostringstream out, err;
  int code = analyse::RunAnalyseCommand(
      {"analyse", FixturePath("rwd_pilot1_cohort.csv"), "--endpoint", "os", "--group", "arm",
       "--covariates", "arm,age,ecog,sex", "--ps-covariates", "age,ecog,sex", "--reference",
       "arm=chemo", "--at-times", "365,730", "--json"},
      out, err);
  ASSERT_EQ(code, 0) << err.str();
  EXPECT_EQ(nlohmann::json::parse(analysis.result_json()), nlohmann::json::parse(out.str()));
  EXPECT_EQ(analysis.result_json() + "\n", out.str());

  // Side by side with every OS benchmark of KEYNOTE-189, per model.
  std::set<std::string> models;
  int pdl1 = 0;
  auto result = nlohmann::json::parse(analysis.result_json());
  const double hr = result["coxph"]["group"]["efron"]["terms"]["armpembrolizumab+chemo"]["hr"];
  for (const auto& c : analysis.benchmarks()) {
    EXPECT_EQ(c.benchmark().endpoint(), v1::ENDPOINT_OS);
    models.insert(c.rwd_model());
    if (c.benchmark().population() == "PD-L1 < 1 %") {
      ++pdl1;
      if (c.rwd_model() == "cox unadjusted") {
        EXPECT_DOUBLE_EQ(c.rwd_hazard_ratio(), hr);
        EXPECT_EQ(c.intervals_overlap(), c.rwd_hr_lower() <= 0.92 && 0.38 <= c.rwd_hr_upper());
      }
    }
    EXPECT_TRUE(c.has_rwd_intervention_median_months() || !c.has_rwd_intervention_median_lower());
  }
  EXPECT_EQ(models, (std::set<std::string>{"cox unadjusted", "cox adjusted", "iptw"}));
  EXPECT_EQ(pdl1, 3);
  EXPECT_EQ(analysis.benchmarks_size(), 4 * 3);

  // Retrieval, idempotency, the published report.
  v1::Analysis again;
  ASSERT_TRUE(stub_->RunAnalysis(Ctx(Analyst(), "RunAnalysis").get(), request, &again).ok());
  EXPECT_EQ(again.name(), analysis.name());
  EXPECT_EQ(Count("SELECT count(*) FROM analyses"), 1);
  v1::GetAnalysisRequest get;
  get.set_name(analysis.name());
  v1::Analysis fetched;
  ASSERT_TRUE(stub_->GetAnalysis(Ctx(Analyst(), "GetAnalysis").get(), get, &fetched).ok());
  EXPECT_EQ(fetched.result_json(), analysis.result_json());
  v1::GetAnalysisReportRequest report_request;
  report_request.set_name(analysis.name());
  v1::AnalysisReport report;
  ASSERT_TRUE(stub_->GetAnalysisReport(Ctx(Member(), "GetAnalysisReport").get(), report_request, &report).ok());
  EXPECT_EQ(report.small_count_threshold(), 5);
  EXPECT_THAT(report.km_svg(), HasSubstr("<svg"));
  EXPECT_THAT(report.html(), HasSubstr("<svg"));
  EXPECT_THAT(report.html(), HasSubstr("Gandhi et al., NEJM 2018"));
  // Numbers at risk of 1-4 are masked in the plot.
  std::regex small(">[1-4]</text>");
  EXPECT_FALSE(std::regex_search(report.km_svg(), small));

  // PFS of a wrong-protocol pairing is refused.
  request.set_request_id("a-2");
  request.set_protocol("protocols/pilot-2-sacituzumab-tnbc");
  EXPECT_EQ(stub_->RunAnalysis(Ctx(Analyst(), "RunAnalysis").get(), request, &again).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(RwdTest, DeleteForGoodKeepsTheAccessLog) {
  v1::UploadCohortResponse uploaded;
  ASSERT_TRUE(Upload(ReadFixture("rwd_pilot1_cohort.csv"), 4096, &uploaded).ok());
  const std::string name = uploaded.cohort().name();
  v1::GetCohortRequest get;
  get.set_name(name);
  v1::Cohort cohort;
  ASSERT_TRUE(stub_->GetCohort(Ctx(Analyst(), "GetCohort").get(), get, &cohort).ok());
  v1::RunAnalysisRequest run;
  run.set_protocol("protocols/pilot-1-pembrolizumab-nsclc");
  run.set_cohort(name);
  run.mutable_spec()->set_endpoint(v1::ENDPOINT_PFS);
  v1::Analysis analysis;
  ASSERT_TRUE(stub_->RunAnalysis(Ctx(Analyst(), "RunAnalysis").get(), run, &analysis).ok());

  v1::DeleteCohortRequest del;
  del.set_name(name);
  google::protobuf::Empty empty;
  ASSERT_TRUE(stub_->DeleteCohort(Ctx(WithRole("analyst-2", common::v1::ROLE_ANALYST), "DeleteCohort").get(),
                                  del, &empty).ok());
  EXPECT_EQ(stub_->GetCohort(Ctx(Analyst(), "GetCohort").get(), get, &cohort).error_code(),
            grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(stub_->DeleteCohort(Ctx(Analyst(), "DeleteCohort").get(), del, &empty).error_code(),
            grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Count("SELECT count(*) FROM cohort_patients"), 0);
  EXPECT_EQ(Count("SELECT count(*) FROM cohorts"), 0);
  EXPECT_EQ(Count("SELECT count(*) FROM analyses"), 0);

  v1::ListCohortAccessRequest list;
  list.set_cohort(name);
  v1::ListCohortAccessResponse log;
  ASSERT_TRUE(stub_->ListCohortAccess(Ctx(WithRole("admin", common::v1::ROLE_ADMIN), "ListCohortAccess").get(),
                                      list, &log).ok());
  std::vector<std::string> entries;
  for (const auto& e : log.entries()) {
    entries.push_back(e.principal_id() + " " + v1::AccessAction_Name(e.action()));
  }
  EXPECT_THAT(entries, ElementsAre("analyst-2 ACCESS_ACTION_DELETE", "analyst-1 ACCESS_ACTION_ANALYSE",
                                   "analyst-1 ACCESS_ACTION_READ", "analyst-1 ACCESS_ACTION_UPLOAD"));
  EXPECT_EQ(log.entries(1).analysis(), analysis.name());
  EXPECT_EQ(log.entries(0).time().seconds(), 1782000000);

  // Paged, newest first.
  list.set_page_size(3);
  v1::ListCohortAccessResponse page;
  ASSERT_TRUE(stub_->ListCohortAccess(Ctx(Analyst(), "ListCohortAccess").get(), list, &page).ok());
  EXPECT_EQ(page.entries_size(), 3);
  list.set_page_token(page.next_page_token());
  ASSERT_TRUE(stub_->ListCohortAccess(Ctx(Analyst(), "ListCohortAccess").get(), list, &page).ok());
  ASSERT_EQ(page.entries_size(), 1);
  EXPECT_EQ(page.entries(0).action(), v1::ACCESS_ACTION_UPLOAD);
}

TEST_F(RwdTest, ACancelledUploadStoresNothing) {
  const std::string csv = ReadFixture("rwd_pilot1_cohort.csv");
  grpc::ClientContext ctx;
  signer_->Attach(ctx, Analyst(), FullMethodName(v1::Rwd::service_full_name(), "UploadCohort"));
  v1::UploadCohortResponse response;
  auto writer = stub_->UploadCohort(&ctx, &response);
  v1::UploadCohortRequest first;
  first.set_protocol("protocols/pilot-1-pembrolizumab-nsclc");
  first.set_chunk(csv.substr(0, csv.size() / 2));
  ASSERT_TRUE(writer->Write(first));
  ctx.TryCancel();
  EXPECT_EQ(writer->Finish().error_code(), grpc::StatusCode::CANCELLED);
  // Shutdown waits for the handler, so whatever it would do is done.
  server_->Shutdown();
  EXPECT_EQ(Count("SELECT count(*) FROM cohorts"), 0);
  EXPECT_EQ(Count("SELECT count(*) FROM cohort_patients"), 0);
}

TEST_F(RwdTest, RolesAndSignaturesAreEnforced) {
  v1::UploadCohortResponse response;
  EXPECT_EQ(Upload(ReadFixture("rwd_cohort_bad_rows.csv"), 100, &response, false, "", Region()).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Upload(ReadFixture("rwd_cohort_bad_rows.csv"), 100, &response, false, "", Member()).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Count("SELECT count(*) FROM cohorts"), 0);

  v1::GetProtocolRequest get;
  get.set_name("protocols/pilot-1-pembrolizumab-nsclc");
  v1::Protocol protocol;
  EXPECT_EQ(stub_->GetProtocol(Ctx(Region(), "GetProtocol").get(), get, &protocol).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_TRUE(stub_->GetProtocol(Ctx(Member(), "GetProtocol").get(), get, &protocol).ok());
  // A signature for another method, or none, is not accepted.
  EXPECT_EQ(stub_->GetProtocol(Ctx(Analyst(), "ListProtocols").get(), get, &protocol).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  grpc::ClientContext bare;
  EXPECT_EQ(stub_->GetProtocol(&bare, get, &protocol).error_code(), grpc::StatusCode::UNAUTHENTICATED);

  v1::ListCohortsRequest cohorts;
  v1::ListCohortsResponse listed;
  EXPECT_EQ(stub_->ListCohorts(Ctx(Member(), "ListCohorts").get(), cohorts, &listed).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  get.set_name("protocols/nope");
  EXPECT_EQ(stub_->GetProtocol(Ctx(Analyst(), "GetProtocol").get(), get, &protocol).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

}  // namespace
}  // namespace medkoord::rwd
