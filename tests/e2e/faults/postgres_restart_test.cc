// PostgreSQL stopped (fast shutdown) and started again under a submission
// load: every process's gRPC health says NOT_SERVING while the database is
// down, and SERVING again by itself within 5 s once it is back; no
// acknowledged write is lost or duplicated.

#include <cstdio>
#include <map>

#include <gtest/gtest.h>

#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "tests/e2e/e2e_util.h"
#include "tests/e2e/faults/fault_load.h"
#include "tests/e2e/suite.h"

namespace medkoord::e2e::faults {
namespace {

const char* const kProcesses[] = {"intake", "assessment", "shortage", "rwd", "gateway"};

// Polls every process's health until each has reported `wanted` once (it
// stays there while the database state does not change), or `timeout`.
// Returns, per process, the time from `since` to that report.
std::map<std::string, absl::Duration> AwaitHealth(const std::map<std::string, std::shared_ptr<grpc::Channel>>& channels,
                                                  Health wanted, absl::Time since, absl::Duration timeout,
                                                  std::map<std::string, Health>* last) {
  std::map<std::string, absl::Duration> reached;
  const absl::Time until = absl::Now() + timeout;
  while (reached.size() < channels.size() && absl::Now() < until) {
    for (const auto& [name, channel] : channels) {
      if (reached.count(name)) continue;
      const Health h = CheckHealth(*channel, absl::Seconds(1));
      (*last)[name] = h;
      if (h == wanted) reached[name] = absl::Now() - since;
    }
    absl::SleepFor(absl::Milliseconds(20));  // polling a condition, with a deadline
  }
  return reached;
}

class PostgresRestartTest : public FaultTest {};

TEST_F(PostgresRestartTest, ServicesAreNotServingWhileDownAndRecoverWithinFiveSecondsLosingNothing) {
  auto suite = StartFaultSuite({.private_postgres = true});
  ASSERT_TRUE(suite.ok()) << suite.status();
  auto clients = RegionalClients(**suite);
  ASSERT_TRUE(clients.ok()) << clients.status();
  auto forum = (*suite)->CreateKey("forum-member", "forum_member");
  ASSERT_TRUE(forum.ok()) << forum.status();

  // Health straight from each process's own port, as a readiness probe asks.
  std::map<std::string, std::shared_ptr<grpc::Channel>> channels;
  for (const char* name : kProcesses) {
    channels[name] = std::string(name) == "gateway"
                         ? (*suite)->GatewayChannel()
                         : grpc::CreateChannel((*suite)->service_addr(name), grpc::InsecureChannelCredentials());
    ASSERT_EQ(CheckHealth(*channels[name], absl::Seconds(5)), Health::kServing) << name;
  }

  SubmissionLoad load((*suite)->GatewayChannel(), *clients, "pg-restart");
  load.Start();
  ASSERT_TRUE(load.AwaitAcknowledged(10, absl::Seconds(60))) << absl::StrJoin(load.stats().failures, "\n");

  absl::Status stopped = (*suite)->postgres().StopServer();
  ASSERT_TRUE(stopped.ok()) << stopped;
  const absl::Time down_at = absl::Now();
  const int acked_at_stop = load.stats().acknowledged;
  std::map<std::string, Health> last;
  const auto not_serving = AwaitHealth(channels, Health::kNotServing, down_at, absl::Seconds(20), &last);
  for (const char* name : kProcesses) {
    EXPECT_TRUE(not_serving.count(name)) << name << " never NOT_SERVING while PostgreSQL was down; last "
                                         << HealthName(last[name]);
  }
  const int acked_while_down = load.stats().acknowledged - acked_at_stop;

  absl::Status started = (*suite)->postgres().StartServer();
  ASSERT_TRUE(started.ok()) << started;
  const absl::Time back_at = absl::Now();
  // Wait longer than the 5 s allowed, so that a slow recovery is measured.
  const auto serving = AwaitHealth(channels, Health::kServing, back_at, absl::Seconds(30), &last);
  for (const char* name : kProcesses) {
    ASSERT_TRUE(serving.count(name)) << name << " not SERVING within 30 s after PostgreSQL was back; last "
                                     << HealthName(last[name]);
    EXPECT_LE(serving.at(name), absl::Seconds(5)) << name;
    std::printf("[ figures ] %-10s NOT_SERVING %6.0fms after PostgreSQL stopped, SERVING %6.0fms after it was back\n",
                name, absl::ToDoubleMilliseconds(not_serving.count(name) ? not_serving.at(name) : absl::ZeroDuration()),
                absl::ToDoubleMilliseconds(serving.at(name)));
  }

  ASSERT_TRUE(load.AwaitAcknowledged(load.MinAcknowledged() + 10, absl::Seconds(60)))
      << absl::StrJoin(load.stats().failures, "\n");
  load.Stop();
  const SubmissionLoad::Stats stats = load.stats();
  EXPECT_TRUE(stats.failures.empty()) << absl::StrJoin(stats.failures, "\n");
  EXPECT_GT(stats.retried, 0) << "no submission met the outage";
  std::printf("[ figures ] PostgreSQL down %.0fms; acknowledged %d (%d while down); calls %d; retried submissions %d; "
              "most calls for one submission %d\n",
              absl::ToDoubleMilliseconds(back_at - down_at), stats.acknowledged, acked_while_down, stats.attempts,
              stats.retried, stats.max_attempts);
  ExpectExactlyOnce(**suite, load.acknowledged(), *forum, absl::Seconds(60));
}

}  // namespace
}  // namespace medkoord::e2e::faults
