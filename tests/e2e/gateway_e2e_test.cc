// medkoord end to end: the five processes with real PostgreSQL, driven
// through the gateway by generic C++ calls, the CLI, HTTP and Python grpcio.

#include <sys/wait.h>
#include <unistd.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include <dirent.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include <gmock/gmock.h>
#include <pqxx/pqxx>
#include <gtest/gtest.h>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/principal.h"
#include "common/reflection_client.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "medkoord/assessment/v1/assessment.grpc.pb.h"
#include "medkoord/gateway/v1/gateway.grpc.pb.h"
#include "medkoord/intake/v1/intake.grpc.pb.h"
#include "services/gateway/role_table.h"
#include "tests/e2e/e2e_util.h"
#include "tests/e2e/suite.h"
#include "tests/support/postgres_cluster.h"

namespace medkoord::e2e {
namespace {

using gateway::MethodRoute;
using gateway::RoleTable;
using ::testing::AnyOf;
using ::testing::HasSubstr;
namespace iv1 = medkoord::intake::v1;

struct Caller {
  std::string principal;
  std::string roles;
  std::string region;
  Role role;
  std::string key;
};

std::vector<Caller> Callers() {
  return {{"e2e-region", "region", "syddanmark", medkoord::common::v1::ROLE_REGION, ""},
          {"e2e-member", "forum_member", "", medkoord::common::v1::ROLE_FORUM_MEMBER, ""},
          {"e2e-secretariat", "forum_secretariat", "", medkoord::common::v1::ROLE_FORUM_SECRETARIAT, ""},
          {"e2e-taskforce", "task_force", "", medkoord::common::v1::ROLE_TASK_FORCE, ""},
          {"e2e-analyst", "analyst", "", medkoord::common::v1::ROLE_ANALYST, ""},
          {"e2e-admin", "admin", "", medkoord::common::v1::ROLE_ADMIN, ""},
          {"e2e-service", "service", "", medkoord::common::v1::ROLE_SERVICE, ""}};
}

bool Allowed(const MethodRoute& r, Role role) {
  return std::find(r.allowed_roles.begin(), r.allowed_roles.end(), role) != r.allowed_roles.end();
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A valid application of Region Syddanmark (defined below).
iv1::Application SyddanmarkCase(const std::string& case_ref);

class GatewayE2ETest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testing::PostgresCluster::BinariesAvailable()) GTEST_SKIP() << "PostgreSQL binaries not installed";
  }

  void StartSuite(SuiteOptions options = {}) {
    // Free ports are picked before the processes bind them; on the rare
    // clash with another program, start again on new ones.
    auto suite = Suite::Start(options);
    for (int attempt = 1; attempt < 4 && !suite.ok() && absl::StrContains(suite.status().message(), "listen");
         ++attempt) {
      suite = Suite::Start(options);
    }
    ASSERT_TRUE(suite.ok()) << suite.status();
    suite_ = *std::move(suite);
    channel_ = suite_->GatewayChannel();
  }

  std::string Key(const std::string& principal, const std::string& roles, const std::string& region = "") {
    auto key = suite_->CreateKey(principal, roles, region);
    EXPECT_TRUE(key.ok()) << key.status();
    return key.ok() ? *key : "";
  }

  // Submits SyddanmarkCase(case_ref) through the gateway with `key`.
  iv1::Application SubmitSyddanmarkCase(const std::string& key, const std::string& case_ref) {
    iv1::SubmitApplicationRequest submit;
    submit.set_request_id(absl::StrCat("submit-", case_ref));
    *submit.mutable_application() = SyddanmarkCase(case_ref);
    iv1::Application created;
    grpc::ClientContext ctx;
    Authorize(ctx, key);
    grpc::Status s = iv1::Intake::NewStub(channel_)->SubmitApplication(&ctx, submit, &created);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return created;
  }

  std::unique_ptr<Suite> suite_;
  std::shared_ptr<grpc::Channel> channel_;
};

absl::Duration TimeoutFor(const MethodRoute& r) { return r.server_streaming ? absl::Milliseconds(800) : absl::Seconds(20); }

TEST_F(GatewayE2ETest, EveryPublicMethodTimesEveryRole) {
  StartSuite();
  auto table = RoleTable::FromGeneratedPool();
  ASSERT_TRUE(table.ok());
  std::vector<Caller> callers = Callers();
  for (auto& c : callers) c.key = Key(c.principal, c.roles, c.region);
  const std::map<std::string, std::string> dbs = {{"intake", suite_->db_url("intake")},
                                                  {"assessment", suite_->db_url("assessment")},
                                                  {"shortage", suite_->db_url("shortage")},
                                                  {"rwd", suite_->db_url("rwd")}};

  // Denied calls first, so that a snapshot shows they changed nothing.
  const auto before = RowCounts(dbs);
  std::map<std::string, int> calls_by_principal;
  int denied = 0;
  for (const MethodRoute& r : table->routes()) {
    // No credentials, and a key that does not exist.
    for (const std::string& key : {std::string(), std::string("mk_not-a-real-key")}) {
      CallResult res = CallGeneric(*channel_, r.full_name, key, "", TimeoutFor(r), r.client_streaming);
      EXPECT_EQ(res.status.error_code(), grpc::StatusCode::UNAUTHENTICATED) << r.full_name << " key=" << key;
    }
    for (const Caller& c : callers) {
      if (Allowed(r, c.role)) continue;
      CallResult res = CallGeneric(*channel_, r.full_name, c.key, "", TimeoutFor(r), r.client_streaming);
      EXPECT_EQ(res.status.error_code(), grpc::StatusCode::PERMISSION_DENIED) << r.full_name << " as " << c.roles;
      EXPECT_EQ(res.messages, 0) << r.full_name;
      ++calls_by_principal[c.principal];
      ++denied;
    }
  }
  EXPECT_EQ(RowCounts(dbs), before) << "a denied call changed stored data";
  EXPECT_GT(denied, 100);

  // Allowed: whatever the service says about an empty request, it is the
  // service answering (not the gateway refusing, not an unknown method).
  for (const MethodRoute& r : table->routes()) {
    for (const Caller& c : callers) {
      if (!Allowed(r, c.role)) continue;
      CallResult res = CallGeneric(*channel_, r.full_name, c.key, "", TimeoutFor(r), r.client_streaming);
      ++calls_by_principal[c.principal];
      EXPECT_NE(res.status.error_code(), grpc::StatusCode::UNAUTHENTICATED) << r.full_name << " as " << c.roles;
      EXPECT_NE(res.status.error_code(), grpc::StatusCode::UNIMPLEMENTED) << r.full_name << " as " << c.roles;
      EXPECT_NE(res.status.error_code(), grpc::StatusCode::UNAVAILABLE) << r.full_name << " as " << c.roles;
      EXPECT_THAT(res.status.error_message(), ::testing::Not(HasSubstr("may not call")))
          << r.full_name << " as " << c.roles;
    }
  }

  // `...Internal` services are not reachable, whoever asks.
  for (const char* m : {"/medkoord.intake.v1.IntakeInternal/ApplyDecision",
                        "/medkoord.assessment.v1.AssessmentInternal/ApplyIntakeEvent"}) {
    for (const Caller& c : callers) {
      CallResult res = CallGeneric(*channel_, m, c.key, "", absl::Seconds(10), false);
      EXPECT_EQ(res.status.error_code(), grpc::StatusCode::UNIMPLEMENTED) << m << " as " << c.roles;
    }
  }

  // Every call of a principal is in the audit log, durable within a second.
  const Caller& admin = callers[5];
  auto stub = medkoord::gateway::v1::GatewayAdmin::NewStub(channel_);
  for (const Caller& c : {callers[4], callers[0]}) {
    int found = 0;
    const absl::Time until = absl::Now() + absl::Seconds(10);
    while (absl::Now() < until) {
      medkoord::gateway::v1::ListAuditRecordsRequest req;
      req.set_principal_id(c.principal);
      req.set_page_size(1000);
      medkoord::gateway::v1::ListAuditRecordsResponse resp;
      grpc::ClientContext ctx;
      Authorize(ctx, admin.key);
      ASSERT_TRUE(stub->ListAuditRecords(&ctx, req, &resp).ok());
      found = resp.audit_records_size();
      if (found >= calls_by_principal[c.principal]) break;
      absl::SleepFor(absl::Milliseconds(100));
    }
    EXPECT_EQ(found, calls_by_principal[c.principal]) << c.principal;
  }
}

iv1::Application SyddanmarkCase(const std::string& case_ref) {
  iv1::Application a;
  a.set_case_ref(case_ref);
  a.set_region(medkoord::common::v1::REGION_SYDDANMARK);
  a.mutable_submitted_on()->set_year(2024);
  a.mutable_submitted_on()->set_month(3);
  a.mutable_submitted_on()->set_day(5);
  a.set_drug_name("trifluridine/tipiracil");
  a.set_atc_code("L01BC59");
  a.set_indication("metastatic colorectal cancer");
  a.set_icd10("C18.9");
  a.set_cancer(true);
  a.set_marketed_dk(true);
  a.set_medicinraadet_status(iv1::MEDICINRAADET_STATUS_NOT_ASSESSED);
  a.set_ema_status(iv1::EMA_STATUS_OFF_LABEL);
  return a;
}

TEST_F(GatewayE2ETest, RegionalCallerCannotSeeOrChangeAnotherRegionsCases) {
  StartSuite();
  const std::string syd = Key("syddanmark-it", "region", "syddanmark");
  const std::string midt = Key("midtjylland-it", "region", "midtjylland");
  auto intake = iv1::Intake::NewStub(channel_);
  iv1::SubmitApplicationRequest submit;
  submit.set_request_id("e2e-1");
  *submit.mutable_application() = SyddanmarkCase("E2E-0001");
  iv1::Application created;
  {
    grpc::ClientContext ctx;
    Authorize(ctx, syd);
    grpc::Status s = intake->SubmitApplication(&ctx, submit, &created);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  const auto before = RowCounts({{"intake", suite_->db_url("intake")}});

  {  // read another region's case
    iv1::GetApplicationRequest req;
    req.set_name(created.name());
    iv1::Application out;
    grpc::ClientContext ctx;
    Authorize(ctx, midt);
    EXPECT_THAT(intake->GetApplication(&ctx, req, &out).error_code(),
                AnyOf(grpc::StatusCode::NOT_FOUND, grpc::StatusCode::PERMISSION_DENIED));
  }
  {  // withdraw it
    iv1::WithdrawApplicationRequest req;
    req.set_name(created.name());
    iv1::Application out;
    grpc::ClientContext ctx;
    Authorize(ctx, midt);
    EXPECT_THAT(intake->WithdrawApplication(&ctx, req, &out).error_code(),
                AnyOf(grpc::StatusCode::NOT_FOUND, grpc::StatusCode::PERMISSION_DENIED));
  }
  {  // submit in its name
    iv1::SubmitApplicationRequest req = submit;
    req.set_request_id("e2e-2");
    req.mutable_application()->set_case_ref("E2E-0002");
    iv1::Application out;
    grpc::ClientContext ctx;
    Authorize(ctx, midt);
    EXPECT_THAT(intake->SubmitApplication(&ctx, req, &out).error_code(),
                AnyOf(grpc::StatusCode::PERMISSION_DENIED, grpc::StatusCode::INVALID_ARGUMENT));
  }
  {  // list its cases
    iv1::ListApplicationsRequest req;
    req.set_parent("regions/syddanmark");
    iv1::ListApplicationsResponse out;
    grpc::ClientContext ctx;
    Authorize(ctx, midt);
    grpc::Status s = intake->ListApplications(&ctx, req, &out);
    EXPECT_TRUE(!s.ok() || out.applications().empty());
  }
  {  // its case in assessment
    medkoord::assessment::v1::GetCaseRequest req;
    req.set_name("regions/syddanmark/cases/E2E-0001");
    medkoord::assessment::v1::Case out;
    grpc::ClientContext ctx;
    Authorize(ctx, midt);
    auto assessment = medkoord::assessment::v1::Assessment::NewStub(channel_);
    EXPECT_THAT(assessment->GetCase(&ctx, req, &out).error_code(),
                AnyOf(grpc::StatusCode::NOT_FOUND, grpc::StatusCode::PERMISSION_DENIED));
  }
  EXPECT_EQ(RowCounts({{"intake", suite_->db_url("intake")}}), before);
  {  // and the owner still sees it open
    iv1::GetApplicationRequest req;
    req.set_name(created.name());
    iv1::Application out;
    grpc::ClientContext ctx;
    Authorize(ctx, syd);
    ASSERT_TRUE(intake->GetApplication(&ctx, req, &out).ok());
    EXPECT_EQ(out.state(), iv1::APPLICATION_STATE_OPEN);
  }
}

TEST_F(GatewayE2ETest, ServicesRefuseCallsWithoutAValidSignedPrincipal) {
  StartSuite();
  auto forged = PrincipalSigner::Create(std::string(32, 'x'));
  ASSERT_TRUE(forged.ok());
  Principal secretariat;
  secretariat.set_id("mallory");
  secretariat.add_roles(medkoord::common::v1::ROLE_FORUM_SECRETARIAT);
  auto real = PrincipalSigner::Create(suite_->principal_key());
  ASSERT_TRUE(real.ok());
  const std::string method = "/medkoord.intake.v1.Intake/ListApplications";
  auto direct = grpc::CreateChannel(suite_->service_addr("intake"), grpc::InsecureChannelCredentials());
  auto intake = iv1::Intake::NewStub(direct);
  iv1::ListApplicationsRequest req;
  iv1::ListApplicationsResponse resp;
  {
    grpc::ClientContext ctx;  // nothing at all
    EXPECT_EQ(intake->ListApplications(&ctx, req, &resp).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  }
  {
    grpc::ClientContext ctx;  // signed with another key
    forged->Attach(ctx, secretariat, method);
    EXPECT_EQ(intake->ListApplications(&ctx, req, &resp).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  }
  {
    grpc::ClientContext ctx;  // signed for another method
    real->Attach(ctx, secretariat, "/medkoord.intake.v1.Intake/GetApplication");
    EXPECT_EQ(intake->ListApplications(&ctx, req, &resp).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  }
  {
    grpc::ClientContext ctx;  // expired
    real->Attach(ctx, secretariat, method, absl::Seconds(-1));
    EXPECT_EQ(intake->ListApplications(&ctx, req, &resp).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  }
  {
    grpc::ClientContext ctx;  // the real thing works
    real->Attach(ctx, secretariat, method);
    EXPECT_TRUE(intake->ListApplications(&ctx, req, &resp).ok());
  }
  {  // and a caller cannot smuggle a signed principal through the gateway
    grpc::ClientContext ctx;
    auto s = real->Sign(secretariat, method, absl::Seconds(60));
    ctx.AddMetadata(kPrincipalMetadata, s.principal_bin);
    ctx.AddMetadata(kSignatureMetadata, s.signature_bin);
    auto via_gateway = iv1::Intake::NewStub(channel_);
    EXPECT_EQ(via_gateway->ListApplications(&ctx, req, &resp).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  }
}

TEST_F(GatewayE2ETest, CliImportsAndReportsThroughTheGatewayAndTheHtmlPageShowsTheFigures) {
  StartSuite();
  const std::string key = Key("e2e-secretariat", "forum_secretariat");
  const std::string cli = Suite::BinaryDir() + "/tools/medkoord/medkoord";
  // From the suite's folder, so no .medkoord/local.env of a developer's suite applies.
  const std::string env =
      absl::StrCat("cd ", suite_->dir(), " && MEDKOORD_ADDR=", suite_->gateway_addr(), " MEDKOORD_API_KEY=", key, " ");
  const std::string fixture = std::string(MEDKOORD_FIXTURES_DIR) + "/forum_cases_2024.csv";

  auto [rc, out] = RunCommand(absl::StrCat(env, cli, " applications import ", fixture, " --json"));
  ASSERT_EQ(rc, 0) << out;
  EXPECT_THAT(out, HasSubstr("\"stored\":\"541\""));

  // Export streams the cases back (server streaming through the gateway).
  auto [erc, csv] = RunCommand(absl::StrCat(env, cli, " applications export --year 2024"));
  ASSERT_EQ(erc, 0);
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 542);  // header + 541

  // The report follows once assessment has the outbox events.
  std::string json;
  const absl::Time until = absl::Now() + absl::Seconds(60);
  while (absl::Now() < until) {
    auto [jrc, j] = RunCommand(absl::StrCat(env, cli, " report annual --year 2024 --json"));
    ASSERT_EQ(jrc, 0) << j;
    json = j;
    // The national total, exactly: a bare "541" also turns up inside the
    // percentages of a report that is still filling up.
    if (absl::StrContains(json, "\"total\":541,")) break;
    absl::SleepFor(absl::Milliseconds(200));
  }
  EXPECT_THAT(json, HasSubstr("\"total\":541,"));
  EXPECT_THAT(json, HasSubstr("371"));

  // Exit codes: usage 2, denied 3.
  EXPECT_EQ(RunCommand(absl::StrCat(env, cli, " report annual")).first, 2);
  const std::string analyst_env =
      absl::StrCat("cd ", suite_->dir(), " && MEDKOORD_ADDR=", suite_->gateway_addr(), " MEDKOORD_API_KEY=", Key("e2e-analyst", "analyst"), " ");
  EXPECT_EQ(RunCommand(absl::StrCat(analyst_env, cli, " applications import ", fixture, " 2>/dev/null")).first, 3);
  EXPECT_EQ(RunCommand(absl::StrCat("cd ", suite_->dir(), " && MEDKOORD_ADDR=", suite_->gateway_addr(), " MEDKOORD_API_KEY=bad ", cli,
                             " report annual --year 2024 2>/dev/null")).first,
            3);

  // The HTML page for a person with a browser: Basic auth, key as password.
  auto [code, html] = HttpGet(suite_->http_port(), "/reports/annual?year=2024",
                              "Basic " + absl::Base64Escape("secretariat:" + key));
  ASSERT_EQ(code, 200) << html;
  for (int i = 1; i <= 7; ++i) EXPECT_THAT(html, HasSubstr(absl::StrCat("Figur ", i, ". "))) << i;
  EXPECT_THAT(html, HasSubstr("<strong>541</strong>"));
  EXPECT_THAT(html, HasSubstr("371 (69 %)"));
  EXPECT_EQ(HttpGet(suite_->http_port(), "/reports/annual?year=2024", "").first, 401);
  EXPECT_EQ(HttpGet(suite_->http_port(), "/reports/annual?year=2024",
                    "Basic " + absl::Base64Escape("x:" + Key("e2e-taskforce", "task_force")))
                .first,
            403);
  EXPECT_EQ(HttpGet(suite_->http_port(), "/healthz", "").first, 200);
  EXPECT_THAT(HttpGet(suite_->http_port(), "/metrics", "").second, HasSubstr("medkoord_gateway_calls_total"));
}

TEST_F(GatewayE2ETest, PythonGrpcioClientActsAsARegionalItSystem) {
  StartSuite();
  const std::string key = Key("syddanmark-it", "region", "syddanmark");
  const std::string command =
      absl::StrCat("PYTHONPATH=", MEDKOORD_PYTHON_STUBS, " /usr/bin/python3 ", MEDKOORD_E2E_DIR,
                   "/regional_client.py --addr ", suite_->gateway_addr(), " --key ", key, " 2>&1");
  auto [rc, out] = RunCommand(command);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_THAT(out, HasSubstr("ok"));
}

TEST_F(GatewayE2ETest, BackendDownIsUnavailableQuicklyAndDeadlinesAndRequestIdsPassThrough) {
  StartSuite({.gateway_env = {{"MEDKOORD_DEFAULT_DEADLINE", "700ms"}}});
  const std::string key = Key("e2e-taskforce", "task_force");
  // A watch with no deadline of its own ends at the gateway's default one.
  const absl::Time start = absl::Now();
  CallResult watch = CallGeneric(*channel_, "/medkoord.shortage.v1.Shortage/WatchShortages", key, "",
                                 absl::InfiniteDuration(), false);
  EXPECT_EQ(watch.status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));

  // x-request-id comes back, generated when the caller sent none.
  {
    grpc::ClientContext ctx;
    Authorize(ctx, key);
    ctx.AddMetadata("x-request-id", "e2e-req-42");
    ctx.AddMetadata("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    auto stub = medkoord::gateway::v1::GatewayAdmin::NewStub(channel_);
    medkoord::gateway::v1::ListApiKeysRequest req;
    medkoord::gateway::v1::ListApiKeysResponse resp;
    EXPECT_EQ(stub->ListApiKeys(&ctx, req, &resp).error_code(), grpc::StatusCode::PERMISSION_DENIED);
    auto md = ctx.GetServerInitialMetadata();
    auto it = md.find("x-request-id");
    ASSERT_NE(it, md.end());
    EXPECT_EQ(std::string(it->second.data(), it->second.size()), "e2e-req-42");
  }

  suite_->Stop("shortage");
  const absl::Time down = absl::Now();
  CallResult res = CallGeneric(*channel_, "/medkoord.shortage.v1.Shortage/ListShortages", key, "", absl::Seconds(20), false);
  EXPECT_EQ(res.status.error_code(), grpc::StatusCode::UNAVAILABLE) << res.status.error_message();
  EXPECT_LT(absl::Now() - down, absl::Seconds(3));
}

// W3C trace context through the real processes: intake stores the trace
// context of the call that wrote each outbox event (and sends it on to
// assessment with the event), so the outbox row shows what intake received.
TEST_F(GatewayE2ETest, TraceparentReachesTheBackendUnchangedOrIsStartedByTheGateway) {
  StartSuite();
  const std::string syd = Key("syddanmark-it", "region", "syddanmark");
  auto intake = iv1::Intake::NewStub(channel_);
  struct Sent {
    std::string request_id;   // "" : none sent
    std::string traceparent;  // "" : none sent
    std::string returned_request_id;
  };
  std::vector<Sent> sent = {
      {"", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", ""},
      {"0af7651916cd43dd8448eb211c80319c", "", ""},
      {"", "", ""},
      {"", "not-a-traceparent", ""},
  };
  for (size_t i = 0; i < sent.size(); ++i) {
    iv1::SubmitApplicationRequest submit;
    submit.set_request_id(absl::StrCat("trace-", i));
    *submit.mutable_application() = SyddanmarkCase(absl::StrCat("TRACE-000", i));
    grpc::ClientContext ctx;
    Authorize(ctx, syd);
    if (!sent[i].request_id.empty()) ctx.AddMetadata("x-request-id", sent[i].request_id);
    if (!sent[i].traceparent.empty()) ctx.AddMetadata("traceparent", sent[i].traceparent);
    iv1::Application created;
    grpc::Status s = intake->SubmitApplication(&ctx, submit, &created);
    ASSERT_TRUE(s.ok()) << s.error_message();
    auto md = ctx.GetServerInitialMetadata();
    auto it = md.find("x-request-id");
    ASSERT_NE(it, md.end());
    sent[i].returned_request_id = std::string(it->second.data(), it->second.size());
  }

  pqxx::connection db(suite_->db_url("intake"));
  pqxx::work tx(db);
  pqxx::result rows = tx.exec("SELECT coalesce(traceparent, '') FROM outbox ORDER BY id");
  ASSERT_EQ(rows.size(), sent.size());
  const std::regex valid("00-([0-9a-f]{32})-[0-9a-f]{16}-01");
  std::vector<std::string> seen;
  for (const auto& row : rows) seen.push_back(row[0].as<std::string>());
  // The caller's own trace context arrives unchanged.
  EXPECT_EQ(seen[0], sent[0].traceparent);
  // Without one the gateway starts a trace; its trace id is the request id
  // (the caller's when it is 32 hex characters, else the one generated and
  // returned), so the caller can find its call in every service's logs.
  for (size_t i = 1; i < sent.size(); ++i) {
    SCOPED_TRACE(i);
    std::smatch m;
    ASSERT_TRUE(std::regex_match(seen[i], m, valid)) << seen[i];
    EXPECT_EQ(m[1].str(), sent[i].returned_request_id);
    if (!sent[i].request_id.empty()) {
      EXPECT_EQ(m[1].str(), sent[i].request_id);
    }
  }
  EXPECT_NE(seen[2], seen[3]);
}

// A free loopback port for a listener the suite does not know about.
int FreeLoopbackPort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

TEST_F(GatewayE2ETest, TlsListenerServesWithItsCaAndRefusesPlaintext) {
  const int https_port = FreeLoopbackPort();
  StartSuite({.gateway_env = {{"MEDKOORD_HTTPS_LISTEN", absl::StrCat("127.0.0.1:", https_port)}}, .tls = true});
  const std::string key = Key("e2e-admin", "admin");
  auto stub = medkoord::gateway::v1::GatewayAdmin::NewStub(channel_);
  medkoord::gateway::v1::ListApiKeysRequest req;
  medkoord::gateway::v1::ListApiKeysResponse resp;
  grpc::ClientContext ctx;
  Authorize(ctx, key);
  grpc::Status s = stub->ListApiKeys(&ctx, req, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_GE(resp.api_keys_size(), 1);
  for (const auto& k : resp.api_keys()) EXPECT_TRUE(k.key_prefix().rfind("mk_", 0) == 0);

  auto plain = medkoord::gateway::v1::GatewayAdmin::NewStub(
      grpc::CreateChannel(suite_->gateway_addr(), grpc::InsecureChannelCredentials()));
  grpc::ClientContext pctx;
  Authorize(pctx, key);
  pctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
  EXPECT_FALSE(plain->ListApiKeys(&pctx, req, &resp).ok());

  // The CLI with --ca-file.
  const std::string cli = Suite::BinaryDir() + "/tools/medkoord/medkoord";
  auto [rc, out] = RunCommand(absl::StrCat("cd ", suite_->dir(), " && ", cli, " --addr ", suite_->gateway_addr(), " --api-key ", key, " --ca-file ",
                                    suite_->ca_file(), " admin keys list --json"));
  EXPECT_EQ(rc, 0) << out;
  EXPECT_THAT(out, HasSubstr("e2e-admin"));

  // The pages over HTTPS with the same certificate, verified against the
  // suite's CA: a key is still needed, and the port speaks only TLS.
  const std::string https = absl::StrCat("https://127.0.0.1:", https_port);
  const std::string curl = absl::StrCat("curl -s -o /dev/null -w '%{http_code}' --max-time 20 --cacert ", suite_->ca_file(), " ");
  EXPECT_EQ(RunCommand(curl + https + "/healthz").second, "200");
  const std::string secretariat = Key("e2e-secretariat", "forum_secretariat");
  EXPECT_EQ(RunCommand(absl::StrCat(curl, "-u x:", secretariat, " '", https, "/reports/annual?year=2024'")).second, "200");
  EXPECT_EQ(RunCommand(absl::StrCat(curl, "'", https, "/reports/annual?year=2024'")).second, "401");
  EXPECT_EQ(RunCommand(absl::StrCat(curl, "-u x:", key, " '", https, "/reports/annual?year=2024'")).second, "403");
  EXPECT_NE(RunCommand(absl::StrCat("curl -s -o /dev/null -w '%{http_code}' --max-time 20 http://127.0.0.1:", https_port,
                                    "/healthz")).second,
            "200");
}

TEST_F(GatewayE2ETest, MutualTlsMapsClientCertificatesToPrincipals) {
  const int https_port = FreeLoopbackPort();
  StartSuite({.gateway_env = {{"MEDKOORD_HTTPS_LISTEN", absl::StrCat("127.0.0.1:", https_port)}},
              .tls = true,
              .mtls = true});
  auto channel_with = [&](const std::string& who) {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = ReadFile(suite_->ca_file());
    if (!who.empty()) {
      ssl.pem_private_key = ReadFile(suite_->dir() + "/" + who + ".key");
      ssl.pem_cert_chain = ReadFile(suite_->dir() + "/" + who + ".pem");
    }
    return grpc::CreateChannel(suite_->gateway_addr(), grpc::SslCredentials(ssl));
  };
  auto call = [&](std::shared_ptr<grpc::Channel> channel, const std::string& key) {
    auto stub = medkoord::gateway::v1::GatewayAdmin::NewStub(channel);
    medkoord::gateway::v1::ListApiKeysRequest req;
    medkoord::gateway::v1::ListApiKeysResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    Authorize(ctx, key);
    return stub->ListApiKeys(&ctx, req, &resp).error_code();
  };
  EXPECT_EQ(call(channel_with("client"), ""), grpc::StatusCode::OK);               // mapped certificate
  EXPECT_EQ(call(channel_with("stranger"), ""), grpc::StatusCode::UNAUTHENTICATED);  // valid but unmapped
  EXPECT_EQ(call(channel_with(""), ""), grpc::StatusCode::UNAUTHENTICATED);          // no certificate, no key
  // An API key works without a certificate; a bad key is refused even with a good certificate.
  EXPECT_EQ(call(channel_with(""), Key("e2e-admin", "admin")), grpc::StatusCode::OK);
  EXPECT_EQ(call(channel_with("client"), "mk_wrong"), grpc::StatusCode::UNAUTHENTICATED);

  // The pages over HTTPS know the certificate too: the mapped one is an
  // admin (known, but not allowed the report: 403), the unmapped one and
  // none are 401, and claiming a certificate by header gets nowhere.
  const std::string page = absl::StrCat("'https://127.0.0.1:", https_port, "/reports/annual?year=2024'");
  auto curl = [&](const std::string& who, const std::string& extra) {
    std::string cmd = absl::StrCat("curl -s -o /dev/null -w '%{http_code}' --max-time 20 --cacert ", suite_->ca_file(), " ");
    if (!who.empty()) absl::StrAppend(&cmd, "--cert ", suite_->dir(), "/", who, ".pem --key ", suite_->dir(), "/", who, ".key ");
    return RunCommand(absl::StrCat(cmd, extra, " ", page)).second;
  };
  EXPECT_EQ(curl("client", ""), "403");
  EXPECT_EQ(curl("stranger", ""), "401");
  EXPECT_EQ(curl("", ""), "401");
  EXPECT_EQ(curl("", "-H 'x-medkoord-relay-cert: x.Q049bXRscy1hZG1pbg.bXRscy1hZG1pbg'"), "401");
  EXPECT_EQ(HttpGet(suite_->http_port(), "/reports/annual?year=2024", "").first, 401);
}

// The pid of this test's child process named `comm` (the suite starts one
// gateway), or -1.
pid_t ChildNamed(const std::string& comm) {
  DIR* proc = opendir("/proc");
  if (proc == nullptr) return -1;
  pid_t found = -1;
  while (dirent* e = readdir(proc)) {
    std::ifstream stat(absl::StrCat("/proc/", e->d_name, "/stat"));
    std::string line;
    if (!std::getline(stat, line)) continue;
    // "pid (comm) state ppid ..."; comm may contain spaces, so split at ')'.
    const size_t open = line.find('('), close = line.rfind(')');
    if (open == std::string::npos || close == std::string::npos) continue;
    std::istringstream rest(line.substr(close + 1));
    std::string state;
    pid_t ppid = 0;
    rest >> state >> ppid;
    if (ppid == getpid() && line.substr(open + 1, close - open - 1) == comm) found = std::atoi(e->d_name);
  }
  closedir(proc);
  return found;
}

// Reflection and health are answered by the proxy itself, and the gateway
// runs no gRPC service of its own: gRPC's sync-server threads
// ("grpcpp_sync_server", 15 characters kept) and the "nexting_thread"s a
// callback service brings would poll the proxy's sockets too.
TEST_F(GatewayE2ETest, ReflectionHealthAndAdminAnswerWithoutGrpcsOwnPollingThreads) {
  StartSuite();
  auto names = ListServicesByReflection(channel_);
  ASSERT_TRUE(names.ok()) << names.status();
  EXPECT_THAT(*names, ::testing::IsSupersetOf({"medkoord.intake.v1.Intake", "medkoord.assessment.v1.Assessment",
                                               "medkoord.shortage.v1.Shortage", "medkoord.rwd.v1.Rwd",
                                               "medkoord.gateway.v1.GatewayAdmin", "grpc.health.v1.Health",
                                               "grpc.reflection.v1alpha.ServerReflection"}));
  for (const std::string& n : *names) EXPECT_FALSE(absl::EndsWith(n, "Internal")) << n;

  // GatewayAdmin (the proxy's local backend, on its worker threads) answers.
  const std::string admin = Key("e2e-admin", "admin");
  grpc::ClientContext ctx;
  Authorize(ctx, admin);
  medkoord::gateway::v1::ListApiKeysRequest req;
  medkoord::gateway::v1::ListApiKeysResponse resp;
  ASSERT_TRUE(medkoord::gateway::v1::GatewayAdmin::NewStub(channel_)->ListApiKeys(&ctx, req, &resp).ok());
  EXPECT_GE(resp.api_keys_size(), 1);

  // Health without credentials: the whole gateway, and no named service.
  {
    auto health = grpc::health::v1::Health::NewStub(channel_);
    grpc::ClientContext ctx;
    grpc::health::v1::HealthCheckRequest req;
    grpc::health::v1::HealthCheckResponse resp;
    ASSERT_TRUE(health->Check(&ctx, req, &resp).ok());
    EXPECT_EQ(resp.status(), grpc::health::v1::HealthCheckResponse::SERVING);
    grpc::ClientContext named;
    req.set_service("medkoord.intake.v1.Intake");
    EXPECT_EQ(health->Check(&named, req, &resp).error_code(), grpc::StatusCode::NOT_FOUND);
  }

  // The gateway's health for the NOT_SERVING alerts, as every service has it.
  EXPECT_THAT(HttpGet(suite_->http_port(), "/metrics", "").second,
              HasSubstr("medkoord_serving{service=\"gateway\"} 1"));

  const pid_t gateway = ChildNamed("gateway");
  ASSERT_GT(gateway, 0);
  DIR* tasks = opendir(absl::StrCat("/proc/", gateway, "/task").c_str());
  ASSERT_NE(tasks, nullptr);
  int threads = 0;
  while (dirent* e = readdir(tasks)) {
    if (e->d_name[0] == '.') continue;
    std::ifstream comm(absl::StrCat("/proc/", gateway, "/task/", e->d_name, "/comm"));
    std::string name;
    std::getline(comm, name);
    ++threads;
    EXPECT_NE(name, "grpcpp_sync_ser") << "a sync-server thread in the gateway";
    EXPECT_NE(name, "nexting_thread") << "a callback-API polling thread in the gateway";
  }
  closedir(tasks);
  EXPECT_GT(threads, 1);
}

// Health Watch, served by the proxy (health.h): the status at once, and at
// shutdown NOT_SERVING and the end of the stream, without holding the
// shutdown for its grace period.
// proxy_busy_poll: concurrent unary calls and a server stream are proxied as
// without it, polling stops when the traffic stops (an idle gateway uses no
// CPU), and a graceful stop is not held up by a polling thread.
TEST_F(GatewayE2ETest, BusyPollingProxiesEveryCallAndStopsPollingWhenIdle) {
  StartSuite({.gateway_env = {{"MEDKOORD_PROXY_BUSY_POLL", "2ms"},
                               {"MEDKOORD_RATE_LIMIT_PER_SECOND", "100000"},
                               {"MEDKOORD_RATE_LIMIT_BURST", "100000"}}});
  const std::string key = Key("syddanmark-it", "region", "syddanmark");
  auto intake = iv1::Intake::NewStub(channel_);
  const iv1::Application created = SubmitSyddanmarkCase(key, "BUSY-0001");
  ASSERT_FALSE(created.name().empty());
  // Few calls in flight (polling) and more than kBusyPollMaxInFlight (not).
  for (const int clients : {1, 8}) {
    std::atomic<int> ok{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < clients; ++t) {
      threads.emplace_back([&] {
        for (int i = 0; i < 50; ++i) {
          grpc::ClientContext ctx;
          Authorize(ctx, key);
          ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(20)));
          iv1::GetApplicationRequest req;
          req.set_name(created.name());
          iv1::Application out;
          if (intake->GetApplication(&ctx, req, &out).ok() && out.name() == created.name()) ++ok;
        }
      });
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(ok.load(), clients * 50) << clients << " clients";
  }
  // A server stream still ends with the gateway's deadline.
  const std::string taskforce = Key("e2e-taskforce", "task_force");
  CallResult watch = CallGeneric(*channel_, "/medkoord.shortage.v1.Shortage/WatchShortages", taskforce, "",
                                 absl::Milliseconds(300), false);
  EXPECT_EQ(watch.status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);

  // Idle: a polling thread would use a whole core (about 1 s of CPU per
  // second); the gateway's background work (audit flush, metrics) is far
  // below the bound.
  const pid_t gateway = ChildNamed("gateway");
  ASSERT_GT(gateway, 0);
  absl::SleepFor(absl::Milliseconds(100));
  const absl::Duration before = ProcessCpu(gateway);
  absl::SleepFor(absl::Seconds(1));
  EXPECT_LT(ProcessCpu(gateway) - before, absl::Milliseconds(300));

  const absl::Time stop = absl::Now();
  suite_->Stop("gateway");
  EXPECT_LT(absl::Now() - stop, absl::Seconds(10));
}

// A busy-polling window outside 0..10ms is refused at start-up, by name,
// before the gateway touches its database or listens.
TEST(GatewaySettingsTest, BusyPollOutsideItsBoundsIsRefusedAtStartUp) {
  const std::string gateway = ShellQuote(Suite::BinaryDir() + "/services/gateway/gateway");
  for (const char* bad : {"1s", "-1ms"}) {
    auto [code, out] = RunCommand(absl::StrCat(gateway, " --proxy_busy_poll=", bad,
                                               " --db_url=postgresql://127.0.0.1:1/none --principal_key_file=/dev/null",
                                               " --listen=127.0.0.1:0 2>&1"));
    EXPECT_EQ(code, 2) << bad << ": " << out;
    EXPECT_THAT(out, HasSubstr("--proxy_busy_poll")) << bad;
  }
  // Too long a window (the parser already refuses a negative one).
  auto [code, out] = RunCommand(absl::StrCat(gateway, " --proxy_busy_poll=1s 2>&1"));
  EXPECT_EQ(code, 2) << out;
  EXPECT_THAT(out, HasSubstr("--proxy_busy_poll must be between 0 (off) and 10ms"));
}

TEST_F(GatewayE2ETest, HealthWatchSendsTheStatusAndEndsAtShutdown) {
  StartSuite();
  auto health = grpc::health::v1::Health::NewStub(channel_);
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(60)));
  grpc::health::v1::HealthCheckRequest req;
  auto watch = health->Watch(&ctx, req);
  grpc::health::v1::HealthCheckResponse resp;
  ASSERT_TRUE(watch->Read(&resp));
  EXPECT_EQ(resp.status(), grpc::health::v1::HealthCheckResponse::SERVING);

  const absl::Time stop = absl::Now();
  suite_->Stop("gateway");
  EXPECT_LT(absl::Now() - stop, absl::Seconds(10));
  ASSERT_TRUE(watch->Read(&resp));
  EXPECT_EQ(resp.status(), grpc::health::v1::HealthCheckResponse::NOT_SERVING);
  EXPECT_FALSE(watch->Read(&resp));
  EXPECT_EQ(watch->Finish().error_code(), grpc::StatusCode::UNAVAILABLE);
}

}  // namespace
}  // namespace medkoord::e2e
