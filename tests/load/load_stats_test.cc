#include "tests/load/load_stats.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace medkoord::load {
namespace {

TEST(LatencyHistogramTest, EmptyHasZeroQuantiles) {
  LatencyHistogram h;
  EXPECT_EQ(h.Count(), 0);
  EXPECT_EQ(h.Quantile(0.5), absl::ZeroDuration());
  EXPECT_EQ(h.Max(), absl::ZeroDuration());
}

TEST(LatencyHistogramTest, QuantilesWithinTwoPercent) {
  LatencyHistogram h;
  // 1 ms .. 1000 ms, one each: p50 is 500 ms, p99 990 ms.
  for (int ms = 1; ms <= 1000; ++ms) h.Record(absl::Milliseconds(ms));
  EXPECT_EQ(h.Count(), 1000);
  const double p50 = absl::ToDoubleMilliseconds(h.Quantile(0.5));
  const double p99 = absl::ToDoubleMilliseconds(h.Quantile(0.99));
  EXPECT_GE(p50, 500);
  EXPECT_LE(p50, 500 * 1.02);
  EXPECT_GE(p99, 990);
  EXPECT_LE(p99, 990 * 1.02);
  EXPECT_EQ(h.Quantile(1.0), absl::Milliseconds(1000));
  EXPECT_EQ(h.Max(), absl::Milliseconds(1000));
}

TEST(LatencyHistogramTest, BucketBoundsHoldTheirValues) {
  for (int64_t us : {0, 1, 2, 3, 7, 50, 51, 999, 1000, 123456, 99999999}) {
    const int b = LatencyHistogram::BucketOf(us);
    EXPECT_GE(LatencyHistogram::UpperBoundMicros(b), us) << us;
    if (b > 0) {
      EXPECT_LT(LatencyHistogram::UpperBoundMicros(b - 1), us) << us;
    }
  }
}

TEST(LatencyHistogramTest, ConcurrentRecordsAreAllCounted) {
  LatencyHistogram h;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&h, t] {
      for (int i = 0; i < 10000; ++i) h.Record(absl::Microseconds(100 + t));
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(h.Count(), 40000);
  EXPECT_EQ(h.Max(), absl::Microseconds(103));
}

TEST(WeightedChoiceTest, PicksInProportionAndNeverZeroWeights) {
  WeightedChoice c({3, 0, 1});
  std::vector<int> counts(3, 0);
  for (int i = 0; i < 4000; ++i) ++counts[c.Pick((i + 0.5) / 4000.0)];
  EXPECT_EQ(counts[0], 3000);
  EXPECT_EQ(counts[1], 0);
  EXPECT_EQ(counts[2], 1000);
  EXPECT_EQ(c.Pick(0.0), 0);
  EXPECT_EQ(c.Pick(0.999999), 2);
  EXPECT_EQ(c.Pick(1.0), 2);
}

TEST(WeightedChoiceTest, AllZeroPicksNothing) { EXPECT_EQ(WeightedChoice({0, 0}).Pick(0.5), -1); }

TEST(ParseVmRssTest, ReadsTheKernelsLine) {
  const char* status =
      "Name:\tintake\nUmask:\t0022\nVmPeak:\t  812344 kB\nVmRSS:\t   45872 kB\nRssAnon:\t   30000 kB\n";
  EXPECT_EQ(ParseVmRssKib(status), 45872);
  EXPECT_EQ(ParseVmRssKib("Name:\tkthreadd\nState:\tS\n"), std::nullopt);
  EXPECT_EQ(ParseVmRssKib("VmRSS:\t kB\n"), std::nullopt);
  EXPECT_EQ(ParseVmRssKib(""), std::nullopt);
}

std::vector<RssSample> Samples(absl::Duration length, int64_t start_kib, int64_t kib_per_minute) {
  std::vector<RssSample> out;
  for (absl::Duration at = absl::ZeroDuration(); at <= length; at += absl::Seconds(10)) {
    out.push_back({at, start_kib + static_cast<int64_t>(kib_per_minute * absl::ToDoubleMinutes(at))});
  }
  return out;
}

TEST(JudgeRssTest, FlatRunPasses) {
  const RssVerdict v = JudgeRss(Samples(absl::Minutes(10), 50000, 0), absl::Minutes(10), 16384, 0.2);
  EXPECT_TRUE(v.enough_samples);
  EXPECT_TRUE(v.flat);
  EXPECT_EQ(v.first_minute_kib, 50000);
  EXPECT_EQ(v.last_minute_kib, 50000);
  EXPECT_EQ(v.allowed_growth_kib, 16384);  // 20 % of 50,000 is less than 16 MiB
  EXPECT_NEAR(v.growth_kib_per_minute, 0, 1e-6);
}

TEST(JudgeRssTest, SteadyLeakFails) {
  // 4 MiB a minute: 36 MiB more in the last minute than in the first.
  const RssVerdict v = JudgeRss(Samples(absl::Minutes(10), 50000, 4096), absl::Minutes(10), 16384, 0.2);
  EXPECT_FALSE(v.flat);
  EXPECT_NEAR(v.growth_kib_per_minute, 4096, 1);
  EXPECT_GT(v.last_minute_kib - v.first_minute_kib, v.allowed_growth_kib);
  EXPECT_EQ(v.peak_kib, 50000 + 40960);
}

TEST(JudgeRssTest, FractionBoundForLargeProcesses) {
  // 400 MiB process: 20 % allows 80 MiB, so 30 MiB of growth passes.
  std::vector<RssSample> s = Samples(absl::Minutes(10), 409600, 0);
  for (auto& x : s) {
    if (x.at >= absl::Minutes(9)) x.kib += 30720;
  }
  const RssVerdict v = JudgeRss(s, absl::Minutes(10), 16384, 0.2);
  EXPECT_EQ(v.allowed_growth_kib, 81920);
  EXPECT_TRUE(v.flat);
}

TEST(JudgeRssTest, ShortRunIsNotJudged) {
  const RssVerdict v = JudgeRss(Samples(absl::Seconds(90), 50000, 100000), absl::Seconds(90), 16384, 0.2);
  EXPECT_FALSE(v.enough_samples);
  EXPECT_TRUE(v.flat);
}

}  // namespace
}  // namespace medkoord::load
