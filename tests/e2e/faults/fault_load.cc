#include "tests/e2e/faults/fault_load.h"

#include <cstdio>
#include <set>

#include <gtest/gtest.h>
#include <pqxx/pqxx>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "medkoord/assessment/v1/assessment.grpc.pb.h"
#include "medkoord/intake/v1/intake.grpc.pb.h"
#include "tests/support/postgres_cluster.h"

namespace medkoord::e2e::faults {
namespace {

namespace iv1 = medkoord::intake::v1;
namespace av1 = medkoord::assessment::v1;

// A submission as a regional system sends it; only the references vary.
iv1::SubmitApplicationRequest Submission(const RegionalClient& client, const std::string& request_id) {
  iv1::SubmitApplicationRequest r;
  r.set_request_id(request_id);
  iv1::Application* a = r.mutable_application();
  a->set_region(client.region);
  a->set_region_ref(request_id);
  a->mutable_submitted_on()->set_year(2024);
  a->mutable_submitted_on()->set_month(3);
  a->mutable_submitted_on()->set_day(5);
  a->set_drug_name("trifluridine/tipiracil");
  a->set_atc_code("L01BC59");
  a->set_indication("metastatic colorectal cancer");
  a->set_icd10("C18.9");
  a->set_cancer(true);
  a->set_marketed_dk(true);
  a->set_medicinraadet_status(iv1::MEDICINRAADET_STATUS_NOT_ASSESSED);
  a->set_ema_status(iv1::EMA_STATUS_OFF_LABEL);
  return r;
}

std::set<std::string> QueryStrings(const std::string& db_url, const std::string& sql) {
  std::set<std::string> out;
  pqxx::connection c(db_url);
  pqxx::work tx(c);
  for (const auto& row : tx.exec(sql)) out.insert(row[0].as<std::string>());
  return out;
}

// Every case assessment lists to the Forum, through the gateway.
absl::StatusOr<std::vector<std::string>> ListedCaseRefs(const Suite& suite, const std::string& forum_key) {
  auto stub = av1::Assessment::NewStub(suite.GatewayChannel());
  std::vector<std::string> out;
  std::string token;
  do {
    av1::ListCasesRequest req;
    req.set_page_size(1000);
    req.set_page_token(token);
    av1::ListCasesResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(20)));
    Authorize(ctx, forum_key);
    grpc::Status s = stub->ListCases(&ctx, req, &resp);
    if (!s.ok()) return absl::UnavailableError(s.error_message());
    for (const auto& c : resp.cases()) out.push_back(c.case_ref());
    token = resp.next_page_token();
  } while (!token.empty());
  return out;
}

}  // namespace

void FaultTest::SetUp() {
  if (!testing::PostgresCluster::BinariesAvailable()) GTEST_SKIP() << "PostgreSQL binaries not installed";
}

absl::StatusOr<std::unique_ptr<Suite>> StartFaultSuite(SuiteOptions options) {
  for (const auto& [k, v] : FaultGatewayEnv()) options.gateway_env.emplace(k, v);
  auto suite = Suite::Start(options);
  for (int attempt = 1; attempt < 4 && !suite.ok() && absl::StrContains(suite.status().message(), "listen");
       ++attempt) {
    suite = Suite::Start(options);
  }
  return suite;
}

absl::StatusOr<std::vector<RegionalClient>> RegionalClients(const Suite& suite) {
  std::vector<RegionalClient> out = {{"hovedstaden", medkoord::common::v1::REGION_HOVEDSTADEN, ""},
                                     {"midtjylland", medkoord::common::v1::REGION_MIDTJYLLAND, ""},
                                     {"syddanmark", medkoord::common::v1::REGION_SYDDANMARK, ""},
                                     {"sjaelland", medkoord::common::v1::REGION_SJAELLAND, ""},
                                     {"nordjylland", medkoord::common::v1::REGION_NORDJYLLAND, ""}};
  for (auto& c : out) {
    auto key = suite.CreateKey(c.slug + "-it", "region", c.slug);
    if (!key.ok()) return key.status();
    c.key = *key;
  }
  return out;
}

std::map<std::string, std::string> FaultGatewayEnv() {
  return {{"MEDKOORD_RATE_LIMIT_PER_SECOND", "100000"}, {"MEDKOORD_RATE_LIMIT_BURST", "100000"}};
}

grpc::Status RetryUnavailable(const std::function<grpc::Status()>& attempt, absl::Duration budget,
                              int* attempts) {
  const absl::Time until = absl::Now() + budget;
  absl::Duration backoff = absl::Milliseconds(20);
  int calls = 0;
  grpc::Status status;
  while (true) {
    status = attempt();
    ++calls;
    if (status.error_code() != grpc::StatusCode::UNAVAILABLE) break;
    if (absl::Now() + backoff > until) break;
    // A client's backoff between retries, not a wait for a condition.
    absl::SleepFor(backoff);
    backoff = std::min(backoff * 2, absl::Milliseconds(500));
  }
  if (attempts != nullptr) *attempts = calls;
  return status;
}

SubmissionLoad::SubmissionLoad(std::shared_ptr<grpc::Channel> gateway, std::vector<RegionalClient> clients,
                               std::string run_id)
    : gateway_(std::move(gateway)), clients_(std::move(clients)), run_id_(std::move(run_id)) {
  absl::MutexLock lock(&mu_);
  acked_per_client_.assign(clients_.size(), 0);
}

SubmissionLoad::~SubmissionLoad() { Stop(); }

void SubmissionLoad::Start() {
  for (size_t i = 0; i < clients_.size(); ++i) threads_.emplace_back([this, i] { Run(i); });
}

void SubmissionLoad::Run(size_t client) {
  const RegionalClient& c = clients_[client];
  auto stub = iv1::Intake::NewStub(gateway_);
  for (int n = 1; !stop_.load(); ++n) {
    const std::string request_id = absl::StrCat(run_id_, "-", c.slug, "-", n);
    const iv1::SubmitApplicationRequest request = Submission(c, request_id);
    iv1::Application created;
    int attempts = 0;
    // Two minutes: longer than any outage these tests cause, so a give-up
    // is a finding, not a flake.
    grpc::Status status = RetryUnavailable(
        [&] {
          grpc::ClientContext ctx;
          ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
          Authorize(ctx, c.key);
          created.Clear();
          return stub->SubmitApplication(&ctx, request, &created);
        },
        absl::Minutes(2), &attempts);
    absl::MutexLock lock(&mu_);
    stats_.attempts += attempts;
    if (attempts > 1) ++stats_.retried;
    stats_.max_attempts = std::max(stats_.max_attempts, attempts);
    if (!status.ok() || created.case_ref().empty()) {
      stats_.failures.push_back(absl::StrCat(request_id, ": ", status.error_code(), " ", status.error_message(),
                                             " after ", attempts, " calls"));
      return;
    }
    acknowledged_[request_id] = created.case_ref();
    ++stats_.acknowledged;
    ++acked_per_client_[client];
  }
}

bool SubmissionLoad::AwaitAcknowledged(int per_client, absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto reached = [this, per_client]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    if (!stats_.failures.empty()) return true;
    for (int n : acked_per_client_) {
      if (n < per_client) return false;
    }
    return true;
  };
  return mu_.AwaitWithTimeout(absl::Condition(&reached), timeout) && stats_.failures.empty();
}

int SubmissionLoad::MinAcknowledged() const {
  absl::MutexLock lock(&mu_);
  int min = acked_per_client_.empty() ? 0 : acked_per_client_[0];
  for (int n : acked_per_client_) min = std::min(min, n);
  return min;
}

void SubmissionLoad::Stop() {
  stop_ = true;
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

SubmissionLoad::Stats SubmissionLoad::stats() const {
  absl::MutexLock lock(&mu_);
  return stats_;
}

std::map<std::string, std::string> SubmissionLoad::acknowledged() const {
  absl::MutexLock lock(&mu_);
  return acknowledged_;
}

long QueryLong(const std::string& db_url, const std::string& sql) {
  try {
    pqxx::connection c(db_url);
    pqxx::work tx(c);
    return tx.exec1(sql)[0].as<long>();
  } catch (const std::exception& e) {
    ADD_FAILURE() << sql << ": " << e.what();
    return -1;
  }
}

void ExpectExactlyOnce(const Suite& suite, const std::map<std::string, std::string>& acknowledged,
                       const std::string& forum_key, absl::Duration delivery_timeout) {
  const long n = static_cast<long>(acknowledged.size());
  std::set<std::string> case_refs;
  for (const auto& [request_id, case_ref] : acknowledged) case_refs.insert(case_ref);
  EXPECT_EQ(static_cast<long>(case_refs.size()), n) << "two acknowledged requests share a case_ref";

  // Intake: exactly the acknowledged requests, each one application and one event.
  const std::string& intake = suite.db_url("intake");
  std::map<std::string, std::string> stored_requests;
  {
    pqxx::connection c(intake);
    pqxx::work tx(c);
    for (const auto& row : tx.exec("SELECT request_id, case_ref FROM applications WHERE request_id IS NOT NULL")) {
      stored_requests[row[0].as<std::string>()] = row[1].as<std::string>();
    }
  }
  EXPECT_EQ(stored_requests, acknowledged) << "intake's request_ids differ from the acknowledged submissions";
  EXPECT_EQ(QueryStrings(intake, "SELECT case_ref FROM applications"), case_refs);
  EXPECT_EQ(QueryLong(intake, "SELECT count(*) FROM applications"), n);
  EXPECT_EQ(QueryLong(intake, "SELECT count(*) FROM outbox WHERE topic = 'intake.application.submitted'"), n);

  // Assessment: wait for intake's outbox to drain, then one case, one applied
  // event and one registration per application.
  const std::string& assessment = suite.db_url("assessment");
  const absl::Time start = absl::Now();
  const absl::Time until = start + delivery_timeout;
  long undelivered = -1;
  long cases = -1;
  while (true) {
    undelivered = QueryLong(intake, "SELECT count(*) FROM outbox WHERE delivered_at IS NULL");
    cases = QueryLong(assessment, "SELECT count(*) FROM cases");
    if ((undelivered == 0 && cases >= n) || absl::Now() > until) break;
    absl::SleepFor(absl::Milliseconds(50));  // polling a condition, with a deadline
  }
  const absl::Duration drained = absl::Now() - start;
  EXPECT_EQ(undelivered, 0) << "intake's outbox not delivered within " << delivery_timeout;
  EXPECT_EQ(cases, n);
  EXPECT_EQ(QueryStrings(assessment, "SELECT case_ref FROM cases"), case_refs);
  EXPECT_EQ(QueryLong(assessment, "SELECT count(*) FROM applied_events"), n) << "an event applied twice";
  EXPECT_EQ(QueryLong(assessment, "SELECT count(DISTINCT case_ref) FROM applied_events"), n);
  // EventKind::kRegistered = 1 (services/assessment/assessment_store.h).
  EXPECT_EQ(QueryLong(assessment, "SELECT count(*) FROM case_events WHERE kind = 1"), n) << "a case registered twice";
  EXPECT_EQ(QueryLong(assessment, "SELECT count(*) FROM (SELECT case_ref FROM case_events WHERE kind = 1 "
                                  "GROUP BY case_ref HAVING count(*) > 1) d"),
            0);

  // And what the Forum sees through the API.
  auto listed = ListedCaseRefs(suite, forum_key);
  ASSERT_TRUE(listed.ok()) << listed.status();
  EXPECT_EQ(static_cast<long>(listed->size()), n);
  EXPECT_EQ(std::set<std::string>(listed->begin(), listed->end()), case_refs);

  std::printf("[ figures ] acknowledged=%ld intake_applications=%ld assessment_cases=%ld "
              "outbox_drained_after_check_start=%.0fms\n",
              n, QueryLong(intake, "SELECT count(*) FROM applications"), cases, absl::ToDoubleMilliseconds(drained));
}

}  // namespace medkoord::e2e::faults
