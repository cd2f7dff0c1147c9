// The feed's settings: defaults, flags and environment, and the values
// refused at start-up (exit code 2 in RunService).

#include "services/shortage/service_parts.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace medkoord::shortage {
namespace {

using ::testing::HasSubstr;

absl::StatusOr<FeedSettings> Read(std::vector<std::string> flags, std::map<std::string, std::string> env = {}) {
  Config config(std::move(flags), std::move(env));
  absl::StatusOr<FeedSettings> settings = ReadFeedSettings(config);
  absl::Status finished = config.Finish();
  if (!finished.ok()) return finished;
  return settings;
}

TEST(FeedSettingsTest, DefaultsKeepNinetyDaysAndPruneHourly) {
  absl::StatusOr<FeedSettings> s = Read({});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->retention.retention, absl::Hours(90 * 24));
  EXPECT_EQ(s->retention.interval, absl::Hours(1));
  EXPECT_EQ(s->hub.max_lag, 8192);
  EXPECT_GE(s->hub.ring_capacity, 8192u);
}

TEST(FeedSettingsTest, FlagsAndEnvironment) {
  absl::StatusOr<FeedSettings> s =
      Read({"--feed_retention=720h", "--feed_max_lag=20000"}, {{"MEDKOORD_FEED_PRUNE_INTERVAL", "10m"}});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->retention.retention, absl::Hours(720));
  EXPECT_EQ(s->retention.interval, absl::Minutes(10));
  EXPECT_EQ(s->hub.max_lag, 20000);
  EXPECT_EQ(s->hub.ring_capacity, 20000u) << "the ring holds at least the allowed lag";
}

TEST(FeedSettingsTest, InfiniteRetentionKeepsEverything) {
  absl::StatusOr<FeedSettings> s = Read({"--feed_retention=inf"});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->retention.retention, absl::InfiniteDuration());
}

TEST(FeedSettingsTest, OutOfRangeValuesAreAllNamedAtOnce) {
  absl::StatusOr<FeedSettings> s = Read({"--feed_retention=30m", "--feed_max_lag=0", "--feed_prune_interval=0s"});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.status().message(), HasSubstr("--feed_retention must be at least 1h"));
  EXPECT_THAT(s.status().message(), HasSubstr("--feed_max_lag must be at least 1"));
  EXPECT_THAT(s.status().message(), HasSubstr("--feed_prune_interval must be at least 1s"));
}

TEST(FeedSettingsTest, MalformedDurationIsAConfigProblem) {
  absl::StatusOr<FeedSettings> s = Read({"--feed_retention=90"});
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.status().message(), HasSubstr("feed_retention"));
}

}  // namespace
}  // namespace medkoord::shortage
