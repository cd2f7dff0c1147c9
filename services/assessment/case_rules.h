#pragma once
// The assessment lifecycle and the harmonisation rules, as pure functions on
// plain values: who may act on a case, which lifecycle steps are allowed, and
// what "national practice so far" means for precedents.

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/time/civil_time.h"

namespace medkoord::assessment {

// Mirrors medkoord.assessment.v1.CaseState (same numbers).
enum class CaseState { kReceived = 1, kUnderAssessment = 2, kDecided = 3, kWithdrawn = 4 };
// Mirrors medkoord.assessment.v1.Outcome (0: none / open).
enum class DecisionOutcome { kNone = 0, kRecommended = 1, kNotRecommended = 2, kNotConcluded = 3 };

std::string_view CaseStateName(CaseState state);

// The caller, reduced to what the rules need.
struct Actor {
  int region = 0;          // 1..5 for a regional caller, else 0
  bool is_region = false;
  bool is_secretariat = false;
  bool is_forum_member = false;
};

// Reading a case: the secretariat and forum members see every case, a region
// only its own. Another region's case answers NOT_FOUND so that its existence
// does not leak.
absl::Status CheckCanRead(const Actor& actor, int case_region);

// Changing a case (assign, decide): the case's own region, or the secretariat
// on its behalf. Forum members read only (PERMISSION_DENIED); another region's
// case is NOT_FOUND, as for reading.
absl::Status CheckCanChange(const Actor& actor, int case_region);

// Lifecycle: only RECEIVED / UNDER_ASSESSMENT cases can be assigned or
// decided; the rest is FAILED_PRECONDITION naming the state.
absl::Status CheckCanAssign(CaseState state);
absl::Status CheckCanDecide(CaseState state);
// A withdrawal is refused once the case is decided (FAILED_PRECONDITION);
// withdrawing a withdrawn case again changes nothing (OK, caller no-ops).
absl::Status CheckCanWithdraw(CaseState state);

// Validates a decision's fields, reporting every problem at once with the
// request's field paths: outcome set, reason for not_concluded, reason
// length, decided_on not before submitted_on and not after today.
absl::Status ValidateDecision(DecisionOutcome outcome, std::string_view reason,
                              absl::CivilDay decided_on, absl::CivilDay submitted_on,
                              absl::CivilDay today);

// Precedent counts of one population (national or one region).
struct OutcomeTally {
  int64_t recommended = 0;
  int64_t not_recommended = 0;
  int64_t not_concluded = 0;
  int64_t total() const { return recommended + not_recommended + not_concluded; }
  void Add(DecisionOutcome outcome, int64_t n = 1);
};

struct PracticeVerdict {
  // The final outcome a strict majority of final decisions took; kNone when
  // there are no final decisions yet or they are evenly split.
  DecisionOutcome practice = DecisionOutcome::kNone;
  double share = 0;  // share of final decisions that took `practice` (0..1)
  // True when `proposed` is a final outcome that differs from a settled
  // practice. Not concluded never departs: it is not an assessment.
  bool departs = false;
};

// National practice so far. Only recommended / not recommended count as
// practice; not-concluded cases say nothing about how a drug is assessed.
PracticeVerdict JudgePractice(const OutcomeTally& national, DecisionOutcome proposed);

}  // namespace medkoord::assessment
