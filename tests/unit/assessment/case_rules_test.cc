// Lifecycle, authorisation and harmonisation rules of the assessment service.

#include "services/assessment/case_rules.h"

#include <gtest/gtest.h>

#include "common/status.h"

namespace medkoord::assessment {
namespace {

Actor Region(int r) { return {.region = r, .is_region = true}; }
Actor Secretariat() { return {.is_secretariat = true}; }
Actor ForumMember() { return {.is_forum_member = true}; }

TEST(CaseRules, ReadOwnRegionOrForum) {
  EXPECT_TRUE(CheckCanRead(Region(3), 3).ok());
  EXPECT_EQ(CheckCanRead(Region(2), 3).code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(CheckCanRead(Secretariat(), 3).ok());
  EXPECT_TRUE(CheckCanRead(ForumMember(), 3).ok());
  EXPECT_EQ(CheckCanRead(Actor{}, 3).code(), absl::StatusCode::kPermissionDenied);
}

TEST(CaseRules, ChangeOwnRegionOrSecretariatOnBehalf) {
  EXPECT_TRUE(CheckCanChange(Region(3), 3).ok());
  EXPECT_EQ(CheckCanChange(Region(1), 3).code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(CheckCanChange(Secretariat(), 3).ok());
  EXPECT_EQ(CheckCanChange(ForumMember(), 3).code(), absl::StatusCode::kPermissionDenied);
}

TEST(CaseRules, Lifecycle) {
  EXPECT_TRUE(CheckCanAssign(CaseState::kReceived).ok());
  EXPECT_TRUE(CheckCanAssign(CaseState::kUnderAssessment).ok());
  EXPECT_EQ(CheckCanAssign(CaseState::kDecided).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(CheckCanAssign(CaseState::kWithdrawn).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(CheckCanDecide(CaseState::kReceived).ok());
  EXPECT_TRUE(CheckCanDecide(CaseState::kUnderAssessment).ok());
  EXPECT_EQ(CheckCanDecide(CaseState::kDecided).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(CheckCanDecide(CaseState::kWithdrawn).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(CheckCanWithdraw(CaseState::kReceived).ok());
  EXPECT_TRUE(CheckCanWithdraw(CaseState::kWithdrawn).ok());
  EXPECT_EQ(CheckCanWithdraw(CaseState::kDecided).code(), absl::StatusCode::kFailedPrecondition);
}

TEST(CaseRules, DecisionValidationReportsEveryField) {
  const absl::CivilDay submitted(2024, 5, 1), today(2024, 6, 1);
  EXPECT_TRUE(ValidateDecision(DecisionOutcome::kRecommended, "", absl::CivilDay(2024, 5, 1), submitted, today).ok());
  EXPECT_TRUE(ValidateDecision(DecisionOutcome::kNotConcluded, "superseded", today, submitted, today).ok());
  absl::Status s = ValidateDecision(DecisionOutcome::kNotConcluded, "  ", absl::CivilDay(2024, 4, 30), submitted, today);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  auto v = FieldViolationsOf(s);
  ASSERT_EQ(v.size(), 2u);
  EXPECT_EQ(v[0].first, "reason");
  EXPECT_EQ(v[1].first, "decided_on");
  s = ValidateDecision(DecisionOutcome::kNone, std::string(2001, 'x'), absl::CivilDay(2024, 6, 2), submitted, today);
  v = FieldViolationsOf(s);
  ASSERT_EQ(v.size(), 3u);
  EXPECT_EQ(v[0].first, "outcome");
  EXPECT_EQ(v[1].first, "reason");
  EXPECT_EQ(v[2].first, "decided_on");
}

TEST(Practice, NoPrecedentsNoPractice) {
  PracticeVerdict v = JudgePractice({}, DecisionOutcome::kRecommended);
  EXPECT_EQ(v.practice, DecisionOutcome::kNone);
  EXPECT_FALSE(v.departs);
}

TEST(Practice, MajorityIsPracticeAndDepartureIsFlagged) {
  OutcomeTally t{.recommended = 7, .not_recommended = 3, .not_concluded = 10};
  PracticeVerdict v = JudgePractice(t, DecisionOutcome::kNotRecommended);
  EXPECT_EQ(v.practice, DecisionOutcome::kRecommended);
  EXPECT_DOUBLE_EQ(v.share, 0.7);
  EXPECT_TRUE(v.departs);
  EXPECT_FALSE(JudgePractice(t, DecisionOutcome::kRecommended).departs);
  // Not concluded is not an assessment: it never departs.
  EXPECT_FALSE(JudgePractice(t, DecisionOutcome::kNotConcluded).departs);
  EXPECT_FALSE(JudgePractice(t, DecisionOutcome::kNone).departs);
  OutcomeTally n{.recommended = 1, .not_recommended = 4};
  v = JudgePractice(n, DecisionOutcome::kRecommended);
  EXPECT_EQ(v.practice, DecisionOutcome::kNotRecommended);
  EXPECT_DOUBLE_EQ(v.share, 0.8);
  EXPECT_TRUE(v.departs);
}

TEST(Practice, EvenSplitIsNoSettledPractice) {
  OutcomeTally t{.recommended = 2, .not_recommended = 2};
  PracticeVerdict v = JudgePractice(t, DecisionOutcome::kNotRecommended);
  EXPECT_EQ(v.practice, DecisionOutcome::kNone);
  EXPECT_FALSE(v.departs);
}

TEST(Practice, TallyCounts) {
  OutcomeTally t;
  t.Add(DecisionOutcome::kRecommended);
  t.Add(DecisionOutcome::kNotConcluded, 4);
  t.Add(DecisionOutcome::kNone, 9);
  EXPECT_EQ(t.total(), 5);
}

}  // namespace
}  // namespace medkoord::assessment
