#include "common/log.h"

#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "nlohmann/json.hpp"

namespace medkoord::log {
namespace {

// The line written by `write`, without its timestamp (which differs from
// one line to the next).
template <typename Fn>
std::string LineWithoutTs(Fn write) {
  ::testing::internal::CaptureStderr();
  write();
  std::string line = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(line.back(), '\n');
  EXPECT_EQ(line.find('\n'), line.size() - 1) << "one line";
  const size_t ts = line.find(",\"ts\":\"");
  EXPECT_NE(ts, std::string::npos) << line;
  const size_t end = line.find('"', ts + 7);
  // The timestamp has the writer's format: 2026-11-24T23:59:59.123456Z.
  EXPECT_EQ(end - (ts + 7), 27u) << line;
  return line.erase(ts, end + 1 - ts);
}

std::string InfoLine(std::string_view method, std::string_view code, double latency_ms, std::string_view request_id,
                     std::string_view principal, std::string_view traceparent) {
  return LineWithoutTs([&] {
    ScopedTrace trace{std::string(traceparent)};
    Info("rpc", {{"method", method},
                 {"code", code},
                 {"latency_ms", latency_ms},
                 {"request_id", request_id},
                 {"principal", principal}});
  });
}

std::string FastLine(std::string_view method, std::string_view code, double latency_ms, std::string_view request_id,
                     std::string_view principal, std::string_view traceparent) {
  return LineWithoutTs([&] { RpcLine(method, code, latency_ms, request_id, principal, traceparent); });
}

TEST(LogTest, RpcLineIsTheLineInfoWrites) {
  Init("intake");
  const struct {
    std::string method, code;
    double latency_ms;
    std::string request_id, principal, traceparent;
  } cases[] = {
      {"/medkoord.intake.v1.Intake/SubmitApplication", "OK", 1.234567, "req-1", "region:syddanmark",
       "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
      {"/medkoord.intake.v1.Intake/GetApplication", "NOT_FOUND", 0.1, "", "", ""},
      {"/m", "UNAUTHENTICATED", 2.0, "a \"quoted\" \\ id\twith\ncontrol\x01\x1f chars", "", ""},
      {"/m", "OK", 1e-7, "ÆØÅ æøå", "valid UTF-8", ""},
      {"/m", "OK", 12345.678, std::string("bad \xff\xfe UTF-8"), "x", "tp"},
  };
  for (const auto& c : cases) {
    const std::string expected = InfoLine(c.method, c.code, c.latency_ms, c.request_id, c.principal, c.traceparent);
    EXPECT_EQ(FastLine(c.method, c.code, c.latency_ms, c.request_id, c.principal, c.traceparent), expected);
    // And it is JSON with the fields given.
    const nlohmann::json j = nlohmann::json::parse(expected);
    EXPECT_EQ(j["msg"], "rpc");
    EXPECT_EQ(j["service"], "intake");
    EXPECT_EQ(j["method"], c.method);
    EXPECT_EQ(j.contains("traceparent"), !c.traceparent.empty());
  }
}

TEST(LogTest, RpcLineFollowsTheMinimumLevel) {
  Init("intake", Level::kWarning);
  ::testing::internal::CaptureStderr();
  RpcLine("/m", "OK", 1, "r", "p", "");
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
  Init("intake");
}

}  // namespace
}  // namespace medkoord::log
