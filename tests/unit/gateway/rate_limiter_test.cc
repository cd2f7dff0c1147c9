#include "services/gateway/rate_limiter.h"

#include <gtest/gtest.h>

#include "google/rpc/error_details.pb.h"
#include "common/status.h"

namespace medkoord::gateway {
namespace {

TEST(RateLimiterTest, AllowsBurstThenRefusesWithRetryInfo) {
  FakeClock clock(absl::FromUnixSeconds(1700000000));
  RateLimiter limiter(/*rate_per_second=*/10, /*burst=*/3, &clock);
  EXPECT_TRUE(limiter.Acquire("a").ok());
  EXPECT_TRUE(limiter.Acquire("a").ok());
  EXPECT_TRUE(limiter.Acquire("a").ok());
  absl::Status refused = limiter.Acquire("a");
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted);
  auto payload = refused.GetPayload(kRetryInfoTypeUrl);
  ASSERT_TRUE(payload.has_value());
  google::rpc::RetryInfo info;
  ASSERT_TRUE(info.ParseFromString(std::string(*payload)));
  // One token every 100 ms.
  EXPECT_EQ(info.retry_delay().seconds(), 0);
  EXPECT_EQ(info.retry_delay().nanos(), 100 * 1000 * 1000);
}

TEST(RateLimiterTest, RefillsWithTimeAndKeepsPrincipalsApart) {
  FakeClock clock(absl::FromUnixSeconds(1700000000));
  RateLimiter limiter(2, 1, &clock);
  EXPECT_TRUE(limiter.Acquire("a").ok());
  EXPECT_FALSE(limiter.Acquire("a").ok());
  EXPECT_TRUE(limiter.Acquire("b").ok());  // b has its own bucket
  clock.Advance(absl::Milliseconds(499));
  EXPECT_FALSE(limiter.Acquire("a").ok());
  clock.Advance(absl::Milliseconds(1));
  EXPECT_TRUE(limiter.Acquire("a").ok());
  // A long pause does not save up more than the burst.
  clock.Advance(absl::Hours(1));
  EXPECT_TRUE(limiter.Acquire("a").ok());
  EXPECT_FALSE(limiter.Acquire("a").ok());
}

TEST(RateLimiterTest, ZeroRateDisablesTheLimit) {
  FakeClock clock(absl::FromUnixSeconds(1700000000));
  RateLimiter limiter(0, 1, &clock);
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(limiter.Acquire("a").ok());
}

}  // namespace
}  // namespace medkoord::gateway
