#pragma once
// An in-process intake server against a fresh PostgreSQL database per test,
// with a real gRPC stub, principals signed with a test key, a fake clock, and
// a stand-in assessment (AssessmentInternal) that the outbox relay delivers
// to, which can be taken down and brought back.

#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "common/db/migrations.h"
#include "common/db/pool.h"
#include "common/principal.h"
#include "common/server.h"
#include "common/status.h"
#include "medkoord/assessment/v1/assessment.grpc.pb.h"
#include "medkoord/intake/v1/intake.grpc.pb.h"
#include "services/intake/assessment_delivery.h"
#include "services/intake/intake_service.h"
#include "services/intake/intake_store.h"
#include "services/intake/migrations.h"
#include "tests/support/postgres_cluster.h"

namespace medkoord::intake::testing {

namespace v1 = ::medkoord::intake::v1;
namespace av1 = ::medkoord::assessment::v1;

inline std::string ReadFixture(const std::string& name) {
  std::ifstream in(std::string(MEDKOORD_FIXTURES) + "/" + name, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The assessment side of the outbox, as a test double of the peer service:
// idempotent by event id, refuses a withdrawal of a case it holds as decided,
// answers UNAVAILABLE while "down".
class FakeAssessment final : public av1::AssessmentInternal::Service {
 public:
  explicit FakeAssessment(const PrincipalSigner& signer) : signer_(signer) {}

  grpc::Status ApplyIntakeEvent(grpc::ServerContext* context, const av1::ApplyIntakeEventRequest* request,
                                av1::ApplyIntakeEventResponse* response) override {
    auto principal = signer_.Verify(
        *context, FullMethodName(av1::AssessmentInternal::service_full_name(), "ApplyIntakeEvent"));
    if (!principal.ok()) return ToGrpcStatus(principal.status());
    absl::MutexLock lock(&mu_);
    if (down_) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "assessment is down");
    ++calls_;
    if (!HasRole(*principal, common::v1::ROLE_SERVICE) || principal->id() != ServicePrincipal("intake").id()) {
      return grpc::Status(grpc::StatusCode::PERMISSION_DENIED, "not the intake service");
    }
    if (!seen_.insert(request->event_id()).second) {
      response->set_duplicate(true);
      return grpc::Status::OK;
    }
    if (request->has_application_withdrawn() && decided_.count(request->application_withdrawn().application())) {
      ++refused_;
      return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "the case is decided");
    }
    events_.push_back(*request);
    return grpc::Status::OK;
  }

  void SetDown(bool down) {
    absl::MutexLock lock(&mu_);
    down_ = down;
  }
  void MarkDecided(const std::string& application) {
    absl::MutexLock lock(&mu_);
    decided_.insert(application);
  }
  std::vector<av1::ApplyIntakeEventRequest> events() {
    absl::MutexLock lock(&mu_);
    return events_;
  }
  int refused() {
    absl::MutexLock lock(&mu_);
    return refused_;
  }

 private:
  const PrincipalSigner& signer_;
  absl::Mutex mu_;
  bool down_ ABSL_GUARDED_BY(mu_) = false;
  int calls_ ABSL_GUARDED_BY(mu_) = 0;
  int refused_ ABSL_GUARDED_BY(mu_) = 0;
  std::set<std::string> seen_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> decided_ ABSL_GUARDED_BY(mu_);
  std::vector<av1::ApplyIntakeEventRequest> events_ ABSL_GUARDED_BY(mu_);
};

class IntakeTest : public medkoord::testing::PostgresTest {
 protected:
  void SetUp() override {
    PostgresTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    // A database of its own per test, whether run by ctest or by hand.
    auto url = cluster().CreateDatabase("intake");
    ASSERT_TRUE(url.ok()) << url.status();
    url_ = *url;
    pool_ = std::make_unique<db::Pool>(db::PoolOptions{.url = url_, .size = 4, .prepare = IntakeStore::Prepare});
    auto migrated = db::Migrate(*pool_, Migrations());
    ASSERT_TRUE(migrated.ok()) << migrated.status();
    auto signer = PrincipalSigner::Create(std::string(32, 'k'), &clock_);
    ASSERT_TRUE(signer.ok());
    signer_ = std::make_unique<PrincipalSigner>(*signer);
    store_ = std::make_unique<IntakeStore>(*pool_);
    service_ = std::make_unique<IntakeService>(*store_, *signer_, clock_);
    internal_ = std::make_unique<IntakeInternalService>(*store_, *signer_, clock_);
    auto server = Server::Start(ServerOptions{.service_name = "intake-test"}, {service_.get(), internal_.get()});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(server_->port()),
                                       grpc::InsecureChannelCredentials());
    stub_ = v1::Intake::NewStub(channel);
    internal_stub_ = v1::IntakeInternal::NewStub(channel);

    assessment_ = std::make_unique<FakeAssessment>(*signer_);
    auto assessment_server = Server::Start(ServerOptions{.service_name = "assessment-fake"}, {assessment_.get()});
    ASSERT_TRUE(assessment_server.ok()) << assessment_server.status();
    assessment_server_ = std::move(*assessment_server);
    auto delivery = std::make_shared<AssessmentDelivery>(
        grpc::CreateChannel("127.0.0.1:" + std::to_string(assessment_server_->port()),
                            grpc::InsecureChannelCredentials()),
        *signer_);
    relay_ = MakeAssessmentRelay(*pool_, delivery, db::OutboxRelayOptions{.name = "intake-test"});
  }

  void TearDown() override {
    relay_.reset();
    if (server_) server_->Shutdown();
    if (assessment_server_) assessment_server_->Shutdown();
    server_.reset();
    assessment_server_.reset();
    pool_.reset();
    if (!url_.empty()) (void)cluster().DropDatabase(url_);
  }

  static Principal Region(Region region) {
    Principal p;
    p.set_id(std::string("region-it:") + std::string(RegionSlug(region)));
    p.add_roles(common::v1::ROLE_REGION);
    p.set_region(region);
    return p;
  }
  static Principal WithRole(const std::string& id, Role role) {
    Principal p;
    p.set_id(id);
    p.add_roles(role);
    return p;
  }
  static Principal Secretariat() { return WithRole("forum-secretariat", common::v1::ROLE_FORUM_SECRETARIAT); }
  static Principal Member() { return WithRole("forum-member", common::v1::ROLE_FORUM_MEMBER); }
  static Principal Service() { return ServicePrincipal("assessment"); }

  std::unique_ptr<grpc::ClientContext> Ctx(const Principal& p, const char* method,
                                           const char* service = v1::Intake::service_full_name()) {
    auto ctx = std::make_unique<grpc::ClientContext>();
    signer_->Attach(*ctx, p, FullMethodName(service, method));
    return ctx;
  }

  static v1::Application ValidApplication(common::v1::Region region = common::v1::REGION_SYDDANMARK) {
    v1::Application a;
    a.set_region(region);
    a.mutable_submitted_on()->set_year(2025);
    a.mutable_submitted_on()->set_month(3);
    a.mutable_submitted_on()->set_day(14);
    a.set_drug_name("Trifluridine/tipiracil");
    a.set_atc_code("L01BC59");
    a.set_indication("Metastatic colorectal cancer");
    a.set_icd10("C18.9");
    a.set_cancer(true);
    a.set_marketed_dk(true);
    a.set_medicinraadet_status(v1::MEDICINRAADET_STATUS_NOT_ASSESSED);
    a.set_ema_status(v1::EMA_STATUS_ON_LABEL);
    return a;
  }

  grpc::Status Submit(const Principal& p, const v1::Application& a, const std::string& request_id,
                      v1::Application* out) {
    v1::SubmitApplicationRequest request;
    request.set_request_id(request_id);
    *request.mutable_application() = a;
    return stub_->SubmitApplication(Ctx(p, "SubmitApplication").get(), request, out);
  }

  grpc::Status Import(const std::string& bytes, bool validate_only, size_t chunk,
                      v1::ImportApplicationsResponse* out) {
    auto ctx = Ctx(Secretariat(), "ImportApplications");
    auto writer = stub_->ImportApplications(ctx.get(), out);
    bool first = true;
    for (size_t i = 0; i < bytes.size() || first; i += chunk) {
      v1::ImportApplicationsRequest request;
      request.set_validate_only(first && validate_only);
      request.set_chunk(bytes.substr(i, chunk));
      first = false;
      if (!writer->Write(request)) break;
    }
    writer->WritesDone();
    return writer->Finish();
  }

  std::string Export(const v1::ExportApplicationsRequest& request, grpc::Status* status) {
    auto ctx = Ctx(Secretariat(), "ExportApplications");
    auto reader = stub_->ExportApplications(ctx.get(), request);
    std::string out;
    v1::ExportApplicationsResponse chunk;
    while (reader->Read(&chunk)) out += chunk.chunk();
    *status = reader->Finish();
    return out;
  }

  // Every application a caller can list under `parent`, following page tokens.
  std::vector<v1::Application> ListAll(const Principal& p, v1::ListApplicationsRequest request, int page_size) {
    std::vector<v1::Application> all;
    request.set_page_size(page_size);
    for (int guard = 0; guard < 10000; ++guard) {
      v1::ListApplicationsResponse response;
      grpc::Status s = stub_->ListApplications(Ctx(p, "ListApplications").get(), request, &response);
      EXPECT_TRUE(s.ok()) << s.error_message();
      if (!s.ok()) break;
      for (const auto& a : response.applications()) all.push_back(a);
      if (response.next_page_token().empty()) break;
      request.set_page_token(response.next_page_token());
    }
    return all;
  }

  // 2025-04-07 10:00 in Copenhagen, the fixture's "data source" day.
  FakeClock clock_{absl::FromCivil(absl::CivilSecond(2025, 4, 7, 10, 0, 0), DanishTimeZone())};
  std::string url_;
  std::unique_ptr<db::Pool> pool_;
  std::unique_ptr<PrincipalSigner> signer_;
  std::unique_ptr<IntakeStore> store_;
  std::unique_ptr<IntakeService> service_;
  std::unique_ptr<IntakeInternalService> internal_;
  std::unique_ptr<Server> server_;
  std::unique_ptr<v1::Intake::Stub> stub_;
  std::unique_ptr<v1::IntakeInternal::Stub> internal_stub_;
  std::unique_ptr<FakeAssessment> assessment_;
  std::unique_ptr<Server> assessment_server_;
  std::unique_ptr<db::OutboxRelay> relay_;
};

}  // namespace medkoord::intake::testing
