#include "common/config.h"

#include <cstdio>
#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/service_main.h"

namespace medkoord {
namespace {

using ::testing::HasSubstr;

TEST(ConfigTest, FlagsWinOverEnvironment) {
  Config c({"--listen=0.0.0.0:1", "--db_pool_size", "4"},
           {{"MEDKOORD_LISTEN", "127.0.0.1:2"}, {"MEDKOORD_DB_URL", "postgresql://x"}});
  EXPECT_EQ(c.String("listen"), "0.0.0.0:1");
  EXPECT_EQ(c.String("db_url"), "postgresql://x");
  EXPECT_EQ(c.Int("db_pool_size", 8), 4);
  EXPECT_EQ(c.Int("max_threads", 128), 128);
  EXPECT_TRUE(c.Finish().ok());
}

TEST(ConfigTest, ReportsEveryBadSettingByName) {
  Config c({"--db_pool_size=lots", "--shutdown_grace=soon", "--typo=1"}, {});
  c.String("db_url");
  c.Int("db_pool_size", 8);
  c.Duration("shutdown_grace", absl::Seconds(1));
  absl::Status s = c.Finish();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  const std::string msg(s.message());
  EXPECT_THAT(msg, HasSubstr("--db_url / MEDKOORD_DB_URL is required"));
  EXPECT_THAT(msg, HasSubstr("MEDKOORD_DB_POOL_SIZE must be an integer"));
  EXPECT_THAT(msg, HasSubstr("MEDKOORD_SHUTDOWN_GRACE must be a duration"));
  EXPECT_THAT(msg, HasSubstr("unknown setting --typo"));
  EXPECT_EQ(msg.find('\n'), std::string::npos) << "one line";
}

TEST(ConfigTest, PoolSettingsDefaultsFlagsAndEnvironment) {
  Config defaults({}, {{"MEDKOORD_DB_URL", "postgresql://x"}});
  db::PoolOptions d = ReadPoolSettings(defaults);
  EXPECT_TRUE(defaults.Finish().ok());
  EXPECT_EQ(d.url, "postgresql://x");
  EXPECT_EQ(d.size, 8);
  EXPECT_EQ(d.statement_timeout, absl::Seconds(60));

  Config set({"--db_url=postgresql://y", "--db_pool_size=3"}, {{"MEDKOORD_DB_STATEMENT_TIMEOUT", "0s"}});
  db::PoolOptions s = ReadPoolSettings(set);
  EXPECT_TRUE(set.Finish().ok());
  EXPECT_EQ(s.url, "postgresql://y");
  EXPECT_EQ(s.size, 3);
  EXPECT_EQ(s.statement_timeout, absl::ZeroDuration());  // none

  Config bad({"--db_url=postgresql://z", "--db_statement_timeout=-5s"}, {});
  (void)ReadPoolSettings(bad);
  absl::Status status = bad.Finish();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(status.message()), HasSubstr("MEDKOORD_DB_STATEMENT_TIMEOUT must be a duration"));
}

TEST(ConfigTest, SecretFromFileOrEnvironmentButNeverAFlag) {
  std::string path = ::testing::TempDir() + "/secret.key";
  std::ofstream(path) << "s3cret-value\n";
  Config from_file({"--principal_key_file=" + path}, {});
  EXPECT_EQ(from_file.Secret("principal_key"), "s3cret-value");
  EXPECT_TRUE(from_file.Finish().ok());

  Config from_env({}, {{"MEDKOORD_PRINCIPAL_KEY", "abc"}});
  EXPECT_EQ(from_env.Secret("principal_key"), "abc");
  EXPECT_TRUE(from_env.Finish().ok());

  Config from_flag({"--principal_key=abc"}, {});
  EXPECT_EQ(from_flag.Secret("principal_key"), "");
  EXPECT_THAT(std::string(from_flag.Finish().message()), HasSubstr("is a secret"));

  Config missing({}, {});
  missing.Secret("principal_key");
  EXPECT_THAT(std::string(missing.Finish().message()), HasSubstr("MEDKOORD_PRINCIPAL_KEY"));

  Config unreadable({"--principal_key_file=/nonexistent/key"}, {});
  unreadable.Secret("principal_key");
  EXPECT_THAT(std::string(unreadable.Finish().message()), HasSubstr("cannot be read"));
}

TEST(ConfigTest, BoolsAndDurations) {
  Config c({"--tls", "--grace=250ms"}, {{"MEDKOORD_DEBUG", "false"}});
  EXPECT_TRUE(c.Bool("tls", false));
  EXPECT_FALSE(c.Bool("debug", true));
  EXPECT_EQ(c.Duration("grace"), absl::Milliseconds(250));
  EXPECT_TRUE(c.Finish().ok());
}

}  // namespace
}  // namespace medkoord
