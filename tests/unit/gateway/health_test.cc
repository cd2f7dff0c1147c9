// The gateway's own health Check (health.h), read back with the generated
// grpc.health.v1 messages.
#include <gtest/gtest.h>

#include "grpc/health/v1/health.pb.h"
#include "services/gateway/health.h"

namespace medkoord::gateway {
namespace {

using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;

HealthCheckResponse::ServingStatus StatusOf(const HealthService& health, const std::string& service) {
  HealthCheckRequest req;
  req.set_service(service);
  auto bytes = health.Check(req.SerializeAsString());
  EXPECT_TRUE(bytes.ok()) << bytes.status();
  HealthCheckResponse resp;
  EXPECT_TRUE(resp.ParseFromString(bytes.value_or("")));
  return resp.status();
}

TEST(HealthServiceTest, AnswersTheGatewaysStatusAndNotFoundForNamedServices) {
  HealthService health;
  EXPECT_EQ(StatusOf(health, ""), HealthCheckResponse::NOT_SERVING);
  health.SetServing(true);
  EXPECT_EQ(StatusOf(health, ""), HealthCheckResponse::SERVING);
  health.SetServing(false);
  EXPECT_EQ(StatusOf(health, ""), HealthCheckResponse::NOT_SERVING);

  HealthCheckRequest named;
  named.set_service("medkoord.intake.v1.Intake");
  EXPECT_EQ(health.Check(named.SerializeAsString()).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(health.Check(std::string("\x0a\x09" "ab", 4)).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(HealthServiceTest, WatchStatusesAndShutdown) {
  HealthService health;
  health.SetServing(true);
  EXPECT_EQ(health.StatusOf(""), HealthService::kServing);
  EXPECT_EQ(health.StatusOf("medkoord.intake.v1.Intake"), HealthService::kServiceUnknown);
  HealthCheckResponse resp;
  ASSERT_TRUE(resp.ParseFromString(HealthService::Response(HealthService::kServiceUnknown)));
  EXPECT_EQ(resp.status(), HealthCheckResponse::SERVICE_UNKNOWN);
  EXPECT_FALSE(health.shutting_down());
  health.Shutdown();
  EXPECT_TRUE(health.shutting_down());
  EXPECT_EQ(health.StatusOf(""), HealthService::kNotServing);
}

}  // namespace
}  // namespace medkoord::gateway
