#include <gtest/gtest.h>

#include "medkoord/intake/v1/intake.pb.h"
#include "tools/medkoord/cli.h"

namespace medkoord::cli {
namespace {

TEST(CliArgsTest, ParsesFlagsAndPositionals) {
  auto a = ParseArgs({"report", "annual", "--year", "2024", "--json", "--addr=h:1", "--", "--literal"});
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->positional, (std::vector<std::string>{"report", "annual", "--literal"}));
  EXPECT_EQ(a->Get("year"), "2024");
  EXPECT_TRUE(a->Bool("json"));
  EXPECT_EQ(a->Get("addr"), "h:1");
  EXPECT_FALSE(ParseArgs({"--year"}).ok());
}

TEST(CliArgsTest, SetsFieldsByPathWithExportFormatValues) {
  medkoord::intake::v1::SubmitApplicationRequest req;
  ASSERT_TRUE(SetField(&req, "application.region", "syddanmark").ok());
  ASSERT_TRUE(SetField(&req, "application.submitted-on", "2024-03-05").ok());
  ASSERT_TRUE(SetField(&req, "application.cancer", "yes").ok());
  ASSERT_TRUE(SetField(&req, "application.medicinraadet_status", "not_assessed").ok());
  EXPECT_EQ(req.application().region(), medkoord::common::v1::REGION_SYDDANMARK);
  EXPECT_EQ(req.application().submitted_on().day(), 5);
  EXPECT_TRUE(req.application().cancer());
  EXPECT_EQ(req.application().medicinraadet_status(), medkoord::intake::v1::MEDICINRAADET_STATUS_NOT_ASSESSED);
  EXPECT_FALSE(SetField(&req, "application.region", "jylland").ok());
  EXPECT_FALSE(SetField(&req, "application.submitted_on", "2024-13-01").ok());
  EXPECT_FALSE(SetField(&req, "application.nope", "x").ok());
}

TEST(CliArgsTest, ExitCodesSeparateUsageDenialAndServerErrors) {
  EXPECT_EQ(ExitCodeFor(grpc::StatusCode::OK), 0);
  EXPECT_EQ(ExitCodeFor(grpc::StatusCode::PERMISSION_DENIED), kDenied);
  EXPECT_EQ(ExitCodeFor(grpc::StatusCode::UNAUTHENTICATED), kDenied);
  EXPECT_EQ(ExitCodeFor(grpc::StatusCode::UNAVAILABLE), kServerError);
  EXPECT_EQ(ExitCodeFor(grpc::StatusCode::INTERNAL), kServerError);
  EXPECT_EQ(ExitCodeFor(grpc::StatusCode::INVALID_ARGUMENT), kRejected);
  EXPECT_EQ(Kebab("ListApplications"), "list-applications");
}

}  // namespace
}  // namespace medkoord::cli
