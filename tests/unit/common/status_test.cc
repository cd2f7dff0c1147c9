#include "common/status.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"

namespace medkoord {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

TEST(FieldViolationsTest, EmptyIsOk) { EXPECT_TRUE(FieldViolations().ToStatus().ok()); }

TEST(FieldViolationsTest, ReportsEveryFieldAtOnce) {
  FieldViolations v;
  v.Add("application.atc_code", "must be a 7-character ATC code");
  v.Add("application.region", "is required");
  absl::Status s = v.ToStatus();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("application.atc_code"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("application.region"));
  EXPECT_THAT(FieldViolationsOf(s), ElementsAre(Pair("application.atc_code", "must be a 7-character ATC code"),
                                                Pair("application.region", "is required")));
}

TEST(ToGrpcStatusTest, PacksBadRequestIntoStatusDetails) {
  grpc::Status g = ToGrpcStatus(InvalidField("rows[17].index_date", "is not a date"));
  EXPECT_EQ(g.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  google::rpc::Status details;
  ASSERT_TRUE(details.ParseFromString(g.error_details()));
  EXPECT_EQ(details.code(), 3);
  ASSERT_EQ(details.details_size(), 1);
  EXPECT_EQ(details.details(0).type_url(), kBadRequestTypeUrl);
  google::rpc::BadRequest bad;
  ASSERT_TRUE(bad.ParseFromString(details.details(0).value()));
  ASSERT_EQ(bad.field_violations_size(), 1);
  EXPECT_EQ(bad.field_violations(0).field(), "rows[17].index_date");
}

TEST(ToGrpcStatusTest, MapsCodesOneToOne) {
  EXPECT_TRUE(ToGrpcStatus(absl::OkStatus()).ok());
  EXPECT_EQ(ToGrpcStatus(absl::NotFoundError("x")).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(ToGrpcStatus(absl::FailedPreconditionError("x")).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(ToGrpcStatus(absl::PermissionDeniedError("x")).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(ToGrpcStatus(absl::UnauthenticatedError("x")).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(ToGrpcStatus(absl::NotFoundError("x")).error_details().empty());
}

TEST(FromGrpcStatusTest, RoundTripsViolationsAndRetryInfo) {
  FieldViolations v;
  v.Add("a", "x");
  v.Add("b", "y");
  absl::Status back = FromGrpcStatus(ToGrpcStatus(v.ToStatus()));
  EXPECT_EQ(back.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(FieldViolationsOf(back), ElementsAre(Pair("a", "x"), Pair("b", "y")));

  absl::Status limited = FromGrpcStatus(ToGrpcStatus(ResourceExhaustedRetryAfter("slow down", absl::Milliseconds(1500))));
  EXPECT_EQ(limited.code(), absl::StatusCode::kResourceExhausted);
  auto payload = limited.GetPayload(kRetryInfoTypeUrl);
  ASSERT_TRUE(payload.has_value());
  google::rpc::RetryInfo info;
  ASSERT_TRUE(info.ParseFromString(std::string(*payload)));
  EXPECT_EQ(info.retry_delay().seconds(), 1);
  EXPECT_EQ(info.retry_delay().nanos(), 500000000);
}

absl::StatusOr<int> Half(int x) {
  if (x % 2 != 0) return absl::InvalidArgumentError("odd");
  return x / 2;
}

absl::StatusOr<int> Quarter(int x) {
  ASSIGN_OR_RETURN(int h, Half(x));
  ASSIGN_OR_RETURN(int q, Half(h));
  return q;
}

absl::Status CheckEven(int x) {
  RETURN_IF_ERROR(Half(x).status());
  return absl::OkStatus();
}

TEST(StatusMacrosTest, PropagateErrors) {
  EXPECT_EQ(*Quarter(8), 2);
  EXPECT_EQ(Quarter(6).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(CheckEven(2).ok());
  EXPECT_FALSE(CheckEven(3).ok());
}

}  // namespace
}  // namespace medkoord
