#pragma once
// All SQL of the assessment service. Plain records in and out; the rules
// (who may change what, which lifecycle step is allowed) are passed in as
// checks that run inside the transaction on the locked row, so a check and
// the change it guards see the same state.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <pqxx/pqxx>

#include "absl/status/statusor.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "common/db/pool.h"
#include "services/assessment/case_rules.h"
#include "services/assessment/report.h"

namespace medkoord::assessment {

// One case as stored. Enum-like fields hold the proto enum numbers.
struct CaseRecord {
  std::string case_ref;
  int region = 0;
  std::string application;
  absl::CivilDay submitted_on;
  std::string drug_name;
  std::string atc_code;
  std::string indication;
  std::string icd10;
  bool cancer = false;
  bool marketed_dk = false;
  int medicinraadet = 0;
  int ema = 0;
  CaseState state = CaseState::kReceived;
  std::string assignee;
  DecisionOutcome outcome = DecisionOutcome::kNone;
  std::string reason;
  std::optional<absl::CivilDay> decided_on;
  std::string decided_by;
  std::optional<absl::Time> decided_at;
  bool on_behalf = false;
  bool decision_imported = false;
  std::optional<absl::CivilDay> withdrawn_on;
  int64_t decision_seq = 0;  // 0: not in the feed
  std::string registered_by;
  absl::Time registered_at;
  std::string updated_by;
  absl::Time updated_at;
};

// History entry kinds (same numbers as CaseEvent.Kind).
enum class EventKind {
  kRegistered = 1,
  kImported = 2,
  kAssigned = 3,
  kDecided = 4,
  kWithdrawn = 5,
  kWithdrawalRefused = 6
};

struct HistoryEntry {
  int64_t id = 0;
  EventKind kind = EventKind::kRegistered;
  std::string principal_id;
  absl::Time at;
  std::string detail;
};

struct CaseFilter {
  int region = 0;        // 0: any
  int year = 0;          // 0: any
  std::string atc_prefix;
  std::string icd10_prefix;
  std::string drug_name;  // case-insensitive exact
  int state = 0;
  int outcome = 0;
};

struct PrecedentQuery {
  std::string atc_prefix;
  std::string icd10_prefix;
  std::string exclude_case_ref;
  std::optional<absl::CivilDay> before;
  // Keyset of the last precedent of the previous page: (date, case_ref).
  std::optional<std::pair<absl::CivilDay, std::string>> after;
  int limit = 100;
};

struct PrecedentResult {
  std::vector<CaseRecord> page;  // most recent first; limit + 1 rows means "more"
  std::array<OutcomeTally, kRegionCount> per_region;
};

struct DecisionInput {
  DecisionOutcome outcome = DecisionOutcome::kNone;
  std::string reason;
  absl::CivilDay decided_on;
  std::string principal_id;
  bool on_behalf = false;
  std::string request_id;
};

class AssessmentStore {
 public:
  explicit AssessmentStore(db::Pool& pool) : pool_(pool) {}

  // Prepares the statements on a new connection (db::PoolOptions::prepare).
  static void Prepare(pqxx::connection& conn);

  struct Applied {
    CaseRecord record;
    bool duplicate = false;  // the event id had been applied before
  };
  // Registers a case from intake's submission or import. A case_ref that is
  // already registered keeps its first content (intake's re-imports create
  // nothing); an imported decided case registers as decided.
  absl::StatusOr<Applied> RegisterCase(const std::string& event_id, const CaseRecord& snapshot,
                                       bool imported, absl::Time now);
  // Withdraws a case: NOT_FOUND if unknown, FAILED_PRECONDITION (and a
  // history entry) if decided; a withdrawn case stays withdrawn.
  absl::StatusOr<Applied> WithdrawCase(const std::string& event_id, const std::string& case_ref,
                                       absl::CivilDay withdrawn_on, absl::Time withdrawn_at,
                                       const std::string& principal_id, absl::Time now);

  absl::StatusOr<CaseRecord> GetCase(const std::string& case_ref);
  // Ordered by (submitted_on, case_ref); returns up to limit + 1 rows.
  absl::StatusOr<std::vector<CaseRecord>> ListCases(
      const CaseFilter& filter, const std::optional<std::pair<absl::CivilDay, std::string>>& after,
      int limit);

  using Check = std::function<absl::Status(const CaseRecord&)>;
  // `access` runs first on the locked row (authorisation), then `lifecycle`.
  absl::StatusOr<CaseRecord> AssignCase(const std::string& case_ref, const Check& access,
                                        const std::string& assignee, const std::string& principal_id,
                                        absl::Time now);
  // Records a decision, its history entry, the outbox event (`outbox_payload`
  // under `outbox_topic`) and the feed notification in one transaction. A
  // repeated non-empty request_id returns the case as it is, changing nothing.
  absl::StatusOr<CaseRecord> RecordDecision(const std::string& case_ref, const Check& access,
                                            const Check& validate, const DecisionInput& decision,
                                            const std::string& outbox_topic,
                                            const std::string& outbox_payload, absl::Time now);

  absl::StatusOr<std::vector<HistoryEntry>> History(const std::string& case_ref);

  absl::StatusOr<PrecedentResult> FindPrecedents(const PrecedentQuery& query);

  // GROUP BY aggregation of the report year (see report.h).
  absl::StatusOr<ReportInput> LoadReportInput(int year, absl::Time as_of);

  // Live decisions with decision_seq > after, in feed order (region 0: all).
  absl::StatusOr<std::vector<CaseRecord>> DecisionsAfter(int64_t after, int region, int limit);
  absl::StatusOr<int64_t> LatestDecisionSeq();

  // The channel decision notifications are sent on.
  static constexpr char kDecisionChannel[] = "assessment_decisions";

 private:
  db::Pool& pool_;
};

}  // namespace medkoord::assessment
