#include "services/assessment/assessment_store.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "common/clock.h"
#include "common/db/outbox.h"
#include "common/status.h"

namespace medkoord::assessment {
namespace {

// Instants cross the libpq boundary as microseconds since the epoch (exact,
// no time-zone or DateStyle dependence); dates as ISO text.
#define TS(n) "(timestamptz 'epoch' + $" #n "::bigint * interval '1 microsecond')"
#define MICROS(col) "(extract(epoch from " col ") * 1000000)::bigint"

constexpr char kCaseColumns[] =
    "case_ref, region, application, to_char(submitted_on, 'YYYY-MM-DD') AS submitted_on, "
    "drug_name, atc_code, indication, icd10, cancer, marketed_dk, medicinraadet_status, "
    "ema_status, state, assignee, outcome, reason, "
    "to_char(decided_on, 'YYYY-MM-DD') AS decided_on, decided_by, " MICROS("decided_at") " AS decided_at, "
    "on_behalf, decision_imported, to_char(withdrawn_on, 'YYYY-MM-DD') AS withdrawn_on, "
    "coalesce(decision_seq, 0) AS decision_seq, registered_by, " MICROS("registered_at") " AS registered_at, "
    "updated_by, " MICROS("updated_at") " AS updated_at, coalesce(decision_request_id, '') AS decision_request_id";

int64_t Micros(absl::Time t) { return absl::ToUnixMicros(t); }

std::string Day(absl::CivilDay d) { return absl::FormatCivilTime(d); }

absl::CivilDay ParseDay(const std::string& s) {
  absl::CivilDay d;
  absl::ParseCivilTime(s, &d);  // written by to_char, always well formed
  return d;
}

std::optional<absl::CivilDay> OptionalDay(const pqxx::field& f) {
  if (f.is_null()) return std::nullopt;
  return ParseDay(f.as<std::string>());
}

CaseRecord ReadCase(const pqxx::row& r) {
  CaseRecord c;
  c.case_ref = r["case_ref"].as<std::string>();
  c.region = r["region"].as<int>();
  c.application = r["application"].as<std::string>();
  c.submitted_on = ParseDay(r["submitted_on"].as<std::string>());
  c.drug_name = r["drug_name"].as<std::string>();
  c.atc_code = r["atc_code"].as<std::string>();
  c.indication = r["indication"].as<std::string>();
  c.icd10 = r["icd10"].as<std::string>();
  c.cancer = r["cancer"].as<bool>();
  c.marketed_dk = r["marketed_dk"].as<bool>();
  c.medicinraadet = r["medicinraadet_status"].as<int>();
  c.ema = r["ema_status"].as<int>();
  c.state = static_cast<CaseState>(r["state"].as<int>());
  c.assignee = r["assignee"].as<std::string>();
  c.outcome = static_cast<DecisionOutcome>(r["outcome"].as<int>());
  c.reason = r["reason"].as<std::string>();
  c.decided_on = OptionalDay(r["decided_on"]);
  c.decided_by = r["decided_by"].as<std::string>();
  if (!r["decided_at"].is_null()) c.decided_at = absl::FromUnixMicros(r["decided_at"].as<int64_t>());
  c.on_behalf = r["on_behalf"].as<bool>();
  c.decision_imported = r["decision_imported"].as<bool>();
  c.withdrawn_on = OptionalDay(r["withdrawn_on"]);
  c.decision_seq = r["decision_seq"].as<int64_t>();
  c.registered_by = r["registered_by"].as<std::string>();
  c.registered_at = absl::FromUnixMicros(r["registered_at"].as<int64_t>());
  c.updated_by = r["updated_by"].as<std::string>();
  c.updated_at = absl::FromUnixMicros(r["updated_at"].as<int64_t>());
  return c;
}

absl::StatusOr<pqxx::row> LockCase(pqxx::work& tx, const std::string& case_ref) {
  pqxx::result r = tx.exec_prepared("lock_case", case_ref);
  if (r.empty()) return absl::NotFoundError("case not found");
  return r[0];
}

void AddHistory(pqxx::work& tx, const std::string& case_ref, EventKind kind,
                const std::string& principal_id, absl::Time at, const std::string& detail) {
  tx.exec_prepared("add_history", case_ref, static_cast<int>(kind), principal_id, Micros(at), detail);
}

// Records an event id as applied; false if it already was.
bool MarkApplied(pqxx::work& tx, const std::string& event_id, const std::string& case_ref,
                 absl::Time now) {
  return tx.exec_prepared("mark_applied", event_id, case_ref, Micros(now)).affected_rows() == 1;
}

// Replaces the named placeholders `:name` of `sql` with $1, $2, ... in the
// order of `names`, so that a statement can name its parameters (no name may
// be a prefix of another).
std::string Numbered(std::string sql, std::initializer_list<std::string_view> names) {
  int n = 0;
  for (std::string_view name : names) {
    absl::StrReplaceAll({{absl::StrCat(":", std::string(name)), absl::StrCat("$", ++n)}}, &sql);
  }
  return sql;
}

}  // namespace

void AssessmentStore::Prepare(pqxx::connection& conn) {
  conn.prepare("get_case", absl::StrCat("SELECT ", kCaseColumns, " FROM cases WHERE case_ref = $1"));
  conn.prepare("lock_case",
               absl::StrCat("SELECT ", kCaseColumns, " FROM cases WHERE case_ref = $1 FOR UPDATE"));
  conn.prepare("add_history",
               "INSERT INTO case_events (case_ref, kind, principal_id, at, detail) "
               "VALUES ($1, $2, $3, " TS(4) ", $5)");
  conn.prepare("mark_applied",
               "INSERT INTO applied_events (event_id, case_ref, applied_at) VALUES ($1, $2, " TS(3)
               ") ON CONFLICT (event_id) DO NOTHING");
  conn.prepare("applied_case", "SELECT case_ref FROM applied_events WHERE event_id = $1");
  // $13 outcome, $14 decided_on ('' = none), $15 known_at micros (-1 = none).
  conn.prepare(
      "insert_case",
      "INSERT INTO cases (case_ref, region, application, submitted_on, drug_name, atc_code, "
      "indication, icd10, cancer, marketed_dk, medicinraadet_status, ema_status, state, outcome, "
      "decided_on, decided_by, decided_at, decision_imported, known_at, registered_by, registered_at, "
      "updated_by, updated_at) VALUES ($1, $2, $3, $4::date, $5, $6, $7, $8, $9, $10, $11, $12, "
      "CASE WHEN $13::smallint > 0 THEN 3 ELSE 1 END, $13, NULLIF($14, '')::date, "
      "CASE WHEN $13::smallint > 0 THEN $16 ELSE '' END, "
      "CASE WHEN $13::smallint > 0 THEN " TS(17) " END, $13::smallint > 0, "
      "CASE WHEN $15::bigint >= 0 THEN " TS(15) " END, $16, " TS(17) ", $16, " TS(17) ") "
      "ON CONFLICT (case_ref) DO NOTHING");
  conn.prepare("withdraw_case",
               "UPDATE cases SET state = 4, outcome = 3, reason = 'withdrawn', withdrawn_on = $2::date, "
               "known_at = " TS(3) ", updated_by = $4, updated_at = " TS(5) " WHERE case_ref = $1");
  conn.prepare("assign_case",
               "UPDATE cases SET state = 2, assignee = $2, updated_by = $3, updated_at = " TS(4)
               " WHERE case_ref = $1");
  conn.prepare("next_decision_seq",
               "SELECT pg_advisory_xact_lock(hashtext('assessment.decision_seq')), "
               "nextval('decision_seq') AS seq");
  conn.prepare("decide_case",
               "UPDATE cases SET state = 3, outcome = $2, reason = $3, decided_on = $4::date, "
               "decided_by = $5, decided_at = " TS(6) ", on_behalf = $7, decision_imported = false, "
               "decision_request_id = NULLIF($8, ''), known_at = " TS(6) ", decision_seq = $9, "
               "updated_by = $5, updated_at = " TS(6) " WHERE case_ref = $1");
  conn.prepare("notify_decision", absl::StrCat("SELECT pg_notify('", kDecisionChannel, "', $1)"));
  conn.prepare("history",
               "SELECT id, kind, principal_id, " MICROS("at") " AS at, detail FROM case_events "
               "WHERE case_ref = $1 ORDER BY id");
  conn.prepare(
      "list_cases",
      absl::StrCat(
          "SELECT ", kCaseColumns,
          " FROM cases WHERE ($1 = 0 OR region = $1) "
          "AND ($2 = 0 OR (submitted_on >= make_date($2, 1, 1) AND submitted_on < make_date($2 + 1, 1, 1))) "
          "AND atc_code LIKE $3 || '%' AND icd10 LIKE $4 || '%' "
          "AND ($5 = '' OR lower(drug_name) = lower($5)) AND ($6 = 0 OR state = $6) "
          "AND ($7 = 0 OR (outcome = $7 AND state = 3)) "
          "AND ($8 = '' OR (submitted_on, case_ref) > ($8::date, $9)) "
          "ORDER BY submitted_on, case_ref LIMIT $10"));
  // Precedents: decided cases only (a withdrawal is not a decision).
  constexpr char kPrecedentWhere[] =
      " FROM cases WHERE state = 3 AND atc_code LIKE $1 || '%' AND icd10 LIKE $2 || '%' "
      "AND case_ref <> $3 AND ($4 = '' OR coalesce(decided_on, submitted_on) < $4::date)";
  conn.prepare("precedent_counts",
               absl::StrCat("SELECT region, outcome, count(*) AS n", kPrecedentWhere,
                            " GROUP BY region, outcome"));
  conn.prepare("precedent_page",
               absl::StrCat("SELECT ", kCaseColumns, kPrecedentWhere,
                            " AND ($5 = '' OR (coalesce(decided_on, submitted_on), case_ref) < ($5::date, $6)) "
                            "ORDER BY coalesce(decided_on, submitted_on) DESC, case_ref DESC LIMIT $7"));
  // The report (see report.h): the month cells of migration 0003 plus or
  // minus the cases of as_of's own month on one side of as_of (that
  // migration explains the arithmetic; LoadReportInput picks the side with
  // fewer days to scan). :cells_before: cells of the months before this
  // date; :sub_from..:scan_to: submission dates whose cases are added
  // (:sign 1) or removed (:sign -1); :known_from..:scan_to: dates of
  // report_known_on whose cases are known at as_of (:sign 1: added) or not
  // (:sign -1: removed).
  constexpr char kYear[] = "submitted_on >= make_date(:year, 1, 1) AND submitted_on < make_date(:year + 1, 1, 1)";
  const std::string submitted_scan = absl::StrCat(
      " FROM cases WHERE ", kYear, " AND submitted_on >= :sub_from::date AND submitted_on <= :scan_to::date ");
  constexpr char kKnownOn[] = "report_known_on(outcome, known_at, submitted_on)";
  // The year is a filter, not an index condition: the scan is one of the
  // expression index (and a case decided in January may be of last year).
  const std::string known_scan = absl::StrCat(
      " FROM cases WHERE outcome <> 0 AND ", kKnownOn, " >= :known_from::date AND ", kKnownOn,
      " <= :scan_to::date AND extract(year FROM submitted_on) = :year AND (", kKnownOn,
      " < :day::date OR known_at IS NULL OR known_at <= (timestamptz 'epoch' + :micros::bigint * interval "
      "'1 microsecond')) = (:sign::int > 0) ");
  constexpr char kDims[] = "region, cancer, marketed_dk, medicinraadet_status, ema_status";
  conn.prepare(
      "report_categories",
      Numbered(absl::StrCat(
                   "SELECT region, outcome, cancer, marketed_dk, medicinraadet_status, ema_status, sum(n)::bigint "
                   "FROM (SELECT ", kDims, ", 0::smallint AS outcome, n FROM report_submitted_cells "
                   "  WHERE year = :year AND month < :cells_before::date "
                   "  UNION ALL SELECT ", kDims, ", 0::smallint, :sign::int * count(*)", submitted_scan,
                   "GROUP BY ", kDims,
                   // Every known outcome counts under its outcome, and (-1) not as open.
                   "  UNION ALL SELECT ", kDims, ", v.outcome, v.n FROM ("
                   "    SELECT ", kDims, ", outcome, n FROM report_known_cells "
                   "    WHERE year = :year AND month < :cells_before::date "
                   "    UNION ALL SELECT ", kDims, ", outcome, :sign::int * count(*)", known_scan, "GROUP BY ",
                   kDims, ", outcome) k "
                   "  CROSS JOIN LATERAL (VALUES (k.outcome, k.n), (0::smallint, -k.n)) AS v(outcome, n) "
                   ") x GROUP BY 1, 2, 3, 4, 5, 6 HAVING sum(n) > 0"),
               {"year", "day", "micros", "cells_before", "sub_from", "scan_to", "sign", "known_from"}));
  conn.prepare("report_names",
               Numbered(absl::StrCat("WITH scan AS (SELECT region, drug_name, indication, cancer, "
                                     ":sign::int * count(*) AS n",
                                     submitted_scan, "GROUP BY 1, 2, 3, 4) "
                                     "SELECT region, kind, name, cancer, sum(n)::bigint FROM ("
                                     "  SELECT region, kind, name, cancer, n FROM report_name_month_cells "
                                     "  WHERE year = :year AND month < :cells_before::date "
                                     "  UNION ALL SELECT region, 1::smallint, drug_name, false, n FROM scan "
                                     "  UNION ALL SELECT region, 2::smallint, indication, cancer, n FROM scan "
                                     ") x GROUP BY 1, 2, 3, 4 HAVING sum(n) > 0"),
                        {"year", "cells_before", "sub_from", "scan_to", "sign"}));
  conn.prepare("report_years",
               Numbered("SELECT region, year, sum(n)::bigint FROM ("
                        "  SELECT region, year, n FROM report_submitted_cells "
                        "  WHERE year <= :year AND month < :cells_before::date "
                        "  UNION ALL SELECT region, extract(year FROM submitted_on)::int, :sign::int * count(*) "
                        "  FROM cases WHERE submitted_on < make_date(:year + 1, 1, 1) "
                        "  AND submitted_on >= :sub_from::date AND submitted_on <= :scan_to::date GROUP BY 1, 2"
                        ") x GROUP BY 1, 2 HAVING sum(n) > 0",
                        {"year", "cells_before", "sub_from", "scan_to", "sign"}));
  conn.prepare("decisions_after",
               absl::StrCat("SELECT ", kCaseColumns,
                            " FROM cases WHERE decision_seq > $1 AND ($2 = 0 OR region = $2) "
                            "ORDER BY decision_seq LIMIT $3"));
  conn.prepare("latest_decision_seq", "SELECT coalesce(max(decision_seq), 0) AS seq FROM cases");
}

absl::StatusOr<AssessmentStore::Applied> AssessmentStore::RegisterCase(const std::string& event_id,
                                                                       const CaseRecord& s,
                                                                       bool imported, absl::Time now) {
  Applied out;
  absl::Status st = pool_.Run([&](pqxx::work& tx) -> absl::Status {
    out = Applied{};
    if (!MarkApplied(tx, event_id, s.case_ref, now)) {
      out.duplicate = true;
      pqxx::result applied = tx.exec_prepared("applied_case", event_id);
      const std::string ref = applied.empty() ? s.case_ref : applied[0][0].as<std::string>();
      pqxx::result r = tx.exec_prepared("get_case", ref);
      if (r.empty()) return absl::InternalError("applied event without its case");
      out.record = ReadCase(r[0]);
      return absl::OkStatus();
    }
    const int outcome = imported ? static_cast<int>(s.outcome) : 0;
    // An imported decision is known from its date; a not-concluded import
    // without one from its submission date (report.h, as_of).
    int64_t known_at = -1;
    if (outcome > 0) {
      known_at = Micros(absl::FromCivil(s.decided_on.value_or(s.submitted_on), DanishTimeZone()));
    }
    pqxx::result ins = tx.exec_prepared(
        "insert_case", s.case_ref, s.region, s.application, Day(s.submitted_on), s.drug_name,
        s.atc_code, s.indication, s.icd10, s.cancer, s.marketed_dk, s.medicinraadet, s.ema, outcome,
        s.decided_on ? Day(*s.decided_on) : std::string(), known_at, s.registered_by, Micros(now));
    if (ins.affected_rows() == 1) {
      AddHistory(tx, s.case_ref, imported ? EventKind::kImported : EventKind::kRegistered,
                 s.registered_by, now,
                 outcome > 0 ? absl::StrCat("imported as decided: ", kReportOutcomeKeys[outcome].data())
                             : std::string());
    }
    pqxx::result r = tx.exec_prepared("get_case", s.case_ref);
    out.record = ReadCase(r[0]);
    return absl::OkStatus();
  });
  if (!st.ok()) return st;
  return out;
}

absl::StatusOr<AssessmentStore::Applied> AssessmentStore::WithdrawCase(
    const std::string& event_id, const std::string& case_ref, absl::CivilDay withdrawn_on,
    absl::Time withdrawn_at, const std::string& principal_id, absl::Time now) {
  Applied out;
  bool refused = false;
  absl::Status st = pool_.Run([&](pqxx::work& tx) -> absl::Status {
    out = Applied{};
    refused = false;
    ASSIGN_OR_RETURN(pqxx::row row, LockCase(tx, case_ref));
    out.record = ReadCase(row);
    if (absl::Status s = CheckCanWithdraw(out.record.state); !s.ok()) {
      // Keep the refusal in the history (committed), but answer the error;
      // the event stays unapplied so a retry gets the same answer.
      AddHistory(tx, case_ref, EventKind::kWithdrawalRefused, principal_id, now,
                 "withdrawal arrived after the decision");
      refused = true;
      return absl::OkStatus();
    }
    if (!MarkApplied(tx, event_id, case_ref, now)) {
      out.duplicate = true;
      return absl::OkStatus();
    }
    if (out.record.state == CaseState::kWithdrawn) return absl::OkStatus();
    tx.exec_prepared("withdraw_case", case_ref, Day(withdrawn_on), Micros(withdrawn_at), principal_id,
                     Micros(now));
    AddHistory(tx, case_ref, EventKind::kWithdrawn, principal_id, now, "");
    out.record = ReadCase(tx.exec_prepared("get_case", case_ref)[0]);
    return absl::OkStatus();
  });
  if (!st.ok()) return st;
  if (refused) return CheckCanWithdraw(out.record.state);
  return out;
}

absl::StatusOr<CaseRecord> AssessmentStore::GetCase(const std::string& case_ref) {
  CaseRecord out;
  absl::Status st = pool_.Read([&](pqxx::work& tx) -> absl::Status {
    pqxx::result r = tx.exec_prepared("get_case", case_ref);
    if (r.empty()) return absl::NotFoundError("case not found");
    out = ReadCase(r[0]);
    return absl::OkStatus();
  });
  if (!st.ok()) return st;
  return out;
}

absl::StatusOr<std::vector<CaseRecord>> AssessmentStore::ListCases(
    const CaseFilter& f, const std::optional<std::pair<absl::CivilDay, std::string>>& after, int limit) {
  std::vector<CaseRecord> out;
  absl::Status st = pool_.Read([&](pqxx::work& tx) -> absl::Status {
    out.clear();
    pqxx::result r = tx.exec_prepared("list_cases", f.region, f.year, f.atc_prefix, f.icd10_prefix,
                                      f.drug_name, f.state, f.outcome,
                                      after ? Day(after->first) : std::string(),
                                      after ? after->second : std::string(), limit + 1);
    for (const pqxx::row& row : r) out.push_back(ReadCase(row));
    return absl::OkStatus();
  });
  if (!st.ok()) return st;
  return out;
}

absl::StatusOr<CaseRecord> AssessmentStore::AssignCase(const std::string& case_ref, const Check& access,
                                                       const std::string& assignee,
                                                       const std::string& principal_id, absl::Time now) {
  CaseRecord out;
  absl::Status st = pool_.Run([&](pqxx::work& tx) -> absl::Status {
    ASSIGN_OR_RETURN(pqxx::row row, LockCase(tx, case_ref));
    CaseRecord c = ReadCase(row);
    RETURN_IF_ERROR(access(c));
    RETURN_IF_ERROR(CheckCanAssign(c.state));
    tx.exec_prepared("assign_case", case_ref, assignee, principal_id, Micros(now));
    AddHistory(tx, case_ref, EventKind::kAssigned, principal_id, now, assignee);
    out = ReadCase(tx.exec_prepared("get_case", case_ref)[0]);
    return absl::OkStatus();
  });
  if (!st.ok()) return st;
  return out;
}

absl::StatusOr<CaseRecord> AssessmentStore::RecordDecision(const std::string& case_ref,
                                                           const Check& access, const Check& validate,
                                                           const DecisionInput& d,
                                                           const std::string& outbox_topic,
                                                           const std::string& outbox_payload,
                                                           absl::Time now) {
  CaseRecord out;
  absl::Status st = pool_.Run([&](pqxx::work& tx) -> absl::Status {
    ASSIGN_OR_RETURN(pqxx::row row, LockCase(tx, case_ref));
    CaseRecord c = ReadCase(row);
    RETURN_IF_ERROR(access(c));
    if (!d.request_id.empty() && row["decision_request_id"].as<std::string>() == d.request_id) {
      out = c;  // a retry of the call that decided the case
      return absl::OkStatus();
    }
    RETURN_IF_ERROR(CheckCanDecide(c.state));
    RETURN_IF_ERROR(validate(c));
    // The advisory lock makes feed positions commit in order, so a watcher
    // reading "seq > last" never skips a decision that commits late.
    const int64_t seq = tx.exec_prepared("next_decision_seq")[0]["seq"].as<int64_t>();
    tx.exec_prepared("decide_case", case_ref, static_cast<int>(d.outcome), d.reason, Day(d.decided_on),
                     d.principal_id, Micros(now), d.on_behalf, d.request_id, seq);
    AddHistory(tx, case_ref, EventKind::kDecided, d.principal_id, now,
               absl::StrCat(kReportOutcomeKeys[static_cast<int>(d.outcome)].data(),
                            d.on_behalf ? " (secretariat on behalf of the region)" : "",
                            d.reason.empty() ? "" : ": ", d.reason));
    db::EnqueueOutboxEvent(tx, outbox_topic, outbox_payload);
    tx.exec_prepared("notify_decision", absl::StrCat(seq));
    out = ReadCase(tx.exec_prepared("get_case", case_ref)[0]);
    return absl::OkStatus();
  });
  if (!st.ok()) return st;
  return out;
}

absl::StatusOr<std::vector<HistoryEntry>> AssessmentStore::History(const std::string& case_ref) {
  std::vector<HistoryEntry> out;
  absl::Status st = pool_.Read([&](pqxx::work& tx) -> absl::Status {
    out.clear();
    for (const pqxx::row& r : tx.exec_prepared("history", case_ref)) {
      out.push_back({r["id"].as<int64_t>(), static_cast<EventKind>(r["kind"].as<int>()),
                     r["principal_id"].as<std::string>(), absl::FromUnixMicros(r["at"].as<int64_t>()),
                     r["detail"].as<std::string>()});
    }
    return absl::OkStatus();
  });
  if (!st.ok()) return st;
  return out;
}

absl::StatusOr<PrecedentResult> AssessmentStore::FindPrecedents(const PrecedentQuery& q) {
  PrecedentResult out;
  const std::string before = q.before ? Day(*q.before) : std::string();
  absl::Status st = pool_.Read([&](pqxx::work& tx) -> absl::Status {
    out = PrecedentResult{};
    for (const pqxx::row& r :
         tx.exec_prepared("precedent_counts", q.atc_prefix, q.icd10_prefix, q.exclude_case_ref, before)) {
      const int region = r["region"].as<int>();
      if (region < 1 || region > kRegionCount) continue;
      out.per_region[region - 1].Add(static_cast<DecisionOutcome>(r["outcome"].as<int>()),
                                     r["n"].as<int64_t>());
    }
    pqxx::result page = tx.exec_prepared(
        "precedent_page", q.atc_prefix, q.icd10_prefix, q.exclude_case_ref, before,
        q.after ? Day(q.after->first) : std::string(), q.after ? q.after->second : std::string(),
        q.limit + 1);
    for (const pqxx::row& r : page) out.page.push_back(ReadCase(r));
    return absl::OkStatus();
  });
  if (!st.ok()) return st;
  return out;
}

absl::StatusOr<ReportInput> AssessmentStore::LoadReportInput(int year, absl::Time as_of) {
  ReportInput in;
  const absl::CivilDay day = absl::ToCivilDay(as_of, DanishTimeZone());
  const absl::CivilDay month_start(day.year(), day.month(), 1);
  const absl::CivilDay next_month = absl::CivilDay(absl::CivilMonth(day) + 1);
  // The cases of as_of's month before as_of are added to the cells of the
  // earlier months, or those after it removed from the cells including the
  // month, whichever side has fewer days to scan.
  const bool remove_after = (next_month - day) < (day - month_start);
  const int sign = remove_after ? -1 : 1;
  const std::string as_of_day = Day(day);
  const std::string cells_before = Day(remove_after ? next_month : month_start);
  const std::string submitted_from = Day(remove_after ? day + 1 : month_start);
  const std::string scan_to = Day(remove_after ? next_month - 1 : day);
  const std::string known_from = Day(remove_after ? day : month_start);
  const int64_t as_of_micros = Micros(as_of);
  absl::Status st = pool_.Read([&](pqxx::work& tx) -> absl::Status {
    in = ReportInput{};
    in.year = year;
    in.as_of = as_of;
    // Plans for these values: a generic plan cannot tell a day's range of
    // dates from a year's.
    tx.exec("SET LOCAL plan_cache_mode = force_custom_plan");
    for (const pqxx::row& r : tx.exec_prepared("report_categories", year, as_of_day, as_of_micros, cells_before,
                                               submitted_from, scan_to, sign, known_from)) {
      in.categories.push_back({r[0].as<int>(), r[1].as<int>(), r[2].as<bool>(), r[3].as<bool>(),
                               r[4].as<int>(), r[5].as<int>(), r[6].as<int64_t>()});
    }
    for (const pqxx::row& r :
         tx.exec_prepared("report_names", year, cells_before, submitted_from, scan_to, sign)) {
      NameCell cell{r[0].as<int>(), r[2].as<std::string>(), r[4].as<int64_t>()};
      if (r[1].as<int>() == 1) {
        in.drugs.push_back(std::move(cell));
      } else {
        if (!r[3].as<bool>()) in.non_cancer_indications.push_back(cell);
        in.indications.push_back(std::move(cell));
      }
    }
    for (const pqxx::row& r :
         tx.exec_prepared("report_years", year, cells_before, submitted_from, scan_to, sign)) {
      in.years.push_back({r[0].as<int>(), r[1].as<int>(), r[2].as<int64_t>()});
    }
    return absl::OkStatus();
  });
  if (!st.ok()) return st;
  return in;
}

absl::StatusOr<std::vector<CaseRecord>> AssessmentStore::DecisionsAfter(int64_t after, int region,
                                                                         int limit) {
  std::vector<CaseRecord> out;
  absl::Status st = pool_.Read([&](pqxx::work& tx) -> absl::Status {
    out.clear();
    for (const pqxx::row& r : tx.exec_prepared("decisions_after", after, region, limit)) {
      out.push_back(ReadCase(r));
    }
    return absl::OkStatus();
  });
  if (!st.ok()) return st;
  return out;
}

absl::StatusOr<int64_t> AssessmentStore::LatestDecisionSeq() {
  int64_t seq = 0;
  absl::Status st = pool_.Read([&](pqxx::work& tx) -> absl::Status {
    seq = tx.exec_prepared("latest_decision_seq")[0]["seq"].as<int64_t>();
    return absl::OkStatus();
  });
  if (!st.ok()) return st;
  return seq;
}

}  // namespace medkoord::assessment
