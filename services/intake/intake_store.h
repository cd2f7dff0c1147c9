#pragma once
// All SQL of the intake service. Every state change and the outbox event that
// announces it are written in one transaction; creates are idempotent by
// (caller, request_id) under a unique constraint in that same transaction.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <pqxx/pqxx>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/db/pool.h"
#include "services/intake/application.h"
#include "services/intake/group_commit.h"
#include "services/intake/import_parser.h"
#include "services/intake/protocol.h"

namespace medkoord::intake {

// Outbox topics.
inline constexpr char kTopicSubmitted[] = "intake.application.submitted";
inline constexpr char kTopicImported[] = "intake.application.imported";
inline constexpr char kTopicWithdrawn[] = "intake.application.withdrawn";

// Builds the serialized outbox payload of an event about `record` (the
// service owns the event's message type; the store only stores it).
using EventPayloadFn = std::function<std::string(const ApplicationRecord& record)>;

struct ApplicationFilter {
  std::optional<std::string> region;
  std::optional<int> year;
  std::optional<std::string> atc_prefix;
  std::optional<std::string> drug_name;   // case-insensitive equality
  std::optional<std::string> indication;  // case-insensitive equality
  std::optional<std::string> icd10_prefix;
  std::optional<std::string> outcome;     // "open" matches no outcome
  std::optional<std::string> state;
};

struct ProtocolFilter {
  std::optional<int> year;
  std::optional<std::string> state;
};

// The effect of one batch of import rows.
struct ImportBatchResult {
  int64_t stored = 0;
  int64_t unchanged = 0;
  int64_t rejected = 0;
  std::vector<ImportRowError> errors;
};

// What an import body gets: a function that stores one batch of parsed rows
// in the import's transaction.
using ImportBatchFn = std::function<absl::StatusOr<ImportBatchResult>(const std::vector<ImportedRow>& rows)>;

class IntakeStore {
 public:
  // Concurrent SubmitApplication calls share statements and commits (see
  // group_commit.h); `submit_batching` bounds the batches.
  explicit IntakeStore(db::Pool& pool, GroupCommitOptions submit_batching = {});

  // Prepares this store's statements on a new connection.
  static void Prepare(pqxx::connection& connection);

  struct Submitted {
    ApplicationRecord record;
    bool replayed = false;  // the request_id had been seen: nothing created now
  };
  // Stores a new application (assigning its case_ref) and its outbox event.
  // ALREADY_EXISTS when the region already uses record.region_ref.
  absl::StatusOr<Submitted> SubmitApplication(ApplicationRecord record, const std::string& principal_id,
                                              const std::string& request_id, absl::Time now, int case_year,
                                              const EventPayloadFn& event);
  // SubmitApplication without blocking the caller: `done` gets the result,
  // on a group-commit writer thread (or at once when the submission could
  // not be prepared). For gRPC's callback API.
  using SubmitDone = std::function<void(absl::StatusOr<Submitted> result)>;
  void StartSubmitApplication(ApplicationRecord record, const std::string& principal_id,
                              const std::string& request_id, absl::Time now, int case_year,
                              const EventPayloadFn& event, SubmitDone done);

  // One submission on its way to the database, prepared in the caller's
  // thread (number, event payload, trace context) so that whoever writes the
  // batch needs nothing of the caller.
  struct PendingSubmit {
    ApplicationRecord record;  // case_ref assigned
    std::string principal_id;
    std::string request_id;
    std::string now_text;      // RFC 3339
    std::string payload;       // the outbox event of `record`
    std::string traceparent;
    int case_year = 0;
    EventPayloadFn event;  // for a new case_ref
  };
  // Builds the pending submission (number, payload) in the caller's thread
  // (exposed for tests).
  absl::StatusOr<PendingSubmit> PrepareSubmit(ApplicationRecord record, const std::string& principal_id,
                                              const std::string& request_id, absl::Time now, int case_year,
                                              const EventPayloadFn& event);
  // One row's result in a batch. `alone`: the batch did not settle the row
  // (its case_ref was taken, or the batch failed as a whole); it is written
  // on its own next, so its caller gets its own answer.
  struct BatchOutcome {
    absl::StatusOr<Submitted> result = absl::UnknownError("not written");
    bool alone = false;
  };
  // Writes submissions in one autocommit statement, every rule per row: a
  // used request_id (also by an earlier row of the same batch) answers with
  // the first result and creates nothing; a region_ref already used (also
  // earlier in the batch) is ALREADY_EXISTS for that row only. Exposed for
  // tests; SubmitApplication calls it through the group commit.
  std::vector<BatchOutcome> WriteSubmitBatch(const std::vector<const PendingSubmit*>& batch);
  GroupCommitStats submit_batch_stats() const { return submits_->stats(); }

  absl::StatusOr<ApplicationRecord> GetApplication(const std::string& case_ref);

  // A page in ListApplications' order (submitted_on desc, case_ref desc),
  // after the keyset `after` ({submitted_on, case_ref}) when given.
  absl::StatusOr<std::vector<ApplicationRecord>> ListApplications(const ApplicationFilter& filter,
                                                                  const std::vector<std::string>& after,
                                                                  int limit);

  // Withdraws an open application of `region`; NOT_FOUND when the case is
  // not that region's, FAILED_PRECONDITION when decided; a withdrawn one is
  // returned unchanged.
  absl::StatusOr<ApplicationRecord> WithdrawApplication(const std::string& case_ref, const std::string& region,
                                                        const std::string& principal_id, const std::string& reason,
                                                        absl::Time now, const EventPayloadFn& event);

  struct DecisionInput {
    std::string event_id;
    std::string case_ref;
    std::string region;
    std::string outcome;
    std::optional<csv::Date> decided_on;
    std::string decided_by;
    std::string reason;
  };
  struct DecisionApplied {
    ApplicationRecord record;
    bool duplicate = false;  // this event_id was applied before
    // Not changed, the event recorded as applied: the application already
    // holds this decision (same outcome and date), or a later one.
    bool already_decided = false;
    bool out_of_date = false;  // ... and that one is later than the event's
  };
  // Applies assessment's decision; tolerant of everything assessment can
  // legitimately send, since one lasting error would hold up every later
  // decision in its ordered outbox: a repeat, a decision over a withdrawal
  // that assessment refused (the case was decided first), an event older
  // than the decision already stored. NOT_FOUND only when intake has no
  // such application of that region.
  absl::StatusOr<DecisionApplied> ApplyDecision(const DecisionInput& decision, absl::Time now);

  // Runs an import in one transaction: `body` reads the input and calls the
  // batch function for each batch of parsed rows; a body error rolls all of
  // it back. With `validate_only` everything is checked against the
  // database, then rolled back.
  absl::Status Import(bool validate_only, const std::string& principal_id, absl::Time now,
                      const EventPayloadFn& event, const std::function<absl::Status(const ImportBatchFn&)>& body);

  // Export pages in case_ref order, after `after_case_ref`.
  absl::StatusOr<std::vector<ApplicationRecord>> ExportPage(const ApplicationFilter& filter,
                                                            const std::string& after_case_ref, int limit);
  absl::StatusOr<bool> AnyRegionRef(const ApplicationFilter& filter);

  // Protocols.
  struct ProtocolCreated {
    ProtocolRecord record;
    bool replayed = false;
  };
  absl::StatusOr<ProtocolCreated> CreateProtocol(ProtocolRecord record, const std::string& principal_id,
                                                 const std::string& request_id, absl::Time now);
  absl::StatusOr<ProtocolRecord> GetProtocol(const std::string& id);
  absl::StatusOr<std::vector<ProtocolRecord>> ListProtocols(const ProtocolFilter& filter,
                                                            const std::vector<std::string>& after, int limit);
  absl::StatusOr<ProtocolRecord> AddProtocolNote(const std::string& id, ProtocolNoteRecord note,
                                                 const std::string& principal_id, const std::string& request_id,
                                                 absl::Time now);

 private:
  // Case numbers come in blocks: sequence value n is the block
  // [n * kNumberBlock, (n + 1) * kNumberBlock), so a submission needs no
  // extra round trip for its number, and replicas take disjoint blocks.
  static constexpr int64_t kNumberBlock = 100;
  absl::StatusOr<int64_t> NextApplicationNumber();
  // The single-row path: one autocommit statement; a taken case_ref moves on
  // to the next number.
  absl::StatusOr<Submitted> SubmitOne(PendingSubmit pending);

  db::Pool& pool_;
  absl::Mutex number_mu_;
  int64_t next_number_ ABSL_GUARDED_BY(number_mu_) = 0;
  int64_t number_limit_ ABSL_GUARDED_BY(number_mu_) = 0;
  std::unique_ptr<GroupCommit<PendingSubmit, BatchOutcome>> submits_;
};

}  // namespace medkoord::intake
