// Against a real PostgreSQL: SubmitApplication's group commit keeps every
// rule per row. The batch statement directly (duplicate request_ids and
// region_refs inside ONE batch, against stored rows, a taken case_ref, a row
// the database refuses) and concurrent callers through gRPC and the store
// (whatever batches they happen to form, each gets exactly its answer).

#include <map>
#include <set>
#include <thread>
#include <vector>

#include <gmock/gmock.h>

#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "common/metrics.h"
#include "medkoord/assessment/v1/assessment.pb.h"
#include "nlohmann/json.hpp"
#include "tests/integration/intake/intake_test_env.h"

namespace medkoord::intake::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::UnorderedElementsAreArray;

std::string Traceparent(int i) { return absl::StrFormat("00-%032x-%016x-01", i + 1, i + 1); }

class IntakeSubmitBatchTest : public IntakeTest {
 protected:
  std::vector<std::string> Column(const std::string& sql) {
    std::vector<std::string> out;
    EXPECT_TRUE(pool_->Run([&](pqxx::work& tx) {
                       for (const pqxx::row& r : tx.exec(sql)) out.push_back(r[0].is_null() ? "NULL" : r[0].as<std::string>());
                       return absl::OkStatus();
                     }).ok());
    return out;
  }
  // Outbox rows as "case_ref traceparent", the case_ref read from the event.
  std::vector<std::string> OutboxEvents() {
    std::vector<std::string> out;
    EXPECT_TRUE(pool_->Run([&](pqxx::work& tx) {
                       for (const pqxx::row& r : tx.exec("SELECT payload, traceparent FROM outbox ORDER BY id")) {
                         pqxx::binarystring bytes(r[0]);
                         av1::ApplyIntakeEventRequest event;
                         EXPECT_TRUE(event.ParseFromString(bytes.str()));
                         out.push_back(event.application_submitted().case_ref() + " " + r[1].as<std::string>());
                       }
                       return absl::OkStatus();
                     }).ok());
    return out;
  }

  ApplicationRecord Record(const std::string& region, const std::string& region_ref) {
    v1::Application a = ValidApplication();
    a.set_region(*RegionFromSlug(region));
    a.set_region_ref(region_ref);
    ParsedApplication parsed = ParseApplication(RawFromProto(a), ParseMode::kSubmission, {2025, 4, 7});
    EXPECT_THAT(parsed.violations, ::testing::IsEmpty());
    return parsed.record;
  }

  IntakeStore::PendingSubmit Pending(const std::string& principal, const std::string& request_id,
                                     const std::string& region, const std::string& region_ref, int trace) {
    auto p = store_->PrepareSubmit(Record(region, region_ref), principal, request_id, clock_.Now(), 2025,
                                   SubmittedEvent);
    EXPECT_TRUE(p.ok()) << p.status();
    p->traceparent = Traceparent(trace);
    return *std::move(p);
  }

  // Stored before a batch: caller p1's request "pre" with region_ref SYD-9;
  // returns its case_ref.
  std::string StorePre() {
    auto stored = store_->SubmitApplication(Record("syddanmark", "SYD-9"), "p1", "pre", clock_.Now(), 2025,
                                            SubmittedEvent);
    EXPECT_TRUE(stored.ok()) << stored.status();
    return stored.ok() ? stored->record.case_ref : "";
  }

  static std::vector<const IntakeStore::PendingSubmit*> Pointers(const std::vector<IntakeStore::PendingSubmit>& v) {
    std::vector<const IntakeStore::PendingSubmit*> out;
    for (const auto& p : v) out.push_back(&p);
    return out;
  }
};

TEST_F(IntakeSubmitBatchTest, OneBatchKeepsEveryRulePerRow) {
  const std::string pre = StorePre();

  std::vector<IntakeStore::PendingSubmit> batch;
  batch.push_back(Pending("p1", "r1", "syddanmark", "SYD-1", 0));   // 0 stored
  batch.push_back(Pending("p1", "r1", "syddanmark", "", 1));        // 1 same request as 0: 0's result
  batch.push_back(Pending("p1", "r2", "syddanmark", "SYD-2", 2));   // 2 stored
  batch.push_back(Pending("p1", "r3", "syddanmark", "SYD-2", 3));   // 3 region_ref of 2, request of 8: 8's result
  batch.push_back(Pending("p1", "r4", "syddanmark", "SYD-9", 4));   // 4 region_ref stored before: ALREADY_EXISTS
  batch.push_back(Pending("p1", "pre", "syddanmark", "SYD-7", 5));  // 5 request stored before: its result
  batch.push_back(Pending("p2", "r2", "midtjylland", "SYD-2", 6));  // 6 another caller, another region: stored
  batch.push_back(Pending("p1", "r7", "syddanmark", "", 7));        // 7 case_ref taken: written alone
  batch[7].record.case_ref = pre;
  batch.push_back(Pending("p1", "r3", "syddanmark", "", 8));        // 8 same request as 3, which was not stored: stored
  batch.push_back(Pending("p1", "r9", "syddanmark", "", 9));        // 9 stored

  std::vector<IntakeStore::BatchOutcome> out = store_->WriteSubmitBatch(Pointers(batch));
  ASSERT_EQ(out.size(), batch.size());
  for (int i : {0, 2, 6, 8, 9}) {
    ASSERT_TRUE(out[i].result.ok()) << i << ": " << out[i].result.status();
    EXPECT_FALSE(out[i].alone);
    EXPECT_FALSE(out[i].result->replayed);
    EXPECT_EQ(out[i].result->record.case_ref, batch[i].record.case_ref);
  }
  ASSERT_TRUE(out[1].result.ok()) << out[1].result.status();
  EXPECT_TRUE(out[1].result->replayed);
  EXPECT_EQ(out[1].result->record.case_ref, batch[0].record.case_ref);
  EXPECT_EQ(out[1].result->record.region_ref, "SYD-1");  // the first result, not this row's content
  // Rows 3 and 8 are concurrent calls with one request_id: both get the
  // answer of the one that was stored, as if 8 had come first.
  ASSERT_TRUE(out[3].result.ok()) << out[3].result.status();
  EXPECT_TRUE(out[3].result->replayed);
  EXPECT_EQ(out[3].result->record.case_ref, batch[8].record.case_ref);
  EXPECT_EQ(out[4].result.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_FALSE(out[4].alone);
  ASSERT_TRUE(out[5].result.ok());
  EXPECT_TRUE(out[5].result->replayed);
  EXPECT_EQ(out[5].result->record.case_ref, pre);
  EXPECT_TRUE(out[7].alone);

  // Exactly the stored rows: an application with its caller's request_id
  // and an outbox row with its caller's trace context each; nothing of the
  // others.
  const std::vector<std::string> stored_refs = {pre,
                                                batch[0].record.case_ref,
                                                batch[2].record.case_ref,
                                                batch[6].record.case_ref,
                                                batch[8].record.case_ref,
                                                batch[9].record.case_ref};
  EXPECT_THAT(Column("SELECT case_ref FROM applications"), UnorderedElementsAreArray(stored_refs));
  EXPECT_THAT(Column("SELECT created_by || ' ' || request_id FROM applications"),
              UnorderedElementsAreArray({"p1 pre", "p1 r1", "p1 r2", "p2 r2", "p1 r3", "p1 r9"}));
  EXPECT_THAT(OutboxEvents(), ElementsAre(pre + " ", batch[0].record.case_ref + " " + Traceparent(0),
                                          batch[2].record.case_ref + " " + Traceparent(2),
                                          batch[6].record.case_ref + " " + Traceparent(6),
                                          batch[8].record.case_ref + " " + Traceparent(8),
                                          batch[9].record.case_ref + " " + Traceparent(9)));

  // The row left to be written alone gets its own answer there (what
  // SubmitApplication does next): under a new number. A retry of 8 replays.
  auto seven = store_->SubmitApplication(batch[7].record, "p1", "r7", clock_.Now(), 2025, SubmittedEvent);
  ASSERT_TRUE(seven.ok()) << seven.status();
  EXPECT_FALSE(seven->replayed);
  EXPECT_NE(seven->record.case_ref, pre);
  auto eight = store_->SubmitApplication(batch[8].record, "p1", "r3", clock_.Now(), 2025, SubmittedEvent);
  ASSERT_TRUE(eight.ok()) << eight.status();
  EXPECT_TRUE(eight->replayed);
  EXPECT_EQ(eight->record.case_ref, batch[8].record.case_ref);
  EXPECT_THAT(Column("SELECT count(*)::text FROM outbox"), ElementsAre("7"));
}

// A used request_id is one more taken key: the row replays whatever else of
// it is taken or free, and the rest of its batch is stored.
TEST_F(IntakeSubmitBatchTest, ARequestIdUsedBeforeReplaysAndTheRestOfTheBatchIsStored) {
  const std::string pre = StorePre();

  std::vector<IntakeStore::PendingSubmit> batch;
  batch.push_back(Pending("p1", "r1", "syddanmark", "SYD-1", 0));   // 0 stored
  batch.push_back(Pending("p1", "r2", "syddanmark", "SYD-1", 1));   // 1 region_ref of 0: ALREADY_EXISTS
  batch.push_back(Pending("p1", "r3", "syddanmark", "SYD-9", 2));   // 2 region_ref stored before: ALREADY_EXISTS
  batch.push_back(Pending("p1", "r4", "syddanmark", "", 3));        // 3 case_ref taken: written alone
  batch[3].record.case_ref = pre;
  batch.push_back(Pending("p1", "pre", "syddanmark", "SYD-9", 4));  // 4 a retry of "pre": its result
  batch.push_back(Pending("p2", "r1", "midtjylland", "SYD-1", 5));  // 5 another caller, another region: stored
  std::vector<IntakeStore::BatchOutcome> out = store_->WriteSubmitBatch(Pointers(batch));
  ASSERT_EQ(out.size(), batch.size());
  for (int i : {0, 5}) {
    ASSERT_TRUE(out[i].result.ok()) << i << ": " << out[i].result.status();
    EXPECT_FALSE(out[i].result->replayed);
    EXPECT_EQ(out[i].result->record.case_ref, batch[i].record.case_ref);
  }
  for (int i : {1, 2}) {
    EXPECT_EQ(out[i].result.status().code(), absl::StatusCode::kAlreadyExists) << i;
    EXPECT_FALSE(out[i].alone);
  }
  EXPECT_TRUE(out[3].alone);
  ASSERT_TRUE(out[4].result.ok()) << out[4].result.status();
  EXPECT_TRUE(out[4].result->replayed);
  EXPECT_EQ(out[4].result->record.case_ref, pre);
  std::vector<std::string> stored_refs = {pre, batch[0].record.case_ref, batch[5].record.case_ref};
  EXPECT_THAT(Column("SELECT case_ref FROM applications"), UnorderedElementsAreArray(stored_refs));
  EXPECT_THAT(OutboxEvents(), ElementsAre(pre + " ", batch[0].record.case_ref + " " + Traceparent(0),
                                          batch[5].record.case_ref + " " + Traceparent(5)));

  // "pre" again, now without a region_ref (only its request_id is taken): a
  // replay, and the other row stored.
  std::vector<IntakeStore::PendingSubmit> second;
  second.push_back(Pending("p1", "pre", "syddanmark", "", 10));
  second.push_back(Pending("p1", "r11", "syddanmark", "", 11));
  out = store_->WriteSubmitBatch(Pointers(second));
  ASSERT_EQ(out.size(), 2u);
  ASSERT_TRUE(out[0].result.ok()) << out[0].result.status();
  EXPECT_TRUE(out[0].result->replayed);
  EXPECT_EQ(out[0].result->record.case_ref, pre);
  ASSERT_TRUE(out[1].result.ok()) << out[1].result.status();
  EXPECT_FALSE(out[1].result->replayed);
  stored_refs.push_back(second[1].record.case_ref);
  EXPECT_THAT(Column("SELECT case_ref FROM applications"), UnorderedElementsAreArray(stored_refs));
  EXPECT_THAT(Column("SELECT count(*)::text FROM outbox"), ElementsAre("4"));
}

TEST_F(IntakeSubmitBatchTest, ARowTheDatabaseRefusesFailsOnlyItself) {
  std::vector<IntakeStore::PendingSubmit> batch;
  for (int i = 0; i < 3; ++i) batch.push_back(Pending("p1", absl::StrCat("r", i), "syddanmark", "", i));
  batch[1].record.medicinraadet_status = "not_a_status";  // past validation, refused by a CHECK
  std::vector<IntakeStore::BatchOutcome> out = store_->WriteSubmitBatch(Pointers(batch));
  // The statement failed as a whole: nothing written, every row on its own.
  for (const auto& o : out) EXPECT_TRUE(o.alone);
  EXPECT_THAT(Column("SELECT count(*)::text FROM applications"), ElementsAre("0"));
  EXPECT_THAT(Column("SELECT count(*)::text FROM outbox"), ElementsAre("0"));

  // Through the group commit with concurrent callers (however they batch),
  // the bad row fails and every good one is stored.
  constexpr int kCallers = 16;
  std::vector<absl::StatusOr<IntakeStore::Submitted>> results(kCallers, absl::UnknownError(""));
  std::vector<std::thread> threads;
  for (int i = 0; i < kCallers; ++i) {
    threads.emplace_back([&, i] {
      ApplicationRecord r = Record("syddanmark", "");
      if (i == 5) r.ema_status = "not_a_status";
      results[i] = store_->SubmitApplication(r, "p1", absl::StrCat("c", i), clock_.Now(), 2025, SubmittedEvent);
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < kCallers; ++i) {
    if (i == 5) {
      EXPECT_FALSE(results[i].ok());
    } else {
      EXPECT_TRUE(results[i].ok()) << i << ": " << results[i].status();
    }
  }
  EXPECT_THAT(Column("SELECT count(*)::text FROM applications"), ElementsAre(std::to_string(kCallers - 1)));
  EXPECT_THAT(Column("SELECT count(*)::text FROM outbox"), ElementsAre(std::to_string(kCallers - 1)));
}

TEST_F(IntakeSubmitBatchTest, ThirtyTwoConcurrentCallersEachGetExactlyTheirAnswer) {
  // 32 threads, 6 rounds each. In every round: threads 0-7 send the SAME
  // request (a retry storm), threads 8-15 send different requests with the
  // same region_ref, threads 16-19 send an invalid application, the others
  // a new application each; every call carries its own trace context.
  constexpr int kThreads = 32, kRounds = 6;
  struct Call {
    grpc::StatusCode code = grpc::StatusCode::UNKNOWN;
    std::string case_ref;
    std::string traceparent;
  };
  std::vector<std::vector<Call>> calls(kThreads, std::vector<Call>(kRounds));
  std::vector<std::thread> threads;
  const Principal caller = Region(common::v1::REGION_SYDDANMARK);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < kRounds; ++round) {
        v1::SubmitApplicationRequest request;
        *request.mutable_application() = ValidApplication();
        if (t < 8) {
          request.set_request_id(absl::StrCat("storm-", round));
        } else if (t < 16) {
          request.set_request_id(absl::StrCat("ref-", t, "-", round));
          request.mutable_application()->set_region_ref(absl::StrCat("HOT-", round));
        } else {
          request.set_request_id(absl::StrCat("own-", t, "-", round));
          if (t < 20) request.mutable_application()->set_atc_code("XYZ");
        }
        Call& call = calls[t][round];
        call.traceparent = Traceparent(t * kRounds + round);
        auto ctx = Ctx(caller, "SubmitApplication");
        ctx->AddMetadata("traceparent", call.traceparent);
        v1::Application out;
        call.code = stub_->SubmitApplication(ctx.get(), request, &out).error_code();
        call.case_ref = out.case_ref();
      }
    });
  }
  for (auto& th : threads) th.join();

  std::map<std::string, std::string> trace_of;  // case_ref -> trace of the call that created it
  for (int round = 0; round < kRounds; ++round) {
    // The retry storm: one application, every caller answered with it.
    std::set<std::string> storm;
    for (int t = 0; t < 8; ++t) {
      EXPECT_EQ(calls[t][round].code, grpc::StatusCode::OK);
      storm.insert(calls[t][round].case_ref);
    }
    EXPECT_EQ(storm.size(), 1u);
    // The contested region_ref: exactly one stored, the rest ALREADY_EXISTS.
    int won = 0;
    for (int t = 8; t < 16; ++t) {
      const Call& c = calls[t][round];
      if (c.code == grpc::StatusCode::OK) {
        ++won;
        trace_of[c.case_ref] = c.traceparent;
      } else {
        EXPECT_EQ(c.code, grpc::StatusCode::ALREADY_EXISTS);
      }
    }
    EXPECT_EQ(won, 1) << "round " << round;
    for (int t = 16; t < kThreads; ++t) {
      const Call& c = calls[t][round];
      if (t < 20) {
        EXPECT_EQ(c.code, grpc::StatusCode::INVALID_ARGUMENT);
      } else {
        EXPECT_EQ(c.code, grpc::StatusCode::OK);
        trace_of[c.case_ref] = c.traceparent;
      }
    }
  }
  constexpr int kStored = kRounds * (1 + 1 + 12);
  EXPECT_EQ(trace_of.size(), static_cast<size_t>(kRounds * 13));
  EXPECT_THAT(Column("SELECT count(*)::text FROM applications"), ElementsAre(std::to_string(kStored)));
  EXPECT_THAT(Column("SELECT count(DISTINCT (created_by, request_id))::text FROM applications"),
              ElementsAre(std::to_string(kStored)));
  // One outbox row per application, each with the trace context of the
  // call that created it (a storm's row carries one of its callers').
  std::map<std::string, std::string> events;
  for (const std::string& e : OutboxEvents()) {
    const size_t space = e.find(' ');
    EXPECT_TRUE(events.emplace(e.substr(0, space), e.substr(space + 1)).second) << "two events for " << e;
  }
  EXPECT_EQ(events.size(), static_cast<size_t>(kStored));
  for (const auto& [case_ref, trace] : trace_of) EXPECT_EQ(events[case_ref], trace) << case_ref;
  // Validation errors never reached the group commit: it saw the 26 valid
  // calls of each round, no more.
  EXPECT_EQ(store_->submit_batch_stats().items, kRounds * (kThreads - 4));
  const GroupCommitStats stats = store_->submit_batch_stats();
  std::cout << "batches " << stats.batches << " items " << stats.items << " largest " << stats.largest << "\n";
}

TEST_F(IntakeSubmitBatchTest, TheCallbackHandlerStillPassesTheInterceptorAndThePrincipalCheck) {
  const std::string method = FullMethodName(v1::Intake::service_full_name(), "SubmitApplication");
  auto handled = [&](grpc::StatusCode code) {
    return metrics::DefaultRegistry()
        .GetCounter("medkoord_grpc_server_handled_total", "RPCs completed, by method and status code",
                    {{"service", "intake-test"}, {"method", method}, {"code", StatusCodeName(code)}})
        .value();
  };
  const double ok0 = handled(grpc::StatusCode::OK), denied0 = handled(grpc::StatusCode::PERMISSION_DENIED),
               unauth0 = handled(grpc::StatusCode::UNAUTHENTICATED);
  v1::SubmitApplicationRequest request;
  request.set_request_id("cb-1");
  *request.mutable_application() = ValidApplication();
  v1::Application out;
  ::testing::internal::CaptureStderr();
  grpc::ClientContext bare;
  const grpc::StatusCode unsigned_code = stub_->SubmitApplication(&bare, request, &out).error_code();
  const grpc::StatusCode other_method =
      stub_->SubmitApplication(Ctx(Region(common::v1::REGION_SYDDANMARK), "GetApplication").get(), request, &out)
          .error_code();
  const grpc::StatusCode member = Submit(Member(), ValidApplication(), "cb-1", &out).error_code();
  const grpc::StatusCode other_region =
      Submit(Region(common::v1::REGION_HOVEDSTADEN), ValidApplication(), "cb-1", &out).error_code();
  const grpc::Status ok = Submit(Region(common::v1::REGION_SYDDANMARK), ValidApplication(), "cb-1", &out);
  const std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(unsigned_code, grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(other_method, grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(member, grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(other_region, grpc::StatusCode::INVALID_ARGUMENT);
  ASSERT_TRUE(ok.ok()) << ok.error_message();
  EXPECT_THAT(Column("SELECT count(*)::text FROM applications"), ElementsAre("1"));
  // The access-log interceptor saw every call: its counters and log lines.
  EXPECT_EQ(handled(grpc::StatusCode::OK) - ok0, 1);
  EXPECT_EQ(handled(grpc::StatusCode::PERMISSION_DENIED) - denied0, 1);
  EXPECT_EQ(handled(grpc::StatusCode::UNAUTHENTICATED) - unauth0, 2);
  int lines = 0;
  std::vector<std::string> principals;
  for (absl::string_view line : absl::StrSplit(log, '\n')) {
    if (absl::StrContains(line, "\"msg\":\"rpc\"") && absl::StrContains(line, method)) {
      ++lines;
      principals.push_back(nlohmann::json::parse(line).value("principal", "?"));
    }
  }
  EXPECT_EQ(lines, 5) << log;
  // The principal the handler verified (NoteVerifiedPrincipal; this server
  // has no signer of its own to verify it again), none when unverified.
  EXPECT_THAT(principals, ElementsAre("", "", "forum-member", "region-it:hovedstaden", "region-it:syddanmark"));
}

}  // namespace
}  // namespace medkoord::intake::testing
