#include "services/assessment/case_rules.h"

#include "absl/strings/str_cat.h"
#include "common/status.h"

namespace medkoord::assessment {
namespace {

constexpr size_t kMaxReason = 2000;

absl::Status NotFoundCase() { return absl::NotFoundError("case not found"); }

}  // namespace

std::string_view CaseStateName(CaseState state) {
  switch (state) {
    case CaseState::kReceived: return "received";
    case CaseState::kUnderAssessment: return "under_assessment";
    case CaseState::kDecided: return "decided";
    case CaseState::kWithdrawn: return "withdrawn";
  }
  return "unknown";
}

absl::Status CheckCanRead(const Actor& actor, int case_region) {
  if (actor.is_secretariat || actor.is_forum_member) return absl::OkStatus();
  if (actor.is_region && actor.region == case_region) return absl::OkStatus();
  if (actor.is_region) return NotFoundCase();
  return absl::PermissionDeniedError("the caller's roles do not allow reading cases");
}

absl::Status CheckCanChange(const Actor& actor, int case_region) {
  if (actor.is_secretariat) return absl::OkStatus();
  if (actor.is_region && actor.region == case_region) return absl::OkStatus();
  if (actor.is_region) return NotFoundCase();
  return absl::PermissionDeniedError(
      "only the case's own region or the Forum secretariat may change a case");
}

absl::Status CheckCanAssign(CaseState state) {
  if (state == CaseState::kReceived || state == CaseState::kUnderAssessment) return absl::OkStatus();
  return absl::FailedPreconditionError(
      absl::StrCat("the case is ", std::string(CaseStateName(state)), " and can no longer be assigned"));
}

absl::Status CheckCanDecide(CaseState state) {
  if (state == CaseState::kReceived || state == CaseState::kUnderAssessment) return absl::OkStatus();
  return absl::FailedPreconditionError(
      absl::StrCat("the case is already ", std::string(CaseStateName(state)), "; it cannot be decided again"));
}

absl::Status CheckCanWithdraw(CaseState state) {
  if (state == CaseState::kDecided) {
    return absl::FailedPreconditionError("the case is already decided; a withdrawal is refused");
  }
  return absl::OkStatus();
}

absl::Status ValidateDecision(DecisionOutcome outcome, std::string_view reason,
                              absl::CivilDay decided_on, absl::CivilDay submitted_on,
                              absl::CivilDay today) {
  FieldViolations v;
  if (outcome == DecisionOutcome::kNone) {
    v.Add("outcome", "required: recommended, not_recommended or not_concluded");
  }
  if (outcome == DecisionOutcome::kNotConcluded && reason.find_first_not_of(" \t\r\n") ==
                                                       std::string_view::npos) {
    v.Add("reason", "required when the outcome is not_concluded");
  }
  if (reason.size() > kMaxReason) {
    v.Add("reason", absl::StrCat("at most ", kMaxReason, " bytes"));
  }
  if (decided_on < submitted_on) {
    v.Add("decided_on", absl::StrCat("must not be before the submission date ",
                                     absl::FormatCivilTime(submitted_on)));
  }
  if (decided_on > today) v.Add("decided_on", "must not be in the future");
  return v.ToStatus();
}

void OutcomeTally::Add(DecisionOutcome outcome, int64_t n) {
  switch (outcome) {
    case DecisionOutcome::kRecommended: recommended += n; break;
    case DecisionOutcome::kNotRecommended: not_recommended += n; break;
    case DecisionOutcome::kNotConcluded: not_concluded += n; break;
    case DecisionOutcome::kNone: break;
  }
}

PracticeVerdict JudgePractice(const OutcomeTally& national, DecisionOutcome proposed) {
  PracticeVerdict v;
  const int64_t finals = national.recommended + national.not_recommended;
  if (finals == 0) return v;
  if (national.recommended > national.not_recommended) {
    v.practice = DecisionOutcome::kRecommended;
    v.share = static_cast<double>(national.recommended) / static_cast<double>(finals);
  } else if (national.not_recommended > national.recommended) {
    v.practice = DecisionOutcome::kNotRecommended;
    v.share = static_cast<double>(national.not_recommended) / static_cast<double>(finals);
  } else {
    v.share = 0.5;  // split: no settled practice to depart from
    return v;
  }
  const bool proposed_final = proposed == DecisionOutcome::kRecommended ||
                              proposed == DecisionOutcome::kNotRecommended;
  v.departs = proposed_final && proposed != v.practice;
  return v;
}

}  // namespace medkoord::assessment
