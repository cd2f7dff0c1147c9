#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/rwd/rwd_service.h"

namespace medkoord::rwd {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

v1::Protocol Valid() {
  v1::Protocol p;
  p.set_title("t");
  p.set_medicine("m");
  p.set_regimen("r");
  p.set_population("adults");
  p.mutable_intervention()->set_label("new");
  p.mutable_comparator()->set_label("old");
  p.add_endpoints()->set_endpoint(v1::ENDPOINT_OS);
  p.mutable_recommendation_date()->set_year(2025);
  p.mutable_recommendation_date()->set_month(5);
  p.mutable_recommendation_date()->set_day(21);
  p.set_recommendation_status(v1::RECOMMENDATION_STATUS_STANDARD);
  auto* b = p.add_benchmarks();
  b->set_trial("T");
  b->set_endpoint(v1::ENDPOINT_OS);
  b->set_hazard_ratio(0.5);
  b->set_hr_lower(0.4);
  b->set_hr_upper(0.6);
  b->set_source("S");
  b->set_data_cut("primary analysis");
  return p;
}

TEST(ValidateProtocolTest, AValidProtocolPasses) {
  EXPECT_TRUE(ValidateProtocol("pilot-3", Valid()).ok());
}

TEST(ValidateProtocolTest, ConditionalNeedsALaterReEvaluation) {
  v1::Protocol p = Valid();
  p.set_recommendation_status(v1::RECOMMENDATION_STATUS_CONDITIONAL);
  EXPECT_THAT(std::string(ValidateProtocol("pilot-3", p).message()),
              HasSubstr("protocol.re_evaluation_date: required"));
  *p.mutable_re_evaluation_date() = p.recommendation_date();
  EXPECT_THAT(std::string(ValidateProtocol("pilot-3", p).message()), HasSubstr("after the recommendation"));
  p.mutable_re_evaluation_date()->set_year(2027);
  EXPECT_TRUE(ValidateProtocol("pilot-3", p).ok());
}

TEST(ValidateProtocolTest, EveryBadFieldAtOnce) {
  v1::Protocol p = Valid();
  p.mutable_comparator()->set_label("new");
  p.mutable_recommendation_date()->set_month(13);
  p.mutable_benchmarks(0)->set_hr_lower(0.55);  // above the estimate
  p.mutable_benchmarks(0)->clear_source();
  absl::Status s = ValidateProtocol("Pilot 3", p);
  std::string m(s.message());
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(m, HasSubstr("protocol_id"));
  EXPECT_THAT(m, HasSubstr("protocol.comparator.label"));
  EXPECT_THAT(m, HasSubstr("protocol.recommendation_date"));
  EXPECT_THAT(m, HasSubstr("protocol.benchmarks[0].hr_lower"));
  EXPECT_THAT(m, HasSubstr("protocol.benchmarks[0].source"));
  EXPECT_THAT(m, Not(HasSubstr("protocol.title")));
}

TEST(ParseIdTest, OnlyCanonicalNames) {
  EXPECT_EQ(ParseId("cohorts/17", "cohorts/"), 17);
  EXPECT_EQ(ParseId("cohorts/017", "cohorts/"), std::nullopt);
  EXPECT_EQ(ParseId("cohorts/+17", "cohorts/"), std::nullopt);
  EXPECT_EQ(ParseId("cohorts/0", "cohorts/"), std::nullopt);
  EXPECT_EQ(ParseId("analyses/17", "cohorts/"), std::nullopt);
  EXPECT_EQ(ParseId("cohorts/", "cohorts/"), std::nullopt);
}

}  // namespace
}  // namespace medkoord::rwd
