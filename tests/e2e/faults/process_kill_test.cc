// kill -9 of intake, and of assessment, in the middle of a submission load
// through the gateway: regional clients retry UNAVAILABLE with the same
// request_id, the process is restarted, and every acknowledged submission is
// stored exactly once in intake and registered exactly once in assessment.

#include <cstdio>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "tests/e2e/faults/fault_load.h"
#include "tests/e2e/suite.h"

namespace medkoord::e2e::faults {
namespace {

class ProcessKillTest : public FaultTest {
 protected:

  // Kills `victim` while five regional clients submit, restarts it, lets
  // the load go on, and checks exactly-once end to end.
  void KillUnderLoad(const std::string& victim) {
    auto suite = StartFaultSuite();
    ASSERT_TRUE(suite.ok()) << suite.status();
    auto clients = RegionalClients(**suite);
    ASSERT_TRUE(clients.ok()) << clients.status();
    auto forum = (*suite)->CreateKey("forum-member", "forum_member");
    ASSERT_TRUE(forum.ok()) << forum.status();

    SubmissionLoad load((*suite)->GatewayChannel(), *clients, "kill-" + victim);
    load.Start();
    ASSERT_TRUE(load.AwaitAcknowledged(15, absl::Seconds(60))) << absl::StrJoin(load.stats().failures, "\n");

    const int acked_before_kill = load.stats().acknowledged;
    const absl::Time killed = absl::Now();
    (*suite)->Kill(victim);
    if (victim == "assessment") {
      // Intake goes on accepting without assessment; the events wait in its outbox.
      ASSERT_TRUE(load.AwaitAcknowledged(load.MinAcknowledged() + 10, absl::Seconds(60)))
          << absl::StrJoin(load.stats().failures, "\n");
      EXPECT_GT(QueryLong((*suite)->db_url("intake"), "SELECT count(*) FROM outbox WHERE delivered_at IS NULL"), 0);
    }
    const int acked_while_down = load.stats().acknowledged - acked_before_kill;
    absl::Status restarted = (*suite)->Restart(victim);
    ASSERT_TRUE(restarted.ok()) << restarted;
    const absl::Duration down = absl::Now() - killed;

    ASSERT_TRUE(load.AwaitAcknowledged(load.MinAcknowledged() + 15, absl::Seconds(60)))
        << absl::StrJoin(load.stats().failures, "\n");
    load.Stop();
    const SubmissionLoad::Stats stats = load.stats();
    EXPECT_TRUE(stats.failures.empty()) << absl::StrJoin(stats.failures, "\n");
    if (victim == "intake") {
      // The kill hit the load: some submissions went unanswered and were retried.
      EXPECT_GT(stats.retried, 0);
    }
    std::printf("[ figures ] kill -9 %s: down (kill to SERVING again) %.0fms; acknowledged %d (before kill %d, "
                "while down %d); calls %d; retried submissions %d; most calls for one submission %d\n",
                victim.c_str(), absl::ToDoubleMilliseconds(down), stats.acknowledged, acked_before_kill,
                acked_while_down, stats.attempts, stats.retried, stats.max_attempts);
    ExpectExactlyOnce(**suite, load.acknowledged(), *forum, absl::Seconds(60));
  }
};

TEST_F(ProcessKillTest, IntakeKilledUnderSubmissionLoadLosesAndDuplicatesNothing) { KillUnderLoad("intake"); }

TEST_F(ProcessKillTest, AssessmentKilledUnderSubmissionLoadRegistersEverySubmissionOnce) {
  KillUnderLoad("assessment");
}

}  // namespace
}  // namespace medkoord::e2e::faults
