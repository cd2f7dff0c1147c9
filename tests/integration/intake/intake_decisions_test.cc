// Against a real PostgreSQL: decision events from assessment in every order
// assessment can send them (and how assessment's relay treats intake's
// answers), the trace context on intake's outbox rows, concurrent retries of
// one submission, and db::Pool::RunAutocommit, which the submit path uses.

#include <thread>
#include <vector>

#include <gmock/gmock.h>

#include "common/db/outbox.h"
#include "services/assessment/assessment_service.h"
#include "tests/integration/intake/intake_test_env.h"

namespace medkoord::intake::testing {
namespace {

constexpr char kTraceparent[] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

class IntakeDecisionsTest : public IntakeTest {
 protected:
  v1::Application MustSubmit(const std::string& request_id) {
    v1::Application out;
    grpc::Status s = Submit(Region(common::v1::REGION_SYDDANMARK), ValidApplication(), request_id, &out);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return out;
  }

  static v1::ApplyDecisionRequest Decision(const std::string& event_id, const std::string& application,
                                           v1::Outcome outcome, int month, int day) {
    v1::ApplyDecisionRequest d;
    d.set_event_id(event_id);
    d.set_application(application);
    d.set_outcome(outcome);
    d.mutable_decided_on()->set_year(2025);
    d.mutable_decided_on()->set_month(month);
    d.mutable_decided_on()->set_day(day);
    d.set_decided_by("forum-secretariat");
    return d;
  }

  grpc::Status Apply(const v1::ApplyDecisionRequest& d, v1::ApplyDecisionResponse* out) {
    return internal_stub_->ApplyDecision(Ctx(Service(), "ApplyDecision", v1::IntakeInternal::service_full_name()).get(),
                                         d, out);
  }

  v1::Application Get(const std::string& name) {
    v1::GetApplicationRequest get;
    get.set_name(name);
    v1::Application out;
    grpc::Status s = stub_->GetApplication(Ctx(Region(common::v1::REGION_SYDDANMARK), "GetApplication").get(), get, &out);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return out;
  }

  std::vector<std::string> Column(const std::string& sql) {
    std::vector<std::string> out;
    EXPECT_TRUE(pool_->Run([&](pqxx::work& tx) {
                       for (const pqxx::row& r : tx.exec(sql)) out.push_back(r[0].as<std::string>());
                       return absl::OkStatus();
                     }).ok());
    return out;
  }
};

TEST_F(IntakeDecisionsTest, RepeatedSameAndOlderDecisionsAreAcceptedAndChangeNothing) {
  const v1::Application app = MustSubmit("d-1");
  v1::ApplyDecisionResponse first;
  ASSERT_TRUE(Apply(Decision("evt-1", app.name(), v1::OUTCOME_RECOMMENDED, 4, 2), &first).ok());
  EXPECT_FALSE(first.duplicate());
  EXPECT_EQ(first.application().outcome(), v1::OUTCOME_RECOMMENDED);
  const int64_t decided_at = first.application().decided().time().seconds();
  clock_.Advance(absl::Hours(2));

  // The same event again: a duplicate.
  v1::ApplyDecisionResponse repeat;
  ASSERT_TRUE(Apply(Decision("evt-1", app.name(), v1::OUTCOME_RECOMMENDED, 4, 2), &repeat).ok());
  EXPECT_TRUE(repeat.duplicate());
  // The same decision under another event id: accepted, unchanged.
  v1::ApplyDecisionResponse same;
  ASSERT_TRUE(Apply(Decision("evt-1b", app.name(), v1::OUTCOME_RECOMMENDED, 4, 2), &same).ok());
  EXPECT_EQ(same.application().decided().time().seconds(), decided_at);
  // An older, different decision: accepted (assessment's outbox must go on)
  // but the stored decision stays.
  v1::ApplyDecisionResponse older;
  ASSERT_TRUE(Apply(Decision("evt-0", app.name(), v1::OUTCOME_NOT_RECOMMENDED, 3, 20), &older).ok());
  EXPECT_EQ(older.application().outcome(), v1::OUTCOME_RECOMMENDED);
  const v1::Application stored = Get(app.name());
  EXPECT_EQ(stored.outcome(), v1::OUTCOME_RECOMMENDED);
  EXPECT_EQ(stored.decided_on().day(), 2);
  EXPECT_EQ(stored.decided().time().seconds(), decided_at);
  // Every event is recorded as applied, so none is applied twice later.
  EXPECT_THAT(Column("SELECT event_id FROM applied_decisions"),
              ::testing::UnorderedElementsAre("evt-1", "evt-1b", "evt-0"));

  // A newer decision replaces it: assessment is where decisions are made.
  v1::ApplyDecisionResponse newer;
  ASSERT_TRUE(Apply(Decision("evt-2", app.name(), v1::OUTCOME_NOT_CONCLUDED, 4, 5), &newer).ok());
  EXPECT_EQ(Get(app.name()).outcome(), v1::OUTCOME_NOT_CONCLUDED);
}

TEST_F(IntakeDecisionsTest, ADecisionOverAWithdrawalAssessmentRefusedShowsTheCaseDecided) {
  const v1::Application app = MustSubmit("w-1");
  // The region withdraws while assessment has already decided: intake shows
  // it withdrawn until the decision arrives.
  v1::WithdrawApplicationRequest withdraw;
  withdraw.set_name(app.name());
  withdraw.set_reason("patient moved");
  v1::Application withdrawn;
  ASSERT_TRUE(stub_->WithdrawApplication(Ctx(Region(common::v1::REGION_SYDDANMARK), "WithdrawApplication").get(),
                                         withdraw, &withdrawn)
                  .ok());
  EXPECT_EQ(withdrawn.state(), v1::APPLICATION_STATE_WITHDRAWN);
  v1::ApplyDecisionResponse applied;
  ASSERT_TRUE(Apply(Decision("evt-w", app.name(), v1::OUTCOME_NOT_RECOMMENDED, 4, 3), &applied).ok());
  const v1::Application now = Get(app.name());
  EXPECT_EQ(now.state(), v1::APPLICATION_STATE_DECIDED);
  EXPECT_EQ(now.outcome(), v1::OUTCOME_NOT_RECOMMENDED);
  // And a repeat of that event is still just a duplicate.
  ASSERT_TRUE(Apply(Decision("evt-w", app.name(), v1::OUTCOME_NOT_RECOMMENDED, 4, 3), &applied).ok());
  EXPECT_TRUE(applied.duplicate());
}

TEST_F(IntakeDecisionsTest, AnUnknownApplicationIsNotFoundAndAssessmentsRelayMovesOn) {
  const v1::Application app = MustSubmit("u-1");
  v1::ApplyDecisionResponse r;
  EXPECT_EQ(Apply(Decision("evt-x", "regions/syddanmark/applications/A-2025-999999", v1::OUTCOME_RECOMMENDED, 4, 2), &r)
                .error_code(),
            grpc::StatusCode::NOT_FOUND);
  // The right case_ref under another region's name is not that application.
  EXPECT_EQ(Apply(Decision("evt-y", "regions/hovedstaden/applications/" + app.case_ref(), v1::OUTCOME_RECOMMENDED, 4,
                           2),
                  &r)
                .error_code(),
            grpc::StatusCode::NOT_FOUND);
  EXPECT_TRUE(Column("SELECT event_id FROM applied_decisions").empty());

  // Assessment's delivery against this (real) intake: the unknown
  // application is a final answer (refused: the relay settles it and goes
  // on with the events after it); an outage is retried.
  auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(server_->port()),
                                     grpc::InsecureChannelCredentials());
  assessment::IntakeDecisionDelivery deliver(channel, *signer_);
  auto event = [](const std::string& id, const v1::ApplyDecisionRequest& d) {
    db::OutboxEvent e;
    e.event_id = id;
    e.topic = "assessment.decision.recorded";
    e.payload = d.SerializeAsString();
    return e;
  };
  EXPECT_TRUE(db::IsOutboxRefused(deliver(event(
      "11111111-1111-1111-1111-111111111111",
      Decision("", "regions/syddanmark/applications/A-2025-999999", v1::OUTCOME_RECOMMENDED, 4, 2)))));
  EXPECT_TRUE(deliver(event("22222222-2222-2222-2222-222222222222",
                            Decision("", app.name(), v1::OUTCOME_RECOMMENDED, 4, 2)))
                  .ok());
  EXPECT_EQ(Get(app.name()).outcome(), v1::OUTCOME_RECOMMENDED);
  db::OutboxEvent garbage = event("33333333-3333-3333-3333-333333333333", {});
  garbage.payload = "\xff\xff\xff";
  EXPECT_TRUE(db::IsOutboxRefused(deliver(garbage))) << "an unreadable event must not block the ones after it";

  assessment::IntakeDecisionDelivery nowhere(
      grpc::CreateChannel("127.0.0.1:1", grpc::InsecureChannelCredentials()), *signer_, absl::Seconds(2));
  const absl::Status down =
      nowhere(event("44444444-4444-4444-4444-444444444444", Decision("", app.name(), v1::OUTCOME_RECOMMENDED, 4, 2)));
  EXPECT_EQ(down.code(), absl::StatusCode::kUnavailable) << down;
  EXPECT_FALSE(db::IsOutboxRefused(down));
}

TEST_F(IntakeDecisionsTest, OutboxRowsCarryTheCallersTraceContext) {
  v1::SubmitApplicationRequest request;
  request.set_request_id("t-1");
  *request.mutable_application() = ValidApplication();
  auto ctx = Ctx(Region(common::v1::REGION_SYDDANMARK), "SubmitApplication");
  ctx->AddMetadata("traceparent", kTraceparent);
  v1::Application app;
  ASSERT_TRUE(stub_->SubmitApplication(ctx.get(), request, &app).ok());

  v1::WithdrawApplicationRequest withdraw;
  withdraw.set_name(app.name());
  auto wctx = Ctx(Region(common::v1::REGION_SYDDANMARK), "WithdrawApplication");
  wctx->AddMetadata("traceparent", kTraceparent);
  v1::Application out;
  ASSERT_TRUE(stub_->WithdrawApplication(wctx.get(), withdraw, &out).ok());

  {
    auto ictx = Ctx(Secretariat(), "ImportApplications");
    ictx->AddMetadata("traceparent", kTraceparent);
    v1::ImportApplicationsResponse imported;
    auto writer = stub_->ImportApplications(ictx.get(), &imported);
    v1::ImportApplicationsRequest chunk;
    chunk.set_chunk(
        "case_ref,region,submitted_on,drug_name,atc_code,indication,icd10,cancer,marketed_dk,"
        "medicinraadet_status,ema_status,outcome,decided_on\r\n"
        "T-1,midtjylland,2024-05-02,Mepolizumab,R03DX09,Chronic rhinosinusitis with nasal polyps,J33.9,no,yes,"
        "not_assessed,on_label,recommended,2024-05-20\r\n");
    ASSERT_TRUE(writer->Write(chunk));
    writer->WritesDone();
    ASSERT_TRUE(writer->Finish().ok());
    EXPECT_EQ(imported.stored(), 1);
  }
  // A call without a trace context leaves the column empty.
  ASSERT_TRUE(Submit(Region(common::v1::REGION_SYDDANMARK), ValidApplication(), "t-2", &out).ok());

  EXPECT_THAT(Column("SELECT topic || ' ' || traceparent FROM outbox ORDER BY id"),
              ::testing::ElementsAre(std::string("intake.application.submitted ") + kTraceparent,
                                     std::string("intake.application.withdrawn ") + kTraceparent,
                                     std::string("intake.application.imported ") + kTraceparent,
                                     "intake.application.submitted "));
}

TEST_F(IntakeDecisionsTest, ConcurrentRetriesOfOneSubmissionCreateOneApplication) {
  constexpr int kRetries = 8;
  std::vector<std::string> case_refs(kRetries);
  std::vector<grpc::Status> statuses(kRetries);
  std::vector<std::thread> threads;
  for (int i = 0; i < kRetries; ++i) {
    threads.emplace_back([&, i] {
      v1::Application out;
      statuses[i] = Submit(Region(common::v1::REGION_SYDDANMARK), ValidApplication(), "same-request", &out);
      case_refs[i] = out.case_ref();
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < kRetries; ++i) {
    EXPECT_TRUE(statuses[i].ok()) << statuses[i].error_message();
    EXPECT_EQ(case_refs[i], case_refs[0]);
  }
  EXPECT_THAT(Column("SELECT case_ref FROM applications"), ::testing::ElementsAre(case_refs[0]));
  EXPECT_THAT(Column("SELECT count(*)::text FROM outbox"), ::testing::ElementsAre("1"));
  EXPECT_THAT(Column("SELECT request_id FROM applications"), ::testing::ElementsAre("same-request"));

  // A retry whose region_ref the first attempt took is still a replay; a
  // new request with that region_ref is ALREADY_EXISTS and stores nothing.
  v1::Application with_ref = ValidApplication();
  with_ref.set_region_ref("SYD-1");
  v1::Application first, again, clash;
  ASSERT_TRUE(Submit(Region(common::v1::REGION_SYDDANMARK), with_ref, "ref-1", &first).ok());
  ASSERT_TRUE(Submit(Region(common::v1::REGION_SYDDANMARK), with_ref, "ref-1", &again).ok());
  EXPECT_EQ(again.case_ref(), first.case_ref());
  EXPECT_EQ(Submit(Region(common::v1::REGION_SYDDANMARK), with_ref, "ref-2", &clash).error_code(),
            grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_THAT(Column("SELECT count(*)::text FROM outbox"), ::testing::ElementsAre("2"));
  EXPECT_THAT(Column("SELECT count(*)::text FROM applications"), ::testing::ElementsAre("2"));
}

// Migration 0003 moves the request_ids of applications submitted before it
// from create_requests onto their applications: a retry after the upgrade
// still answers with the first result, and protocols keep theirs.
TEST_F(IntakeDecisionsTest, RequestIdsClaimedBeforeMigration3StillReplay) {
  auto url = cluster().CreateDatabase("intake_upgrade");
  ASSERT_TRUE(url.ok()) << url.status();
  {
    db::Pool old_schema(db::PoolOptions{.url = *url, .size = 1});
    const std::vector<db::Migration> before(Migrations().begin(), Migrations().begin() + 2);
    ASSERT_TRUE(db::Migrate(old_schema, before).ok());
    // What the code before 0003 wrote for a submission and a protocol.
    ASSERT_TRUE(old_schema
                    .Run([](pqxx::work& tx) {
                      tx.exec(
                          "INSERT INTO applications (case_ref, region, submitted_on, drug_name, atc_code, indication, "
                          "cancer, marketed_dk, medicinraadet_status, ema_status, state, source, created_by, "
                          "created_at, updated_at) VALUES ('A-2025-000007', 'syddanmark', '2025-04-01', 'Drug', "
                          "'L01XC07', 'Indication', true, true, 'not_assessed', 'on_label', 'open', 'submitted', "
                          "'region:syddanmark', now(), now())");
                      tx.exec("INSERT INTO create_requests VALUES ('application', 'region:syddanmark', 'old-1', "
                              "'A-2025-000007', now()), ('protocol', 'region:syddanmark', 'old-1', 'P-1', now())");
                      return absl::OkStatus();
                    })
                    .ok());
  }
  db::Pool pool(db::PoolOptions{.url = *url, .size = 1, .prepare = IntakeStore::Prepare});
  auto migrated = db::Migrate(pool, Migrations());
  ASSERT_TRUE(migrated.ok()) << migrated.status();
  {
    IntakeStore store(pool);
    ApplicationRecord record = ParseApplication(RawFromProto(ValidApplication()), ParseMode::kSubmission,
                                                {2025, 4, 7})
                                   .record;
    auto again = store.SubmitApplication(record, "region:syddanmark", "old-1", clock_.Now(), 2025, SubmittedEvent);
    ASSERT_TRUE(again.ok()) << again.status();
    EXPECT_TRUE(again->replayed);
    EXPECT_EQ(again->record.case_ref, "A-2025-000007");
  }
  std::vector<std::string> kinds;
  ASSERT_TRUE(pool.Run([&](pqxx::work& tx) {
                    for (const pqxx::row& r : tx.exec("SELECT kind FROM create_requests")) kinds.push_back(r[0].c_str());
                    EXPECT_EQ(tx.exec1("SELECT count(*) FROM applications")[0].as<int>(), 1);
                    return absl::OkStatus();
                  }).ok());
  EXPECT_THAT(kinds, ::testing::ElementsAre("protocol"));
  (void)cluster().DropDatabase(*url);
}

TEST_F(IntakeDecisionsTest, AutocommitRunsCommitEachStatementAndSurviveAFailedOne) {
  ASSERT_TRUE(pool_->Run([](pqxx::work& tx) {
                     tx.exec("CREATE TABLE items (id int PRIMARY KEY, qty int NOT NULL CHECK (qty >= 0))");
                     return absl::OkStatus();
                   }).ok());
  // A failed statement does not undo the one before it, and the connection
  // goes on (no aborted transaction block).
  absl::Status s = pool_->RunAutocommit(
      [](pqxx::nontransaction& tx) -> absl::Status {
        tx.exec("INSERT INTO items VALUES (1, 1)");
        try {
          tx.exec("INSERT INTO items VALUES (1, 2)");
        } catch (const pqxx::unique_violation&) {
          tx.exec("INSERT INTO items VALUES (2, 2)");
        }
        return absl::OkStatus();
      },
      /*repeatable=*/false);
  EXPECT_TRUE(s.ok()) << s;
  // An error status does not roll anything back either: there is nothing to
  // roll back.
  s = pool_->RunAutocommit(
      [](pqxx::nontransaction& tx) -> absl::Status {
        tx.exec("INSERT INTO items VALUES (3, 3)");
        return absl::InvalidArgumentError("after the write");
      },
      false);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  // A failing statement maps to a status like in Run.
  s = pool_->RunAutocommit(
      [](pqxx::nontransaction& tx) -> absl::Status {
        tx.exec("INSERT INTO items VALUES (4, -1)");
        return absl::OkStatus();
      },
      false);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_THAT(Column("SELECT id::text FROM items ORDER BY id"), ::testing::ElementsAre("1", "2", "3"));

  // A connection killed under the pool: a repeatable function runs again on
  // a new connection, a non-repeatable one answers UNAVAILABLE.
  auto kill_others = [&] {
    std::unique_ptr<pqxx::connection> admin = *pool_->Connect();
    pqxx::nontransaction n(*admin);
    // Waits (up to 10 s) until each backend is gone.
    n.exec("SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity WHERE datname = current_database() "
           "AND pid <> pg_backend_pid()");
  };
  kill_others();
  int runs = 0;
  s = pool_->RunAutocommit(
      [&](pqxx::nontransaction& tx) {
        ++runs;
        tx.exec("SELECT 1");
        return absl::OkStatus();
      },
      true);
  EXPECT_TRUE(s.ok()) << s;
  EXPECT_EQ(runs, 2);
  // The pool hands out its most recently returned connection first, the
  // one just replaced: kill it too.
  kill_others();
  s = pool_->RunAutocommit(
      [&](pqxx::nontransaction& tx) {
        tx.exec("SELECT 1");
        return absl::OkStatus();
      },
      false);
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  // The next call gets a new connection.
  EXPECT_TRUE(pool_->RunAutocommit(
                       [](pqxx::nontransaction& tx) {
                         tx.exec("SELECT 1");
                         return absl::OkStatus();
                       },
                       false)
                  .ok());
}

}  // namespace
}  // namespace medkoord::intake::testing
