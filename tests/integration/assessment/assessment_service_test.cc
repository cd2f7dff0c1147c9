// The assessment service's gRPC API against a real PostgreSQL: the service in
// process on port 0, real stubs, test-signed principals, a fake in-process
// intake (IntakeInternal) receiving the decisions from the outbox.

#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "common/csv/reader.h"
#include "common/db/migrations.h"
#include "common/db/outbox.h"
#include "common/principal.h"
#include "common/server.h"
#include "common/status.h"
#include "google/protobuf/util/time_util.h"
#include "nlohmann/json.hpp"
#include "services/assessment/assessment_store.h"
#include "services/assessment/report.h"
#include "services/assessment/service_parts.h"
#include "tests/support/postgres_cluster.h"

namespace medkoord::assessment {
const std::vector<db::Migration>& Migrations();

namespace {

namespace v1 = ::medkoord::assessment::v1;
namespace intake = ::medkoord::intake::v1;
namespace cv1 = ::medkoord::common::v1;
using ::google::protobuf::util::TimeUtil;
using ::medkoord::testing::PostgresTest;

const absl::TimeZone& Cph() { return DanishTimeZone(); }
absl::Time CphTime(int y, int m, int d, int hh = 0) {
  return absl::FromCivil(absl::CivilSecond(y, m, d, hh, 0, 0), Cph());
}
google::type::Date Date(int y, int m, int d) {
  google::type::Date out;
  out.set_year(y);
  out.set_month(m);
  out.set_day(d);
  return out;
}

Principal RegionPrincipal(cv1::Region region) {
  Principal p;
  p.set_id(absl::StrCat("apikey:region-", region));
  p.add_roles(cv1::ROLE_REGION);
  p.set_region(region);
  return p;
}
Principal RolePrincipal(cv1::Role role, const std::string& id) {
  Principal p;
  p.set_id(id);
  p.add_roles(role);
  return p;
}
const Principal kHovedstaden = RegionPrincipal(cv1::REGION_HOVEDSTADEN);
const Principal kMidtjylland = RegionPrincipal(cv1::REGION_MIDTJYLLAND);
const Principal kSecretariat = RolePrincipal(cv1::ROLE_FORUM_SECRETARIAT, "apikey:secretariat");
const Principal kForumMember = RolePrincipal(cv1::ROLE_FORUM_MEMBER, "apikey:member");
const Principal kIntake = ServicePrincipal("intake");

// The intake side of the outbox: records ApplyDecision calls.
class FakeIntake final : public intake::IntakeInternal::Service {
 public:
  explicit FakeIntake(const PrincipalSigner& signer) : signer_(signer) {}
  grpc::Status ApplyDecision(grpc::ServerContext* context, const intake::ApplyDecisionRequest* request,
                             intake::ApplyDecisionResponse* response) override {
    absl::StatusOr<Principal> p = signer_.Verify(
        *context, FullMethodName(intake::IntakeInternal::service_full_name(), "ApplyDecision"));
    if (!p.ok()) return ToGrpcStatus(p.status());
    absl::MutexLock lock(&mu_);
    callers_.push_back(p->id());
    received_.push_back(*request);
    return grpc::Status::OK;
  }
  std::vector<intake::ApplyDecisionRequest> received() {
    absl::MutexLock lock(&mu_);
    return received_;
  }
  std::vector<std::string> callers() {
    absl::MutexLock lock(&mu_);
    return callers_;
  }
  // Blocks until `n` calls arrived or `timeout` passed.
  bool WaitFor(size_t n, absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto enough = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return received_.size() >= n; };
    return mu_.AwaitWithTimeout(absl::Condition(&enough), timeout);
  }

 private:
  const PrincipalSigner& signer_;
  absl::Mutex mu_;
  std::vector<intake::ApplyDecisionRequest> received_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> callers_ ABSL_GUARDED_BY(mu_);
};

std::unique_ptr<grpc::Server> StartGrpc(grpc::Service* service, int* port, int want_port = 0) {
  grpc::ServerBuilder builder;
  builder.AddListeningPort(absl::StrCat("127.0.0.1:", want_port), grpc::InsecureServerCredentials(), port);
  builder.RegisterService(service);
  return builder.BuildAndStart();
}

// One assessment "replica": its own pool, feed, relay and server.
struct Replica {
  std::unique_ptr<db::Pool> pool;
  ServiceParts parts;
  std::unique_ptr<Server> server;
  std::shared_ptr<grpc::Channel> channel;
  db::OutboxRelay* relay = nullptr;
  DecisionFeed* feed = nullptr;
};

class AssessmentServiceTest : public PostgresTest {
 protected:
  void SetUp() override {
    PostgresTest::SetUp();
    if (IsSkipped()) return;
    // A database of this test's own, also when the binary runs every test
    // in one process.
    absl::StatusOr<std::string> url = cluster().CreateDatabase("assessment");
    ASSERT_TRUE(url.ok()) << url.status();
    url_ = *url;
    auto signer = PrincipalSigner::Create(std::string(32, 'k'), &clock_);
    ASSERT_TRUE(signer.ok());
    signer_ = std::make_unique<PrincipalSigner>(*signer);
    intake_ = std::make_unique<FakeIntake>(*signer_);
    intake_server_ = StartGrpc(intake_.get(), &intake_port_);
    ASSERT_NE(intake_server_, nullptr);
    replica_ = StartReplica();
    ASSERT_NE(replica_, nullptr);
    stub_ = v1::Assessment::NewStub(replica_->channel);
    internal_ = v1::AssessmentInternal::NewStub(replica_->channel);
  }

  void TearDown() override {
    for (auto* r : {replica_.get(), replica2_.get()}) {
      if (r == nullptr) continue;
      r->server->Shutdown();
      for (auto& t : r->parts.background) t->Stop();
    }
    if (intake_server_) intake_server_->Shutdown();
    replica_.reset();
    replica2_.reset();
    if (!url_.empty()) EXPECT_TRUE(cluster().DropDatabase(url_).ok());
  }

  // `start_feed` false leaves the decision feed's thread off (a test then
  // drives it with feed->Poll()).
  std::unique_ptr<Replica> StartReplica(bool start_relay = false, bool start_feed = true) {
    auto r = std::make_unique<Replica>();
    db::PoolOptions options;
    options.url = url_;
    options.size = 4;
    options.prepare = AssessmentStore::Prepare;
    r->pool = std::make_unique<db::Pool>(options);
    absl::StatusOr<int> migrated = db::Migrate(*r->pool, Migrations());
    EXPECT_TRUE(migrated.ok()) << migrated.status();
    if (!migrated.ok()) return nullptr;
    db::OutboxRelayOptions relay_options;
    relay_options.poll_interval = absl::Milliseconds(20);
    relay_options.initial_backoff = absl::Milliseconds(20);
    relay_options.max_backoff = absl::Milliseconds(200);
    absl::StatusOr<ServiceParts> parts = BuildAssessment(*r->pool, *signer_, clock_,
                                                         absl::StrCat("127.0.0.1:", intake_port_), relay_options);
    EXPECT_TRUE(parts.ok()) << parts.status();
    if (!parts.ok()) return nullptr;
    r->parts = std::move(*parts);
    for (auto& t : r->parts.background) {
      if (auto* relay = dynamic_cast<db::OutboxRelay*>(t.get())) {
        r->relay = relay;
        if (start_relay) relay->Start();
      } else {
        r->feed = dynamic_cast<DecisionFeed*>(t.get());
        if (start_feed || r->feed == nullptr) t->Start();
      }
    }
    ServerOptions server_options;
    server_options.service_name = "assessment";
    server_options.signer = signer_.get();
    std::vector<grpc::Service*> services;
    for (auto& s : r->parts.services) services.push_back(s.get());
    absl::StatusOr<std::unique_ptr<Server>> server = Server::Start(server_options, services);
    EXPECT_TRUE(server.ok()) << server.status();
    if (!server.ok()) return nullptr;
    r->server = std::move(*server);
    r->channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", r->server->port()),
                                     grpc::InsecureChannelCredentials());
    return r;
  }

  void Sign(grpc::ClientContext& ctx, const Principal& p, const char* service, const char* method) {
    signer_->Attach(ctx, p, FullMethodName(service, method));
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  }

  // --- calls -----------------------------------------------------------------

  grpc::Status Apply(const v1::ApplyIntakeEventRequest& req, v1::ApplyIntakeEventResponse* resp = nullptr,
                     const Principal& as = kIntake) {
    grpc::ClientContext ctx;
    Sign(ctx, as, v1::AssessmentInternal::service_full_name(), "ApplyIntakeEvent");
    v1::ApplyIntakeEventResponse ignored;
    return internal_->ApplyIntakeEvent(&ctx, req, resp ? resp : &ignored);
  }

  grpc::Status GetCase(const Principal& as, const std::string& name, v1::Case* out = nullptr) {
    grpc::ClientContext ctx;
    Sign(ctx, as, v1::Assessment::service_full_name(), "GetCase");
    v1::GetCaseRequest req;
    req.set_name(name);
    v1::Case ignored;
    return stub_->GetCase(&ctx, req, out ? out : &ignored);
  }

  v1::Case MustGet(const std::string& name) {
    v1::Case c;
    grpc::Status s = GetCase(kSecretariat, name, &c);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return c;
  }

  grpc::Status Decide(const Principal& as, const std::string& name, v1::Outcome outcome,
                      v1::Case* out = nullptr, const std::string& reason = "",
                      const std::string& request_id = "") {
    grpc::ClientContext ctx;
    Sign(ctx, as, v1::Assessment::service_full_name(), "RecordDecision");
    v1::RecordDecisionRequest req;
    req.set_name(name);
    req.set_outcome(outcome);
    req.set_reason(reason);
    req.set_request_id(request_id);
    v1::Case ignored;
    return stub_->RecordDecision(&ctx, req, out ? out : &ignored);
  }

  grpc::Status Assign(const Principal& as, const std::string& name, const std::string& assignee,
                      v1::Case* out = nullptr) {
    grpc::ClientContext ctx;
    Sign(ctx, as, v1::Assessment::service_full_name(), "AssignCase");
    v1::AssignCaseRequest req;
    req.set_name(name);
    req.set_assignee(assignee);
    v1::Case ignored;
    return stub_->AssignCase(&ctx, req, out ? out : &ignored);
  }

  std::vector<v1::CaseEvent> History(const std::string& name) {
    grpc::ClientContext ctx;
    Sign(ctx, kSecretariat, v1::Assessment::service_full_name(), "GetCaseHistory");
    v1::GetCaseHistoryRequest req;
    req.set_name(name);
    v1::GetCaseHistoryResponse resp;
    grpc::Status s = stub_->GetCaseHistory(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return {resp.events().begin(), resp.events().end()};
  }

  grpc::Status Precedents(const Principal& as, const v1::FindPrecedentsRequest& req,
                          v1::FindPrecedentsResponse* out) {
    grpc::ClientContext ctx;
    Sign(ctx, as, v1::Assessment::service_full_name(), "FindPrecedents");
    return stub_->FindPrecedents(&ctx, req, out);
  }

  grpc::Status Report(const Principal& as, int year, std::optional<absl::Time> as_of,
                      v1::GetAnnualReportResponse* out,
                      v1::GetAnnualReportRequest::Format format = v1::GetAnnualReportRequest::FORMAT_UNSPECIFIED) {
    grpc::ClientContext ctx;
    Sign(ctx, as, v1::Assessment::service_full_name(), "GetAnnualReport");
    v1::GetAnnualReportRequest req;
    req.set_year(year);
    req.set_format(format);
    if (as_of) *req.mutable_as_of() = TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(*as_of));
    return stub_->GetAnnualReport(&ctx, req, out);
  }

  // --- data ------------------------------------------------------------------

  static v1::ApplicationSnapshot Snapshot(const std::string& case_ref, cv1::Region region,
                                          const std::string& atc = "L01BC59",
                                          const std::string& icd10 = "C18.9") {
    v1::ApplicationSnapshot s;
    const std::string slug(RegionSlug(region));
    s.set_application(absl::StrCat("regions/", slug, "/applications/", case_ref));
    s.set_case_ref(case_ref);
    s.set_region(region);
    *s.mutable_submitted_on() = Date(2025, 3, 1);
    s.set_drug_name("Trifluridine/tipiracil");
    s.set_atc_code(atc);
    s.set_indication("Metastatic colorectal cancer");
    s.set_icd10(icd10);
    s.set_cancer(true);
    s.set_marketed_dk(true);
    s.set_medicinraadet_status(v1::MEDICINRAADET_STATUS_NOT_ASSESSED);
    s.set_ema_status(v1::EMA_STATUS_OFF_LABEL);
    return s;
  }

  static std::string Name(const std::string& case_ref, cv1::Region region) {
    return absl::StrCat("regions/", std::string(RegionSlug(region)), "/cases/", case_ref);
  }

  // Registers a submitted (open) case.
  std::string Submit(const std::string& case_ref, cv1::Region region, const std::string& atc = "L01BC59",
                     const std::string& icd10 = "C18.9") {
    v1::ApplyIntakeEventRequest req;
    req.set_event_id(absl::StrCat("submit-", case_ref));
    *req.mutable_application_submitted() = Snapshot(case_ref, region, atc, icd10);
    grpc::Status s = Apply(req);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return Name(case_ref, region);
  }

  // Registers an imported, already decided case.
  std::string ImportDecided(const std::string& case_ref, cv1::Region region, v1::Outcome outcome,
                            const std::string& atc = "L01BC59", const std::string& icd10 = "C18.9",
                            google::type::Date decided_on = Date(2025, 3, 10)) {
    v1::ApplyIntakeEventRequest req;
    req.set_event_id(absl::StrCat("import-", case_ref));
    v1::ApplicationSnapshot s = Snapshot(case_ref, region, atc, icd10);
    s.set_outcome(outcome);
    *s.mutable_decided_on() = decided_on;
    *req.mutable_application_imported() = s;
    grpc::Status st = Apply(req);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return Name(case_ref, region);
  }

  grpc::Status Withdraw(const std::string& case_ref, cv1::Region region, const std::string& event_id) {
    v1::ApplyIntakeEventRequest req;
    req.set_event_id(event_id);
    v1::ApplicationWithdrawn* w = req.mutable_application_withdrawn();
    w->set_application(absl::StrCat("regions/", std::string(RegionSlug(region)), "/applications/", case_ref));
    *w->mutable_withdrawn_on() = Date(2025, 4, 1);
    w->set_by("apikey:region");
    return Apply(req);
  }

  int64_t OutboxRows() {
    int64_t n = -1;
    absl::Status s = replica_->pool->Run([&](pqxx::work& tx) {
      n = tx.exec("SELECT count(*) FROM outbox")[0][0].as<int64_t>();
      return absl::OkStatus();
    });
    EXPECT_TRUE(s.ok()) << s;
    return n;
  }

  std::string url_;
  FakeClock clock_{CphTime(2025, 4, 7, 12)};
  std::unique_ptr<PrincipalSigner> signer_;
  std::unique_ptr<FakeIntake> intake_;
  std::unique_ptr<grpc::Server> intake_server_;
  int intake_port_ = 0;
  std::unique_ptr<Replica> replica_;
  std::unique_ptr<Replica> replica2_;
  std::unique_ptr<v1::Assessment::Stub> stub_;
  std::unique_ptr<v1::AssessmentInternal::Stub> internal_;
};

// ---------------------------------------------------------------------------

TEST_F(AssessmentServiceTest, RegistrationIsIdempotentByEventId) {
  v1::ApplyIntakeEventRequest req;
  req.set_event_id("evt-1");
  *req.mutable_application_submitted() = Snapshot("A-1", cv1::REGION_SYDDANMARK);
  v1::ApplyIntakeEventResponse first, second;
  ASSERT_TRUE(Apply(req, &first).ok());
  EXPECT_FALSE(first.duplicate());
  EXPECT_EQ(first.assessed_case().name(), "regions/syddanmark/cases/A-1");
  EXPECT_EQ(first.assessed_case().state(), v1::CASE_STATE_RECEIVED);
  ASSERT_TRUE(Apply(req, &second).ok());
  EXPECT_TRUE(second.duplicate());
  EXPECT_EQ(second.assessed_case().name(), first.assessed_case().name());
  // Another event for the same case (a re-import) keeps the first content.
  v1::ApplyIntakeEventRequest again = req;
  again.set_event_id("evt-2");
  again.mutable_application_submitted()->set_drug_name("Something else");
  ASSERT_TRUE(Apply(again).ok());
  EXPECT_EQ(MustGet("regions/syddanmark/cases/A-1").drug_name(), "Trifluridine/tipiracil");
  EXPECT_EQ(History("regions/syddanmark/cases/A-1").size(), 1u);
}

TEST_F(AssessmentServiceTest, ImportedDecidedCaseRegistersAsDecided) {
  const std::string name = ImportDecided("I-1", cv1::REGION_MIDTJYLLAND, v1::OUTCOME_NOT_RECOMMENDED);
  v1::Case c = MustGet(name);
  EXPECT_EQ(c.state(), v1::CASE_STATE_DECIDED);
  EXPECT_EQ(c.decision().outcome(), v1::OUTCOME_NOT_RECOMMENDED);
  EXPECT_TRUE(c.decision().imported());
  EXPECT_EQ(c.decision().decided_on().day(), 10);
  EXPECT_EQ(Decide(kMidtjylland, name, v1::OUTCOME_RECOMMENDED).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  // Imported decisions are history, not news: nothing goes back to intake.
  EXPECT_EQ(OutboxRows(), 0);
}

TEST_F(AssessmentServiceTest, EventValidationAndAuthentication) {
  v1::ApplyIntakeEventRequest req;
  req.set_event_id("bad-1");
  v1::ApplicationSnapshot s = Snapshot("B-1", cv1::REGION_HOVEDSTADEN);
  s.set_atc_code("XX");
  s.clear_submitted_on();
  s.set_ema_status(v1::EMA_STATUS_UNSPECIFIED);
  s.set_outcome(v1::OUTCOME_RECOMMENDED);  // a submission cannot arrive decided
  *req.mutable_application_submitted() = s;
  grpc::Status st = Apply(req);
  ASSERT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  const auto violations = FieldViolationsOf(FromGrpcStatus(st));
  std::vector<std::string> fields;
  for (const auto& [f, _] : violations) fields.push_back(f);
  EXPECT_THAT(fields, ::testing::IsSupersetOf({"application_submitted.atc_code",
                                               "application_submitted.submitted_on",
                                               "application_submitted.ema_status",
                                               "application_submitted.outcome"}));
  // Only services may call the internal API; unsigned calls are refused.
  req.mutable_application_submitted()->CopyFrom(Snapshot("B-1", cv1::REGION_HOVEDSTADEN));
  EXPECT_EQ(Apply(req, nullptr, kSecretariat).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  grpc::ClientContext ctx;
  v1::ApplyIntakeEventResponse resp;
  EXPECT_EQ(internal_->ApplyIntakeEvent(&ctx, req, &resp).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(GetCase(kSecretariat, Name("B-1", cv1::REGION_HOVEDSTADEN)).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

TEST_F(AssessmentServiceTest, OwnRegionDecidesOtherRegionCannotSecretariatOnBehalf) {
  const std::string own = Submit("D-1", cv1::REGION_HOVEDSTADEN);
  const std::string other = Submit("D-2", cv1::REGION_HOVEDSTADEN);

  // Another region: NOT_FOUND, and nothing changed or announced.
  EXPECT_EQ(Decide(kMidtjylland, own, v1::OUTCOME_RECOMMENDED).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Decide(kMidtjylland, Name("D-1", cv1::REGION_MIDTJYLLAND), v1::OUTCOME_RECOMMENDED).error_code(),
            grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(GetCase(kMidtjylland, own).error_code(), grpc::StatusCode::NOT_FOUND);
  // Forum members read but do not decide.
  EXPECT_EQ(Decide(kForumMember, own, v1::OUTCOME_RECOMMENDED).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(MustGet(own).state(), v1::CASE_STATE_RECEIVED);
  EXPECT_EQ(OutboxRows(), 0);

  v1::Case decided;
  ASSERT_TRUE(Decide(kHovedstaden, own, v1::OUTCOME_RECOMMENDED, &decided, "", "req-1").ok());
  EXPECT_EQ(decided.state(), v1::CASE_STATE_DECIDED);
  EXPECT_EQ(decided.decision().outcome(), v1::OUTCOME_RECOMMENDED);
  EXPECT_FALSE(decided.decision().on_behalf_of_region());
  EXPECT_EQ(decided.decision().decided_by().principal_id(), kHovedstaden.id());
  EXPECT_EQ(decided.decision().decided_on().year(), 2025);
  EXPECT_EQ(decided.decision().decided_on().day(), 7);  // today in Copenhagen
  // A retry with the same request id returns the decision; a new decision is refused.
  v1::Case replay;
  ASSERT_TRUE(Decide(kHovedstaden, own, v1::OUTCOME_RECOMMENDED, &replay, "", "req-1").ok());
  EXPECT_EQ(replay.decision().outcome(), v1::OUTCOME_RECOMMENDED);
  EXPECT_EQ(Decide(kHovedstaden, own, v1::OUTCOME_NOT_RECOMMENDED).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(Decide(kSecretariat, own, v1::OUTCOME_NOT_RECOMMENDED).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(MustGet(own).decision().outcome(), v1::OUTCOME_RECOMMENDED);

  // The secretariat on behalf of the region; not concluded needs a reason.
  grpc::Status no_reason = Decide(kSecretariat, other, v1::OUTCOME_NOT_CONCLUDED);
  EXPECT_EQ(no_reason.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  ASSERT_TRUE(Decide(kSecretariat, other, v1::OUTCOME_NOT_CONCLUDED, &decided, "superseded").ok());
  EXPECT_TRUE(decided.decision().on_behalf_of_region());
  EXPECT_EQ(decided.decision().reason(), "superseded");
  EXPECT_EQ(OutboxRows(), 2);

  const std::vector<v1::CaseEvent> history = History(other);
  ASSERT_EQ(history.size(), 2u);
  EXPECT_EQ(history[0].kind(), v1::CaseEvent::KIND_REGISTERED);
  EXPECT_EQ(history[1].kind(), v1::CaseEvent::KIND_DECIDED);
  EXPECT_EQ(history[1].stamp().principal_id(), kSecretariat.id());
}

TEST_F(AssessmentServiceTest, AssignmentLifecycle) {
  const std::string name = Submit("S-1", cv1::REGION_HOVEDSTADEN);
  v1::Case c;
  ASSERT_TRUE(Assign(kHovedstaden, name, "Dr. Jensen", &c).ok());
  EXPECT_EQ(c.state(), v1::CASE_STATE_UNDER_ASSESSMENT);
  EXPECT_EQ(c.assignee(), "Dr. Jensen");
  EXPECT_EQ(Assign(kMidtjylland, name, "x").error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Assign(kSecretariat, name, "").error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  ASSERT_TRUE(Decide(kHovedstaden, name, v1::OUTCOME_RECOMMENDED).ok());
  EXPECT_EQ(Assign(kSecretariat, name, "late").error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  const std::vector<v1::CaseEvent> h = History(name);
  ASSERT_EQ(h.size(), 3u);
  EXPECT_EQ(h[1].kind(), v1::CaseEvent::KIND_ASSIGNED);
  EXPECT_EQ(h[1].detail(), "Dr. Jensen");
}

TEST_F(AssessmentServiceTest, WithdrawalBeforeAndAfterDecision) {
  const std::string open = Submit("W-1", cv1::REGION_SYDDANMARK);
  const std::string decided = Submit("W-2", cv1::REGION_SYDDANMARK);
  ASSERT_TRUE(Decide(kSecretariat, decided, v1::OUTCOME_NOT_RECOMMENDED).ok());

  EXPECT_EQ(Withdraw("W-2", cv1::REGION_SYDDANMARK, "wd-2").error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  // A retry gets the same answer; the case stays decided.
  EXPECT_EQ(Withdraw("W-2", cv1::REGION_SYDDANMARK, "wd-2").error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(MustGet(decided).state(), v1::CASE_STATE_DECIDED);
  EXPECT_EQ(History(decided).back().kind(), v1::CaseEvent::KIND_WITHDRAWAL_REFUSED);

  ASSERT_TRUE(Withdraw("W-1", cv1::REGION_SYDDANMARK, "wd-1").ok());
  ASSERT_TRUE(Withdraw("W-1", cv1::REGION_SYDDANMARK, "wd-1").ok());  // duplicate event
  v1::Case c = MustGet(open);
  EXPECT_EQ(c.state(), v1::CASE_STATE_WITHDRAWN);
  EXPECT_EQ(c.withdrawn_on().day(), 1);
  EXPECT_EQ(Decide(kSecretariat, open, v1::OUTCOME_RECOMMENDED).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(Withdraw("NOPE", cv1::REGION_SYDDANMARK, "wd-3").error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(AssessmentServiceTest, ListCasesIsRegionScopedAndPaginated) {
  for (int i = 0; i < 5; ++i) Submit(absl::StrCat("L-", i), cv1::REGION_HOVEDSTADEN);
  Submit("L-x", cv1::REGION_MIDTJYLLAND);
  std::vector<std::string> seen;
  std::string token;
  do {
    grpc::ClientContext ctx;
    Sign(ctx, kHovedstaden, v1::Assessment::service_full_name(), "ListCases");
    v1::ListCasesRequest req;
    req.set_page_size(2);
    req.set_page_token(token);
    v1::ListCasesResponse resp;
    ASSERT_TRUE(stub_->ListCases(&ctx, req, &resp).ok());
    for (const v1::Case& c : resp.cases()) seen.push_back(c.case_ref());
    token = resp.next_page_token();
  } while (!token.empty());
  EXPECT_THAT(seen, ::testing::ElementsAre("L-0", "L-1", "L-2", "L-3", "L-4"));

  grpc::ClientContext ctx;
  Sign(ctx, kHovedstaden, v1::Assessment::service_full_name(), "ListCases");
  v1::ListCasesRequest req;
  req.set_region(cv1::REGION_MIDTJYLLAND);
  v1::ListCasesResponse resp;
  EXPECT_EQ(stub_->ListCases(&ctx, req, &resp).error_code(), grpc::StatusCode::PERMISSION_DENIED);

  grpc::ClientContext ctx2;
  Sign(ctx2, kForumMember, v1::Assessment::service_full_name(), "ListCases");
  v1::ListCasesRequest all;
  all.set_year(2025);
  ASSERT_TRUE(stub_->ListCases(&ctx2, all, &resp).ok());
  EXPECT_EQ(resp.cases_size(), 6);
}

TEST_F(AssessmentServiceTest, PrecedentsCountEveryRegionAndFlagDepartures) {
  ImportDecided("P-1", cv1::REGION_HOVEDSTADEN, v1::OUTCOME_RECOMMENDED, "L01BC59", "C18.9");
  ImportDecided("P-2", cv1::REGION_MIDTJYLLAND, v1::OUTCOME_RECOMMENDED, "L01BC59", "C18.7");
  ImportDecided("P-3", cv1::REGION_MIDTJYLLAND, v1::OUTCOME_NOT_RECOMMENDED, "L01BC59", "C18.9");
  ImportDecided("P-4", cv1::REGION_NORDJYLLAND, v1::OUTCOME_RECOMMENDED, "L01BC59", "C19");
  ImportDecided("P-5", cv1::REGION_SJAELLAND, v1::OUTCOME_NOT_CONCLUDED, "L01BC59", "C18.0");
  ImportDecided("P-6", cv1::REGION_SJAELLAND, v1::OUTCOME_RECOMMENDED, "L01XC32", "C18.9");  // other drug
  Submit("P-open", cv1::REGION_SYDDANMARK, "L01BC59", "C18.9");  // not a decision
  const std::string mine = Submit("P-new", cv1::REGION_SYDDANMARK, "L01BC59", "C18.9");

  v1::FindPrecedentsRequest req;
  req.set_atc_code("L01BC59");
  req.set_icd10("C18");
  req.set_proposed_outcome(v1::OUTCOME_NOT_RECOMMENDED);
  v1::FindPrecedentsResponse resp;
  ASSERT_TRUE(Precedents(kMidtjylland, req, &resp).ok());  // a region sees all regions' precedents
  EXPECT_EQ(resp.national().total(), 4);
  EXPECT_EQ(resp.national().recommended(), 2);
  EXPECT_EQ(resp.national().not_recommended(), 1);
  EXPECT_EQ(resp.national().not_concluded(), 1);
  ASSERT_EQ(resp.per_region_size(), 5);
  EXPECT_EQ(resp.per_region(1).region(), cv1::REGION_MIDTJYLLAND);
  EXPECT_EQ(resp.per_region(1).counts().recommended(), 1);
  EXPECT_EQ(resp.per_region(1).counts().not_recommended(), 1);
  EXPECT_EQ(resp.per_region(3).counts().not_concluded(), 1);
  EXPECT_EQ(resp.national_practice(), v1::OUTCOME_RECOMMENDED);
  EXPECT_NEAR(resp.practice_share(), 2.0 / 3.0, 1e-9);
  EXPECT_TRUE(resp.departs_from_practice());
  EXPECT_EQ(resp.precedents_size(), 4);

  // By case: its own ATC and exact ICD-10, itself excluded, paged.
  v1::FindPrecedentsRequest by_case;
  by_case.set_case_name(mine);
  by_case.set_proposed_outcome(v1::OUTCOME_RECOMMENDED);
  by_case.set_page_size(1);
  ASSERT_TRUE(Precedents(kSecretariat, by_case, &resp).ok());
  EXPECT_EQ(resp.national().total(), 2);  // P-1, P-3
  EXPECT_EQ(resp.national_practice(), v1::OUTCOME_UNSPECIFIED);  // 1 : 1, split
  EXPECT_FALSE(resp.departs_from_practice());
  ASSERT_EQ(resp.precedents_size(), 1);
  EXPECT_FALSE(resp.next_page_token().empty());
  by_case.set_page_token(resp.next_page_token());
  v1::FindPrecedentsResponse page2;
  ASSERT_TRUE(Precedents(kSecretariat, by_case, &page2).ok());
  ASSERT_EQ(page2.precedents_size(), 1);
  EXPECT_NE(page2.precedents(0).case_name(), resp.precedents(0).case_name());
  EXPECT_TRUE(page2.next_page_token().empty());

  // Letter-third ICD-10 codes (as in the Forum's data) are valid filters.
  ImportDecided("P-7", cv1::REGION_SJAELLAND, v1::OUTCOME_RECOMMENDED, "L01XX41", "C7A.8");
  v1::FindPrecedentsRequest c7a;
  c7a.set_atc_code("L01XX41");
  c7a.set_icd10("C7A");
  ASSERT_TRUE(Precedents(kSecretariat, c7a, &resp).ok());
  EXPECT_EQ(resp.national().recommended(), 1);

  v1::FindPrecedentsRequest bad;
  bad.set_atc_code("nonsense");
  EXPECT_EQ(Precedents(kSecretariat, bad, &resp).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  // Another region's case cannot be used to look up precedents by name.
  EXPECT_EQ(Precedents(kHovedstaden, by_case, &resp).error_code(), grpc::StatusCode::NOT_FOUND);
}

// Reads the next event of a watch stream.
std::optional<v1::DecisionEvent> Next(grpc::ClientReader<v1::DecisionEvent>& reader) {
  v1::DecisionEvent ev;
  if (!reader.Read(&ev)) return std::nullopt;
  return ev;
}

TEST_F(AssessmentServiceTest, WatchDecisionsFiltersByRegionAcrossReplicas) {
  replica2_ = StartReplica();
  ASSERT_NE(replica2_, nullptr);
  auto stub2 = v1::Assessment::NewStub(replica2_->channel);
  const std::string h1 = Submit("WD-1", cv1::REGION_HOVEDSTADEN);
  const std::string m1 = Submit("WD-2", cv1::REGION_MIDTJYLLAND);
  const std::string h2 = Submit("WD-3", cv1::REGION_HOVEDSTADEN);

  // A region watching on replica 2; the secretariat on replica 1.
  grpc::ClientContext region_ctx, all_ctx;
  Sign(region_ctx, kHovedstaden, v1::Assessment::service_full_name(), "WatchDecisions");
  Sign(all_ctx, kSecretariat, v1::Assessment::service_full_name(), "WatchDecisions");
  v1::WatchDecisionsRequest req;
  auto region_reader = stub2->WatchDecisions(&region_ctx, req);
  auto all_reader = stub_->WatchDecisions(&all_ctx, req);
  // Initial metadata: both subscriptions are live.
  region_reader->WaitForInitialMetadata();
  all_reader->WaitForInitialMetadata();

  ASSERT_TRUE(Decide(kMidtjylland, m1, v1::OUTCOME_NOT_RECOMMENDED).ok());
  ASSERT_TRUE(Decide(kHovedstaden, h1, v1::OUTCOME_RECOMMENDED).ok());

  std::optional<v1::DecisionEvent> e = Next(*region_reader);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->decided_case().name(), h1);  // midtjylland's decision was filtered out
  EXPECT_EQ(e->decided_case().decision().outcome(), v1::OUTCOME_RECOMMENDED);
  const int64_t resume_from = e->sequence();

  std::optional<v1::DecisionEvent> a = Next(*all_reader);
  std::optional<v1::DecisionEvent> b = Next(*all_reader);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->decided_case().name(), m1);
  EXPECT_EQ(b->decided_case().name(), h1);
  EXPECT_LT(a->sequence(), b->sequence());

  // A region may not watch another region.
  grpc::ClientContext bad_ctx;
  Sign(bad_ctx, kHovedstaden, v1::Assessment::service_full_name(), "WatchDecisions");
  v1::WatchDecisionsRequest other;
  other.set_region(cv1::REGION_MIDTJYLLAND);
  auto bad_reader = stub_->WatchDecisions(&bad_ctx, other);
  v1::DecisionEvent ignored;
  EXPECT_FALSE(bad_reader->Read(&ignored));
  EXPECT_EQ(bad_reader->Finish().error_code(), grpc::StatusCode::PERMISSION_DENIED);

  region_ctx.TryCancel();
  all_ctx.TryCancel();
  region_reader->Finish();
  all_reader->Finish();

  // Resume: decisions made while nobody watched are replayed from the store.
  ASSERT_TRUE(Decide(kSecretariat, h2, v1::OUTCOME_NOT_CONCLUDED, nullptr, "patient died").ok());
  grpc::ClientContext resume_ctx;
  Sign(resume_ctx, kHovedstaden, v1::Assessment::service_full_name(), "WatchDecisions");
  v1::WatchDecisionsRequest resume;
  resume.set_resume_after(resume_from);
  auto resumed = stub_->WatchDecisions(&resume_ctx, resume);
  e = Next(*resumed);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->decided_case().name(), h2);
  EXPECT_TRUE(e->decided_case().decision().on_behalf_of_region());
  resume_ctx.TryCancel();
  resumed->Finish();
}

// A replica whose feed has not made its first read yet when a watch starts,
// and a decision committed in between (a replica just started, as in the
// test above under load): the feed's first read takes that decision as
// history, and must still wake the watch, which then reads it.
TEST_F(AssessmentServiceTest, AWatchStartedBeforeTheFeedsFirstReadGetsWhatWasDecidedMeanwhile) {
  replica2_ = StartReplica(/*start_relay=*/false, /*start_feed=*/false);
  ASSERT_NE(replica2_, nullptr);
  ASSERT_NE(replica2_->feed, nullptr);
  auto stub2 = v1::Assessment::NewStub(replica2_->channel);
  const std::string h1 = Submit("WF-1", cv1::REGION_HOVEDSTADEN);

  grpc::ClientContext ctx;
  Sign(ctx, kHovedstaden, v1::Assessment::service_full_name(), "WatchDecisions");
  // A regression ends the test at this deadline instead of hanging it.
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  v1::WatchDecisionsRequest req;
  auto reader = stub2->WatchDecisions(&ctx, req);
  reader->WaitForInitialMetadata();
  ASSERT_TRUE(Decide(kHovedstaden, h1, v1::OUTCOME_RECOMMENDED).ok());  // on replica 1

  ASSERT_TRUE(replica2_->feed->Poll().ok());  // the feed's first read
  std::optional<v1::DecisionEvent> e = Next(*reader);
  ASSERT_TRUE(e.has_value()) << reader->Finish().error_message();
  EXPECT_EQ(e->decided_case().name(), h1);
  ctx.TryCancel();
  reader->Finish();
}

// Imports the Forum's fixture through ApplyIntakeEvent, as intake's outbox does.
int ImportFixture(v1::AssessmentInternal::Stub& internal, const PrincipalSigner& signer) {
  std::ifstream in(std::string(MEDKOORD_FIXTURES_DIR) + "/forum_cases_2024.csv", std::ios::binary);
  std::stringstream bytes;
  bytes << in.rdbuf();
  csv::Reader reader;
  reader.Feed(bytes.str());
  reader.Finish();
  csv::Record rec;
  bool header = true;
  int imported = 0;
  while (reader.Next(rec)) {
    if (header) {
      header = false;
      continue;
    }
    const std::vector<std::string>& f = rec.fields;
    if (f.size() != 13) {
      ADD_FAILURE() << "line " << rec.line;
      continue;
    }
    v1::ApplyIntakeEventRequest req;
    req.set_event_id(absl::StrCat("import-", f[0]));
    v1::ApplicationSnapshot* s = req.mutable_application_imported();
    const cv1::Region region = RegionFromSlug(f[1]).value_or(cv1::REGION_UNSPECIFIED);
    s->set_application(absl::StrCat("regions/", f[1], "/applications/", f[0]));
    s->set_case_ref(f[0]);
    s->set_region(region);
    auto date = [](const std::string& iso) {
      absl::CivilDay d;
      EXPECT_TRUE(absl::ParseCivilTime(iso, &d)) << iso;
      return Date(static_cast<int>(d.year()), d.month(), d.day());
    };
    *s->mutable_submitted_on() = date(f[2]);
    s->set_drug_name(f[3]);
    s->set_atc_code(f[4]);
    s->set_indication(f[5]);
    s->set_icd10(f[6]);
    s->set_cancer(f[7] == "yes");
    s->set_marketed_dk(f[8] == "yes");
    s->set_medicinraadet_status(static_cast<v1::MedicinraadetStatus>(MedicinraadetFromKey(f[9]).value_or(0)));
    s->set_ema_status(static_cast<v1::EmaStatus>(EmaFromKey(f[10]).value_or(0)));
    s->set_outcome(static_cast<v1::Outcome>(OutcomeFromKey(f[11]).value_or(0)));
    if (!f[12].empty()) *s->mutable_decided_on() = date(f[12]);
    grpc::ClientContext ctx;
    signer.Attach(ctx, kIntake, FullMethodName(v1::AssessmentInternal::service_full_name(), "ApplyIntakeEvent"));
    v1::ApplyIntakeEventResponse resp;
    grpc::Status st = internal.ApplyIntakeEvent(&ctx, req, &resp);
    EXPECT_TRUE(st.ok()) << "line " << rec.line << ": " << st.error_message();
    if (st.ok()) ++imported;
  }
  return imported;
}

int64_t JsonCount(const nlohmann::json& j, const char* a, const char* b) { return j[a][b].get<int64_t>(); }

TEST_F(AssessmentServiceTest, AnnualReportOverTheFullFixture) {
  ASSERT_EQ(ImportFixture(*internal_, *signer_), 541);
  v1::GetAnnualReportResponse resp;
  grpc::Status st = Report(kSecretariat, 2024, CphTime(2025, 4, 7), &resp);
  ASSERT_TRUE(st.ok()) << st.error_message();
  const nlohmann::json j = nlohmann::json::parse(resp.json());
  EXPECT_EQ(j["year"], 2024);
  EXPECT_EQ(j["as_of"], "2025-04-07T00:00:00+02:00");
  EXPECT_EQ(j["total"], 541);
  EXPECT_EQ(j["per_year"], nlohmann::json::parse("[[2024, 541]]"));
  EXPECT_EQ(JsonCount(j, "outcome", "recommended"), 371);
  EXPECT_EQ(JsonCount(j, "outcome", "not_recommended"), 143);
  EXPECT_EQ(JsonCount(j, "outcome", "not_concluded"), 27);
  EXPECT_EQ(JsonCount(j, "outcome", "open"), 0);
  EXPECT_EQ(JsonCount(j, "cancer", "yes"), 385);
  EXPECT_EQ(JsonCount(j, "cancer", "no"), 156);
  EXPECT_EQ(JsonCount(j, "marketed_dk", "yes"), 436);
  EXPECT_EQ(JsonCount(j, "marketed_dk", "no"), 105);
  EXPECT_EQ(JsonCount(j, "medicinraadet_status", "not_assessed"), 306);
  EXPECT_EQ(JsonCount(j, "medicinraadet_status", "under_assessment"), 102);
  EXPECT_EQ(JsonCount(j, "medicinraadet_status", "rejected"), 110);
  EXPECT_EQ(JsonCount(j, "medicinraadet_status", "recommended_outside_criteria"), 23);
  EXPECT_EQ(JsonCount(j, "ema_status", "on_label"), 348);
  EXPECT_EQ(JsonCount(j, "ema_status", "off_label"), 183);
  EXPECT_EQ(JsonCount(j, "ema_status", "unknown"), 10);
  EXPECT_EQ(JsonCount(j, "region", "hovedstaden"), 159);
  EXPECT_EQ(j["top_drugs"], nlohmann::json::parse(R"([["Trifluridine/tipiracil", 49],
      ["Trastuzumab deruxtecan", 29], ["Mepolizumab", 26], ["Brentuximab vedotin", 23], ["Ibrutinib", 20]])"));
  EXPECT_EQ(j["top_indications"][0], nlohmann::json::parse(R"(["Metastatic colorectal cancer", 68])"));
  EXPECT_EQ(j["top_non_cancer_indications"][0][0], "Chronic rhinosinusitis with nasal polyps");
  EXPECT_EQ(j["top_non_cancer_indications"][1][0], "Hidradenitis suppurativa");
  EXPECT_EQ(j["top_non_cancer_indications"][2][0], "Achondroplasia");
  EXPECT_DOUBLE_EQ(j["percent"]["outcome"]["recommended"].get<double>(), 68.6);
  EXPECT_EQ(j["regions"]["hovedstaden"]["total"], 159);
  EXPECT_EQ(j["regions"]["nordjylland"]["outcome"]["not_concluded"], 6);

  // The protobuf and CSV carry the same figures.
  const v1::AnnualReport& r = resp.report();
  EXPECT_EQ(r.national().total(), 541);
  EXPECT_EQ(r.data_source_date().day(), 7);
  ASSERT_EQ(r.regions_size(), 5);
  EXPECT_EQ(r.regions(0).slug(), "hovedstaden");
  EXPECT_EQ(r.regions(0).section().total(), 159);
  EXPECT_NE(resp.csv().find("national,outcome,recommended,371,68.6"), std::string::npos);

  // Only the requested rendering.
  v1::GetAnnualReportResponse csv_only;
  ASSERT_TRUE(Report(kForumMember, 2024, CphTime(2025, 4, 7), &csv_only,
                     v1::GetAnnualReportRequest::FORMAT_CSV).ok());
  EXPECT_FALSE(csv_only.has_report());
  EXPECT_TRUE(csv_only.json().empty());
  EXPECT_FALSE(csv_only.csv().empty());
  // Regions do not read the national report; a year is required.
  EXPECT_EQ(Report(kHovedstaden, 2024, std::nullopt, &resp).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Report(kSecretariat, 0, std::nullopt, &resp).error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  // as_of mid-year: later submissions are unknown, later decisions open.
  v1::GetAnnualReportResponse mid;
  ASSERT_TRUE(Report(kSecretariat, 2024, CphTime(2024, 6, 30, 12), &mid).ok());
  const nlohmann::json m = nlohmann::json::parse(mid.json());
  EXPECT_EQ(m["total"], 283);
  EXPECT_EQ(JsonCount(m, "outcome", "recommended"), 162);
  EXPECT_EQ(JsonCount(m, "outcome", "not_recommended"), 62);
  EXPECT_EQ(JsonCount(m, "outcome", "not_concluded"), 18);
  EXPECT_EQ(JsonCount(m, "outcome", "open"), 41);
}

TEST_F(AssessmentServiceTest, ReportAsOfCountsLaterLiveDecisionsAsOpen) {
  const std::string a = Submit("R-1", cv1::REGION_HOVEDSTADEN);
  const std::string b = Submit("R-2", cv1::REGION_MIDTJYLLAND);
  const std::string c = Submit("R-3", cv1::REGION_MIDTJYLLAND);
  const absl::Time before = clock_.Now();
  clock_.Advance(absl::Hours(1));
  ASSERT_TRUE(Decide(kHovedstaden, a, v1::OUTCOME_RECOMMENDED).ok());
  ASSERT_TRUE(Withdraw("R-3", cv1::REGION_MIDTJYLLAND, "wd-r3").ok());
  clock_.Advance(absl::Hours(1));
  const absl::Time after = clock_.Now();

  v1::GetAnnualReportResponse early, late, now;
  ASSERT_TRUE(Report(kSecretariat, 2025, before, &early).ok());
  ASSERT_TRUE(Report(kSecretariat, 2025, after, &late).ok());
  ASSERT_TRUE(Report(kSecretariat, 2025, std::nullopt, &now).ok());  // default: now
  const nlohmann::json e = nlohmann::json::parse(early.json());
  const nlohmann::json l = nlohmann::json::parse(late.json());
  EXPECT_EQ(e["total"], 3);
  EXPECT_EQ(JsonCount(e, "outcome", "open"), 3);
  EXPECT_EQ(JsonCount(e, "outcome", "recommended"), 0);
  EXPECT_EQ(JsonCount(l, "outcome", "open"), 1);
  EXPECT_EQ(JsonCount(l, "outcome", "recommended"), 1);
  EXPECT_EQ(JsonCount(l, "outcome", "not_concluded"), 1);  // the withdrawal
  EXPECT_EQ(l["regions"]["midtjylland"]["total"], 2);
  EXPECT_EQ(now.json(), late.json());
  EXPECT_EQ(now.report().national().total(), 3);
  (void)b;
}

// Another case set: three years, live decisions and withdrawals at known
// times. The service's report (count cells + as_of corrections in SQL) must
// equal the pure aggregation of the same cases for every as_of.
TEST_F(AssessmentServiceTest, ReportEqualsPureAggregationOnAnotherCaseSet) {
  std::vector<ReportCase> expected;
  const std::vector<std::string> drugs = {"Dupilumab", "Mepolizumab", "Nivolumab", "dupilumab"};
  const std::vector<std::string> indications = {"Atopic dermatitis", "Asthma", "Melanoma, metastatic"};
  for (int i = 0; i < 48; ++i) {
    const cv1::Region region = static_cast<cv1::Region>(1 + i % 5);
    const absl::CivilDay submitted(2022 + i % 3, 1 + (i * 5) % 12, 1 + (i * 7) % 28);
    const std::string ref = absl::StrCat("X-", i);
    v1::ApplyIntakeEventRequest req;
    req.set_event_id(absl::StrCat("x-", i));
    v1::ApplicationSnapshot* s = req.mutable_application_submitted();
    *s = Snapshot(ref, region);
    *s->mutable_submitted_on() = Date(static_cast<int>(submitted.year()), submitted.month(), submitted.day());
    s->set_drug_name(drugs[i % drugs.size()]);
    s->set_indication(indications[i % indications.size()]);
    s->set_cancer(i % 3 == 2);
    s->set_marketed_dk(i % 4 != 0);
    s->set_medicinraadet_status(static_cast<v1::MedicinraadetStatus>(1 + i % 4));
    s->set_ema_status(static_cast<v1::EmaStatus>(1 + i % 3));
    ASSERT_TRUE(Apply(req).ok());
    ReportCase c;
    c.region = region;
    c.submitted_on = submitted;
    c.drug_name = drugs[i % drugs.size()];
    c.indication = indications[i % indications.size()];
    c.cancer = i % 3 == 2;
    c.marketed_dk = i % 4 != 0;
    c.medicinraadet = 1 + i % 4;
    c.ema = 1 + i % 3;
    c.known_at = absl::InfiniteFuture();
    expected.push_back(c);
  }
  // Decisions and withdrawals an hour apart, so as_of can fall between them.
  std::vector<absl::Time> moments;
  for (int i = 0; i < 48; i += 2) {
    clock_.Advance(absl::Hours(1));
    const cv1::Region region = static_cast<cv1::Region>(1 + i % 5);
    const std::string ref = absl::StrCat("X-", i);
    if (i % 10 == 4) {
      ASSERT_TRUE(Withdraw(ref, region, absl::StrCat("wx-", i)).ok());  // recorded now (clock)
      expected[i].outcome = 3;
    } else {
      const v1::Outcome outcome = static_cast<v1::Outcome>(1 + (i / 2) % 3);
      ASSERT_TRUE(Decide(kSecretariat, Name(ref, region), outcome, nullptr, "reason").ok());
      expected[i].outcome = outcome;
    }
    expected[i].known_at = clock_.Now();
    moments.push_back(clock_.Now());
  }
  const std::vector<absl::Time> as_ofs = {moments.front() - absl::Minutes(1), moments[7] + absl::Minutes(1),
                                          moments.back(), CphTime(2023, 6, 15, 12), CphTime(2022, 12, 31, 23)};
  for (int year : {2022, 2023, 2024}) {
    for (absl::Time as_of : as_ofs) {
      absl::StatusOr<AnnualReport> want = BuildAnnualReport(AggregateCases(expected, year, as_of));
      ASSERT_TRUE(want.ok());
      v1::GetAnnualReportResponse got;
      ASSERT_TRUE(Report(kSecretariat, year, as_of, &got).ok());
      EXPECT_EQ(nlohmann::json::parse(got.json()), nlohmann::json::parse(RenderReportJson(*want)))
          << "year " << year << " as_of " << absl::FormatTime(as_of);
      EXPECT_EQ(got.csv(), RenderReportCsv(*want));
    }
  }
}

// The report's month cells plus as_of's month scan (migration 0003) against
// a brute-force count of the stored cases, for as_of on every fifth day of
// 2024 and early 2025, at month boundaries, at and just before each live
// decision: the Forum fixture (imported decisions) plus live cases submitted
// in late 2023 and 2024, decided or withdrawn during 2024, several on one day.
TEST_F(AssessmentServiceTest, ReportAtAnyAsOfEqualsABruteForceCountOverTheFixture) {
  clock_.Set(CphTime(2023, 12, 1, 9));
  std::vector<std::pair<std::string, cv1::Region>> live;
  for (int i = 0; i < 40; ++i) {
    const cv1::Region region = static_cast<cv1::Region>(1 + i % 5);
    const std::string ref = absl::StrCat("L-", i);
    v1::ApplyIntakeEventRequest req;
    req.set_event_id(absl::StrCat("live-", i));
    v1::ApplicationSnapshot* s = req.mutable_application_submitted();
    *s = Snapshot(ref, region);
    *s->mutable_submitted_on() = i < 8 ? Date(2023, 12, 1 + i) : Date(2024, 1 + i % 6, 1 + i % 28);
    s->set_drug_name(i % 3 == 0 ? "Dupilumab" : "Trifluridine/tipiracil");
    s->set_cancer(i % 3 != 0);
    ASSERT_TRUE(Apply(req).ok());
    live.emplace_back(ref, region);
  }
  // Decisions from mid-January to July 2024, three a day, hours apart; the
  // 2023 cases are decided in January (a report year's case decided in the
  // next year) and case 7 stays open.
  std::vector<absl::Time> moments;
  for (int i = 0; i < 39; ++i) {
    const auto& [ref, region] = live[i];
    const absl::CivilDay day = absl::CivilDay(2024, 1, 10) + (i < 8 ? i : 5 * i);
    const absl::CivilDay submitted = i < 8 ? absl::CivilDay(2023, 12, 1 + i) : absl::CivilDay(2024, 1 + i % 6, 1 + i % 28);
    clock_.Set(absl::FromCivil(absl::CivilSecond(std::max(day, submitted)), Cph()) + absl::Hours(8 + 3 * (i % 3)));
    if (i == 7) continue;
    if (i % 7 == 3) {
      ASSERT_TRUE(Withdraw(ref, region, absl::StrCat("wl-", i)).ok());
    } else {
      ASSERT_TRUE(Decide(kSecretariat, Name(ref, region), static_cast<v1::Outcome>(1 + i % 3), nullptr, "r").ok());
    }
    moments.push_back(clock_.Now());
  }
  clock_.Set(CphTime(2025, 4, 7, 12));
  ASSERT_EQ(ImportFixture(*internal_, *signer_), 541);

  // Brute force: every stored case as it is.
  std::vector<ReportCase> cases;
  {
    pqxx::connection conn(url_);
    pqxx::work tx(conn);
    for (const pqxx::row& r : tx.exec(
             "SELECT region, submitted_on::text, drug_name, indication, cancer, marketed_dk, medicinraadet_status, "
             "ema_status, outcome, (extract(epoch FROM known_at) * 1000000)::bigint FROM cases")) {
      ReportCase c;
      c.region = r[0].as<int>();
      EXPECT_TRUE(absl::ParseCivilTime(r[1].as<std::string>(), &c.submitted_on));
      c.drug_name = r[2].as<std::string>();
      c.indication = r[3].as<std::string>();
      c.cancer = r[4].as<bool>();
      c.marketed_dk = r[5].as<bool>();
      c.medicinraadet = r[6].as<int>();
      c.ema = r[7].as<int>();
      c.outcome = r[8].as<int>();
      c.known_at = r[9].is_null() ? absl::InfinitePast() : absl::FromUnixMicros(r[9].as<int64_t>());
      cases.push_back(std::move(c));
    }
  }
  ASSERT_EQ(cases.size(), 581u);

  std::vector<absl::Time> as_ofs;
  for (absl::CivilDay d(2024, 1, 1); d <= absl::CivilDay(2025, 5, 1); d += 5) {
    as_ofs.push_back(absl::FromCivil(absl::CivilHour(d) + 12, Cph()));
  }
  for (absl::CivilMonth m(2023, 12); m <= absl::CivilMonth(2025, 5); ++m) {
    const absl::Time start = absl::FromCivil(m, Cph());
    as_ofs.insert(as_ofs.end(), {start - absl::Microseconds(1), start});
  }
  for (absl::Time t : moments) {
    as_ofs.insert(as_ofs.end(), {t - absl::Microseconds(1), t});
  }
  AssessmentStore store(*replica_->pool);
  for (int year : {2023, 2024}) {
    for (absl::Time as_of : as_ofs) {
      // 2023's cases are all decided by February 2024.
      if (year == 2023 && as_of > CphTime(2024, 3, 1)) continue;
      absl::StatusOr<ReportInput> stored = store.LoadReportInput(year, as_of);
      ASSERT_TRUE(stored.ok()) << stored.status();
      absl::StatusOr<AnnualReport> got = BuildAnnualReport(*stored);
      absl::StatusOr<AnnualReport> want = BuildAnnualReport(AggregateCases(cases, year, as_of));
      ASSERT_TRUE(got.ok()) << got.status();
      ASSERT_TRUE(want.ok()) << want.status();
      ASSERT_EQ(RenderReportJson(*got), RenderReportJson(*want))
          << "year " << year << " as_of " << absl::FormatTime(as_of, Cph());
    }
  }
  // As of 7/4-25 the 2024 report holds the fixture's 541 cases and the 32
  // live ones of 2024.
  absl::StatusOr<ReportInput> published = store.LoadReportInput(2024, CphTime(2025, 4, 7));
  ASSERT_TRUE(published.ok());
  absl::StatusOr<AnnualReport> report = BuildAnnualReport(*published);
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->national.total, 541 + 32);
}

TEST_F(AssessmentServiceTest, OutboxDeliversDecisionsToIntakeAfterAnOutage) {
  const std::string n1 = Submit("O-1", cv1::REGION_SJAELLAND);
  const std::string n2 = Submit("O-2", cv1::REGION_SJAELLAND);
  // Intake goes down.
  intake_server_->Shutdown();
  intake_server_.reset();
  ASSERT_TRUE(Decide(kSecretariat, n1, v1::OUTCOME_RECOMMENDED).ok());
  ASSERT_TRUE(Decide(RegionPrincipal(cv1::REGION_SJAELLAND), n2, v1::OUTCOME_NOT_CONCLUDED, nullptr,
                     "superseded by a Medicinrådet recommendation").ok());
  absl::StatusOr<int> attempt = replica_->relay->DeliverPending();
  EXPECT_TRUE(!attempt.ok() || *attempt == 0);
  EXPECT_TRUE(intake_->received().empty());

  // Intake comes back on the same address; the running relay delivers both, in order.
  int port = 0;
  intake_server_ = StartGrpc(intake_.get(), &port, intake_port_);
  ASSERT_EQ(port, intake_port_);
  for (auto& t : replica_->parts.background) {
    if (dynamic_cast<db::OutboxRelay*>(t.get()) != nullptr) t->Start();
  }
  ASSERT_TRUE(intake_->WaitFor(2, absl::Seconds(60)));
  const std::vector<intake::ApplyDecisionRequest> got = intake_->received();
  ASSERT_GE(got.size(), 2u);
  EXPECT_EQ(got[0].application(), "regions/sjaelland/applications/O-1");
  EXPECT_EQ(got[0].outcome(), intake::OUTCOME_RECOMMENDED);
  EXPECT_EQ(got[0].decided_by(), kSecretariat.id());
  EXPECT_EQ(got[0].decided_on().day(), 7);
  EXPECT_FALSE(got[0].event_id().empty());
  EXPECT_EQ(got[1].application(), "regions/sjaelland/applications/O-2");
  EXPECT_EQ(got[1].outcome(), intake::OUTCOME_NOT_CONCLUDED);
  EXPECT_EQ(got[1].reason(), "superseded by a Medicinrådet recommendation");
  EXPECT_NE(got[0].event_id(), got[1].event_id());
  EXPECT_EQ(intake_->callers()[0], "service:assessment");
}

}  // namespace
}  // namespace medkoord::assessment
