#include "common/metrics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace medkoord::metrics {
namespace {

using ::testing::HasSubstr;

TEST(RegistryTest, RendersPrometheusText) {
  Registry r;
  r.GetCounter("calls_total", "Calls", {{"method", "Get"}, {"code", "OK"}}).Inc(3);
  r.GetCounter("calls_total", "Calls", {{"method", "Get"}, {"code", "OK"}}).Inc();
  r.GetGauge("pending", "Pending").Set(7);
  r.AddCallbackGauge("pool_in_use", "In use", {{"service", "intake"}}, [] { return 2.0; });
  auto& h = r.GetHistogram("latency_seconds", "Latency", {}, {0.1, 1});
  h.Observe(0.05);
  h.Observe(0.5);
  h.Observe(5);
  const std::string text = r.Render();
  EXPECT_THAT(text, HasSubstr("# TYPE calls_total counter\n"));
  EXPECT_THAT(text, HasSubstr("calls_total{code=\"OK\",method=\"Get\"} 4\n"));
  EXPECT_THAT(text, HasSubstr("pending 7\n"));
  EXPECT_THAT(text, HasSubstr("pool_in_use{service=\"intake\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("latency_seconds_bucket{le=\"0.1\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("latency_seconds_bucket{le=\"1\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("latency_seconds_bucket{le=\"+Inf\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("latency_seconds_count 3\n"));
}

TEST(RegistryTest, EscapesLabelValues) {
  Registry r;
  r.GetCounter("x_total", "X", {{"v", "a\"b\\c"}}).Inc();
  EXPECT_THAT(r.Render(), HasSubstr("x_total{v=\"a\\\"b\\\\c\"} 1"));
}

}  // namespace
}  // namespace medkoord::metrics
