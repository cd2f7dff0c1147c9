#include "services/intake/intake_store.h"

#include <map>
#include <unordered_map>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/db/outbox.h"
#include "common/log.h"
#include "common/status.h"

namespace medkoord::intake {
namespace {

constexpr char kApplicationColumns[] =
    "case_ref, region, coalesce(region_ref, ''), submitted_on::text, drug_name, atc_code, indication, icd10, "
    "cancer, marketed_dk, medicinraadet_status, ema_status, coalesce(outcome, ''), coalesce(decided_on::text, ''), "
    "note, state, source, created_by, (extract(epoch from created_at) * 1000000)::bigint, "
    "coalesce(withdrawn_by, ''), (extract(epoch from withdrawn_at) * 1000000)::bigint, coalesce(withdraw_reason, ''), "
    "coalesce(decided_by, ''), (extract(epoch from decided_at) * 1000000)::bigint, coalesce(decision_reason, ''), "
    "(extract(epoch from updated_at) * 1000000)::bigint";

// The ListApplications / ExportApplications filters; every one is optional
// (NULL = no filter), so one prepared statement serves every combination.
constexpr char kApplicationFilter[] =
    "($1::text IS NULL OR region = $1) "
    "AND ($2::int IS NULL OR (submitted_on >= make_date($2, 1, 1) AND submitted_on < make_date($2 + 1, 1, 1))) "
    "AND ($3::text IS NULL OR atc_code LIKE $3 || '%') "
    "AND ($4::text IS NULL OR lower(drug_name) = lower($4)) "
    "AND ($5::text IS NULL OR lower(indication) = lower($5)) "
    "AND ($6::text IS NULL OR icd10 LIKE $6 || '%') "
    "AND ($7::text IS NULL OR coalesce(outcome, 'open') = $7) "
    "AND ($8::text IS NULL OR state = $8) ";

absl::Time FromMicros(const pqxx::field& f) { return absl::FromUnixMicros(f.as<int64_t>()); }
std::optional<absl::Time> FromMicrosOrNull(const pqxx::field& f) {
  if (f.is_null()) return std::nullopt;
  return FromMicros(f);
}
std::string Rfc3339(absl::Time t) { return absl::FormatTime(absl::RFC3339_full, t, absl::UTCTimeZone()); }
csv::Date DateOf(const pqxx::field& f) { return csv::ParseIsoDate(f.c_str()).value_or(csv::Date{}); }

ApplicationRecord ApplicationFromRow(const pqxx::row& row) {
  ApplicationRecord r;
  r.case_ref = row[0].as<std::string>();
  r.region = row[1].as<std::string>();
  r.region_ref = row[2].as<std::string>();
  r.submitted_on = DateOf(row[3]);
  r.drug_name = row[4].as<std::string>();
  r.atc_code = row[5].as<std::string>();
  r.indication = row[6].as<std::string>();
  r.icd10 = row[7].as<std::string>();
  r.cancer = row[8].as<bool>();
  r.marketed_dk = row[9].as<bool>();
  r.medicinraadet_status = row[10].as<std::string>();
  r.ema_status = row[11].as<std::string>();
  r.outcome = row[12].as<std::string>();
  if (std::string d = row[13].as<std::string>(); !d.empty()) r.decided_on = csv::ParseIsoDate(d);
  r.note = row[14].as<std::string>();
  r.state = row[15].as<std::string>();
  r.source = row[16].as<std::string>();
  r.created_by = row[17].as<std::string>();
  r.created_at = FromMicros(row[18]);
  r.withdrawn_by = row[19].as<std::string>();
  r.withdrawn_at = FromMicrosOrNull(row[20]);
  r.withdraw_reason = row[21].as<std::string>();
  r.decided_by = row[22].as<std::string>();
  r.decided_at = FromMicrosOrNull(row[23]);
  r.decision_reason = row[24].as<std::string>();
  r.updated_at = FromMicros(row[25]);
  return r;
}

const char* OrNull(const std::optional<std::string>& s) { return s ? s->c_str() : nullptr; }
const char* EmptyAsNull(const std::string& s) { return s.empty() ? nullptr : s.c_str(); }

// A PostgreSQL array literal of text values ("{"a","b",NULL}"), for batch
// statements over unnest(): one round trip per batch instead of per row.
class PgArray {
 public:
  void Add(std::string_view value) {
    Separator();
    out_.push_back('"');
    for (char c : value) {
      if (c == '"' || c == '\\') out_.push_back('\\');
      out_.push_back(c);
    }
    out_.push_back('"');
  }
  void AddNull() {
    Separator();
    out_.append("NULL");
  }
  std::string Done() { return out_ + "}"; }

 private:
  void Separator() {
    if (out_.size() > 1) out_.push_back(',');
  }
  std::string out_ = "{";
};

// The application columns both batch inserts (submit and import) pass, as
// array literals in row order.
struct ApplicationArrays {
  PgArray case_ref, region, region_ref, submitted_on, drug_name, atc_code, indication, icd10, cancer, marketed_dk,
      medicinraadet_status, ema_status;
  void Add(const ApplicationRecord& a) {
    case_ref.Add(a.case_ref);
    region.Add(a.region);
    if (a.region_ref.empty()) {
      region_ref.AddNull();
    } else {
      region_ref.Add(a.region_ref);
    }
    submitted_on.Add(csv::FormatIsoDate(a.submitted_on));
    drug_name.Add(a.drug_name);
    atc_code.Add(a.atc_code);
    indication.Add(a.indication);
    icd10.Add(a.icd10);
    cancer.Add(a.cancer ? "t" : "f");
    marketed_dk.Add(a.marketed_dk ? "t" : "f");
    medicinraadet_status.Add(a.medicinraadet_status);
    ema_status.Add(a.ema_status);
  }
};

// Whether two records hold the same case as the export format shows it.
// Outcome and decided_on count only when the file states an outcome: a case
// imported open and decided since is the same case.
std::string FirstDifference(const ApplicationRecord& file, const ApplicationRecord& stored) {
  const RawApplication a = ToRaw(file);
  const RawApplication b = ToRaw(stored);
  const std::pair<const char*, std::pair<const std::string*, const std::string*>> fields[] = {
      {"region", {&a.region, &b.region}},
      {"region_ref", {&a.region_ref, &b.region_ref}},
      {"submitted_on", {&a.submitted_on, &b.submitted_on}},
      {"drug_name", {&a.drug_name, &b.drug_name}},
      {"atc_code", {&a.atc_code, &b.atc_code}},
      {"indication", {&a.indication, &b.indication}},
      {"icd10", {&a.icd10, &b.icd10}},
      {"cancer", {&a.cancer, &b.cancer}},
      {"marketed_dk", {&a.marketed_dk, &b.marketed_dk}},
      {"medicinraadet_status", {&a.medicinraadet_status, &b.medicinraadet_status}},
      {"ema_status", {&a.ema_status, &b.ema_status}},
  };
  for (const auto& [name, values] : fields) {
    if (*values.first != *values.second) return name;
  }
  if (!a.outcome.empty()) {
    if (a.outcome != b.outcome) return "outcome";
    if (a.decided_on != b.decided_on) return "decided_on";
  }
  return "";
}

// A digest of a row's content, to tell a repeated identical row from a
// conflicting one without keeping rows in memory.
std::string Digest(const ApplicationRecord& r) {
  const RawApplication raw = ToRaw(r);
  uint64_t h = 1469598103934665603ull;
  for (const std::string* s : {&raw.case_ref, &raw.region_ref, &raw.region, &raw.submitted_on, &raw.drug_name,
                               &raw.atc_code, &raw.indication, &raw.icd10, &raw.cancer, &raw.marketed_dk,
                               &raw.medicinraadet_status, &raw.ema_status, &raw.outcome, &raw.decided_on}) {
    for (unsigned char c : *s) {
      h ^= c;
      h *= 1099511628211ull;
    }
    h ^= 0x1f;
    h *= 1099511628211ull;
  }
  return absl::StrFormat("%016x", h);
}

ProtocolRecord ProtocolFromRow(const pqxx::row& row) {
  ProtocolRecord p;
  p.id = row[0].as<std::string>();
  p.title = row[1].as<std::string>();
  p.region = row[2].as<std::string>();
  p.department = row[3].as<std::string>();
  p.drug_name = row[4].as<std::string>();
  p.atc_code = row[5].as<std::string>();
  p.indication = row[6].as<std::string>();
  p.icd10 = row[7].as<std::string>();
  p.presented_on = DateOf(row[8]);
  p.state = row[9].as<std::string>();
  p.created_by = row[10].as<std::string>();
  p.created_at = FromMicros(row[11]);
  p.updated_at = FromMicros(row[12]);
  return p;
}

constexpr char kProtocolColumns[] =
    "id, title, region, department, drug_name, atc_code, indication, icd10, presented_on::text, state, created_by, "
    "(extract(epoch from created_at) * 1000000)::bigint, (extract(epoch from updated_at) * 1000000)::bigint";

void LoadNotes(pqxx::work& tx, ProtocolRecord& p) {
  for (const pqxx::row& row : tx.exec_prepared("protocol_notes", p.id)) {
    ProtocolNoteRecord n;
    n.text = row[0].as<std::string>();
    n.noted_on = DateOf(row[1]);
    n.state = row[2].is_null() ? "" : row[2].as<std::string>();
    n.created_by = row[3].as<std::string>();
    n.created_at = FromMicros(row[4]);
    p.notes.push_back(std::move(n));
  }
}

}  // namespace

void IntakeStore::Prepare(pqxx::connection& c) {
  const std::string cols = kApplicationColumns;
  c.prepare("app_get", "SELECT " + cols + " FROM applications WHERE case_ref = $1");
  c.prepare("app_get_for_update", "SELECT " + cols + " FROM applications WHERE case_ref = $1 FOR UPDATE");
  c.prepare("request_find",
            "SELECT resource FROM create_requests WHERE kind = $1 AND principal_id = $2 AND request_id = $3");
  c.prepare("request_claim",
            "INSERT INTO create_requests (kind, principal_id, request_id, resource, created_at) "
            "VALUES ($1, $2, $3, $4, $5::timestamptz) ON CONFLICT DO NOTHING RETURNING resource");
  c.prepare("app_next_block", "SELECT nextval('application_number')");
  // Submissions with their request_ids and their outbox events: one
  // statement, run without BEGIN/COMMIT (it is atomic on its own). Rows are
  // inserted in arrival order (n), so of two rows with one request_id the
  // first is stored and the second skipped like any row whose key (case_ref,
  // region_ref, created_by + request_id) is taken; the caller finds out which
  // by looking. Answers per row whether it was stored. A batch is first
  // written without ON CONFLICT (app_insert_many): the arbiter checks of a
  // speculative insert cost about a tenth of PostgreSQL's CPU per row
  // (docs/BENCHMARKS.md, Intake, session 6), and a taken key is rare; a
  // statement that hits one fails whole and writes nothing, and the batch
  // then runs as app_submit_many.
  const auto submit_many = [](const char* on_conflict) {
    return std::string(
               "WITH input AS (SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], "
               "$5::text[], $6::text[], $7::date[], $8::text[], $9::text[], $10::text[], $11::text[], $12::bool[], "
               "$13::bool[], $14::text[], $15::text[], $16::text[], $17::text[], $18::text[]) WITH ORDINALITY AS "
               "u(principal_id, request_id, case_ref, created_at, region, region_ref, submitted_on, drug_name, "
               "atc_code, indication, icd10, cancer, marketed_dk, medicinraadet_status, ema_status, note, payload, "
               "traceparent, n)), "
               "app AS (INSERT INTO applications (case_ref, region, region_ref, submitted_on, drug_name, atc_code, "
               "indication, icd10, cancer, marketed_dk, medicinraadet_status, ema_status, note, state, source, "
               "created_by, request_id, created_at, updated_at) SELECT case_ref, region, region_ref, submitted_on, "
               "drug_name, atc_code, indication, icd10, cancer, marketed_dk, medicinraadet_status, ema_status, note, "
               "'open', 'submitted', principal_id, request_id, created_at, created_at FROM input ORDER BY n") +
           on_conflict +
           " RETURNING case_ref), "
           "event AS (INSERT INTO outbox (topic, payload, traceparent) SELECT $19, decode(payload, 'hex'), "
           "traceparent FROM input WHERE case_ref IN (SELECT case_ref FROM app) ORDER BY n RETURNING id) "
           "SELECT n, case_ref IN (SELECT case_ref FROM app) FROM input ORDER BY n";
  };
  c.prepare("app_insert_many", submit_many(""));
  c.prepare("app_submit_many", submit_many(" ON CONFLICT DO NOTHING"));
  c.prepare("app_by_request", "SELECT " + cols + " FROM applications WHERE created_by = $1 AND request_id = $2");
  c.prepare("app_by_region_ref", "SELECT case_ref FROM applications WHERE region = $1 AND region_ref = $2");
  c.prepare("app_list", "SELECT " + cols + " FROM applications WHERE " + kApplicationFilter +
                            "AND ($9::date IS NULL OR (submitted_on, case_ref) < ($9::date, $10::text)) "
                            "ORDER BY submitted_on DESC, case_ref DESC LIMIT $11");
  c.prepare("app_export", "SELECT " + cols + " FROM applications WHERE " + kApplicationFilter +
                              "AND case_ref > $9 ORDER BY case_ref LIMIT $10");
  c.prepare("app_any_region_ref",
            "SELECT EXISTS (SELECT 1 FROM applications WHERE " + std::string(kApplicationFilter) +
                "AND region_ref IS NOT NULL)");
  c.prepare("app_withdraw",
            "UPDATE applications SET state = 'withdrawn', withdrawn_by = $2, withdrawn_at = $3::timestamptz, "
            "withdraw_reason = $4, updated_at = $3::timestamptz WHERE case_ref = $1 RETURNING " + cols);
  c.prepare("decision_claim",
            "INSERT INTO applied_decisions (event_id, case_ref, applied_at) VALUES ($1, $2, $3::timestamptz) "
            "ON CONFLICT DO NOTHING RETURNING event_id");
  c.prepare("app_decide",
            "UPDATE applications SET state = 'decided', outcome = $2, decided_on = $3::date, decided_by = $4, "
            "decided_at = $5::timestamptz, decision_reason = $6, updated_at = $5::timestamptz "
            "WHERE case_ref = $1 RETURNING " + cols);
  c.prepare("app_import",
            "INSERT INTO applications (case_ref, region, region_ref, submitted_on, drug_name, atc_code, indication, "
            "icd10, cancer, marketed_dk, medicinraadet_status, ema_status, outcome, decided_on, state, source, "
            "created_by, created_at, updated_at) "
            "SELECT u.*, 'imported', $16, $17::timestamptz, $17::timestamptz FROM unnest($1::text[], $2::text[], "
            "$3::text[], $4::date[], $5::text[], $6::text[], $7::text[], $8::text[], $9::bool[], $10::bool[], "
            "$11::text[], $12::text[], $13::text[], $14::date[], $15::text[]) AS u "
            "ON CONFLICT DO NOTHING RETURNING case_ref");
  c.prepare("app_get_many", "SELECT " + cols + " FROM applications WHERE case_ref = ANY($1::text[])");
  c.prepare("outbox_batch",
            "INSERT INTO outbox (topic, payload, traceparent) SELECT $1, decode(p, 'hex'), $3 "
            "FROM unnest($2::text[]) WITH ORDINALITY AS t(p, n) ORDER BY n");

  const std::string pcols = kProtocolColumns;
  c.prepare("protocol_next_number", "SELECT nextval('protocol_number')");
  c.prepare("protocol_insert",
            "INSERT INTO protocols (id, title, region, department, drug_name, atc_code, indication, icd10, "
            "presented_on, state, created_by, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, "
            "$9::date, 'presented', $10, $11::timestamptz, $11::timestamptz) ON CONFLICT DO NOTHING RETURNING id");
  c.prepare("protocol_get", "SELECT " + pcols + " FROM protocols WHERE id = $1");
  c.prepare("protocol_get_for_update", "SELECT " + pcols + " FROM protocols WHERE id = $1 FOR UPDATE");
  c.prepare("protocol_list",
            "SELECT " + pcols + " FROM protocols WHERE ($1::int IS NULL OR (presented_on >= make_date($1, 1, 1) "
            "AND presented_on < make_date($1 + 1, 1, 1))) AND ($2::text IS NULL OR state = $2) "
            "AND ($3::date IS NULL OR (presented_on, id) < ($3::date, $4::text)) "
            "ORDER BY presented_on DESC, id DESC LIMIT $5");
  c.prepare("protocol_notes",
            "SELECT text, noted_on::text, state, created_by, (extract(epoch from created_at) * 1000000)::bigint "
            "FROM protocol_notes WHERE protocol_id = $1 ORDER BY id");
  c.prepare("protocol_note_insert",
            "INSERT INTO protocol_notes (protocol_id, text, noted_on, state, created_by, created_at) "
            "VALUES ($1, $2, $3::date, $4, $5, $6::timestamptz) RETURNING id");
  c.prepare("protocol_set_state",
            "UPDATE protocols SET state = coalesce($2, state), updated_at = $3::timestamptz WHERE id = $1");
}

absl::StatusOr<int64_t> IntakeStore::NextApplicationNumber() {
  absl::MutexLock lock(&number_mu_);
  if (next_number_ >= number_limit_) {
    int64_t block = 0;
    RETURN_IF_ERROR(pool_.Run([&](pqxx::work& tx) -> absl::Status {
      block = tx.exec_prepared1("app_next_block")[0].as<int64_t>();
      return absl::OkStatus();
    }));
    next_number_ = block * kNumberBlock;
    number_limit_ = next_number_ + kNumberBlock;
  }
  return next_number_++;
}

IntakeStore::IntakeStore(db::Pool& pool, GroupCommitOptions submit_batching) : pool_(pool) {
  submits_ = std::make_unique<GroupCommit<PendingSubmit, BatchOutcome>>(
      submit_batching, [this](const std::vector<const PendingSubmit*>& batch) {
        if (batch.size() > 1) return WriteSubmitBatch(batch);
        // Nobody else waiting: the single-row statement, one round trip.
        std::vector<BatchOutcome> out(1);
        out[0].result = SubmitOne(*batch[0]);
        return out;
      });
}

absl::StatusOr<IntakeStore::PendingSubmit> IntakeStore::PrepareSubmit(ApplicationRecord record,
                                                                      const std::string& principal_id,
                                                                      const std::string& request_id, absl::Time now,
                                                                      int case_year, const EventPayloadFn& event) {
  PendingSubmit p;
  record.state = kStateOpen;
  record.source = kSourceSubmitted;
  record.outcome.clear();
  record.decided_on.reset();
  record.created_by = principal_id;
  record.created_at = now;
  record.updated_at = now;
  ASSIGN_OR_RETURN(const int64_t number, NextApplicationNumber());
  record.case_ref = absl::StrFormat("A-%04d-%06d", case_year, number);
  // The event is built before the statement so that the application (with
  // its request_id) and its outbox row are one statement.
  p.payload = event(record);
  p.record = std::move(record);
  p.principal_id = principal_id;
  p.request_id = request_id;
  p.now_text = Rfc3339(now);
  // Whoever writes the batch runs in its own caller's trace context.
  p.traceparent = log::CurrentTraceparent();
  p.case_year = case_year;
  p.event = event;
  return p;
}

absl::StatusOr<IntakeStore::Submitted> IntakeStore::SubmitApplication(ApplicationRecord record,
                                                                      const std::string& principal_id,
                                                                      const std::string& request_id, absl::Time now,
                                                                      int case_year, const EventPayloadFn& event) {
  ASSIGN_OR_RETURN(PendingSubmit pending, PrepareSubmit(std::move(record), principal_id, request_id, now, case_year,
                                                        event));
  BatchOutcome outcome = submits_->Run(pending);
  if (outcome.alone) return SubmitOne(std::move(pending));
  return std::move(outcome.result);
}

void IntakeStore::StartSubmitApplication(ApplicationRecord record, const std::string& principal_id,
                                         const std::string& request_id, absl::Time now, int case_year,
                                         const EventPayloadFn& event, SubmitDone done) {
  absl::StatusOr<PendingSubmit> pending =
      PrepareSubmit(std::move(record), principal_id, request_id, now, case_year, event);
  if (!pending.ok()) {
    done(pending.status());
    return;
  }
  submits_->Start(*std::move(pending), [this, done = std::move(done)](const PendingSubmit& p, BatchOutcome outcome) {
    if (outcome.alone) {
      done(SubmitOne(p));
      return;
    }
    done(std::move(outcome.result));
  });
}

namespace {
absl::Status RegionRefTaken(const ApplicationRecord& record, const std::string& other_case_ref) {
  return absl::AlreadyExistsError(absl::StrCat("region ", record.region,
                                               " already has an application with region_ref `", record.region_ref,
                                               "`: ", ApplicationName(record.region, other_case_ref)));
}

// The batch's columns as array literals, in row order.
struct SubmitArrays {
  using PendingSubmit = IntakeStore::PendingSubmit;
  PgArray principal, request, created, note, payload, traceparent;
  ApplicationArrays app;
  explicit SubmitArrays(const std::vector<const PendingSubmit*>& batch) {
    for (const PendingSubmit* p : batch) {
      principal.Add(p->principal_id);
      request.Add(p->request_id);
      created.Add(p->now_text);
      app.Add(p->record);
      note.Add(p->record.note);
      payload.Add(absl::BytesToHexString(p->payload));
      traceparent.Add(p->traceparent);
    }
  }
  pqxx::result Exec(pqxx::transaction_base& tx, const char* statement) {
    return tx.exec_prepared(statement, principal.Done(), request.Done(), app.case_ref.Done(), created.Done(),
                            app.region.Done(), app.region_ref.Done(), app.submitted_on.Done(), app.drug_name.Done(),
                            app.atc_code.Done(), app.indication.Done(), app.icd10.Done(), app.cancer.Done(),
                            app.marketed_dk.Done(), app.medicinraadet_status.Done(), app.ema_status.Done(),
                            note.Done(), payload.Done(), traceparent.Done(), kTopicSubmitted);
  }
};

// The answer for a submission its statement did not store: the first
// result of its request_id (used before, by a committed call or an earlier
// row of the same batch), else ALREADY_EXISTS for a taken region_ref, else
// (its case_ref was taken by an import) it is written again under a new
// number (`alone`).
void AnswerUnstored(pqxx::transaction_base& tx, const IntakeStore::PendingSubmit& p, IntakeStore::BatchOutcome& out) {
  if (pqxx::result app = tx.exec_prepared("app_by_request", p.principal_id, p.request_id); !app.empty()) {
    out.result = IntakeStore::Submitted{ApplicationFromRow(app[0]), true};
    return;
  }
  if (!p.record.region_ref.empty()) {
    pqxx::result taken = tx.exec_prepared("app_by_region_ref", p.record.region, p.record.region_ref);
    if (!taken.empty()) {
      out.result = RegionRefTaken(p.record, taken[0][0].as<std::string>());
      return;
    }
  }
  out.alone = true;
}
}  // namespace

absl::StatusOr<IntakeStore::Submitted> IntakeStore::SubmitOne(PendingSubmit p) {
  Submitted out;
  // A case_ref an import already used is skipped; the numbers move on.
  for (int attempt = 0; attempt < 5; ++attempt) {
    if (attempt > 0) {
      ASSIGN_OR_RETURN(const int64_t number, NextApplicationNumber());
      p.record.case_ref = absl::StrFormat("A-%04d-%06d", p.case_year, number);
      p.payload = p.event(p.record);
    }
    const ApplicationRecord& record = p.record;
    bool case_ref_taken = false;
    // Idempotent by request_id, so the pool may run it again after a broken
    // connection even if the first run committed: the second one replays.
    absl::Status status = pool_.RunAutocommit(
        [&](pqxx::nontransaction& tx) -> absl::Status {
          out = Submitted();
          case_ref_taken = false;
          SubmitArrays one({&p});
          if (one.Exec(tx, "app_submit_many")[0][1].as<bool>()) {
            out.record = record;
            return absl::OkStatus();
          }
          // Nothing written: which key was taken tells the answer.
          BatchOutcome answer;
          AnswerUnstored(tx, p, answer);
          if (answer.alone) {
            case_ref_taken = true;
            return absl::OkStatus();
          }
          if (!answer.result.ok()) return answer.result.status();
          out = *std::move(answer.result);
          return absl::OkStatus();
        },
        /*repeatable=*/true);
    if (!status.ok()) return status;
    if (case_ref_taken) continue;
    return out;
  }
  return absl::InternalError("could not allocate a case reference");
}

namespace {

void BatchFailed(const absl::Status& status, std::vector<IntakeStore::BatchOutcome>& out) {
  // The batch failed as a whole (a row the database refused, an outage):
  // every row is written on its own, so a bad row fails only itself and
  // every caller gets its own answer (a committed row replays).
  log::Warn("submit batch failed; its rows are written one by one",
            {{"rows", out.size()}, {"error", std::string(status.message())}, {"code", static_cast<int>(status.code())}});
  for (IntakeStore::BatchOutcome& o : out) o.alone = true;
}

}  // namespace

std::vector<IntakeStore::BatchOutcome> IntakeStore::WriteSubmitBatch(const std::vector<const PendingSubmit*>& batch) {
  const size_t n = batch.size();
  SubmitArrays arrays(batch);
  std::vector<BatchOutcome> out(n);
  // Idempotent by request_id like SubmitOne, so the pool may run it again
  // after a broken connection even if the first run committed: the rows
  // stored then answer as replays.
  absl::Status status = pool_.RunAutocommit(
      [&](pqxx::nontransaction& tx) -> absl::Status {
        out.assign(n, BatchOutcome());
        std::vector<char> stored(n, 0);
        pqxx::result rows;
        try {
          rows = arrays.Exec(tx, "app_insert_many");
        } catch (const pqxx::unique_violation&) {
          // A key already taken (a request_id retried, a region_ref in use,
          // a case_ref an import took): nothing was written. Again, storing
          // the rows whose keys are free.
          rows = arrays.Exec(tx, "app_submit_many");
        }
        for (const pqxx::row& row : rows) {
          const size_t i = row[0].as<size_t>() - 1;
          if (i >= n) return absl::InternalError("batch statement answered an unknown row");
          stored[i] = row[1].as<bool>();
        }
        for (size_t i = 0; i < n; ++i) {
          if (stored[i]) {
            out[i].result = Submitted{batch[i]->record, false};
          } else {
            AnswerUnstored(tx, *batch[i], out[i]);
          }
        }
        return absl::OkStatus();
      },
      /*repeatable=*/true);
  if (!status.ok()) BatchFailed(status, out);
  return out;
}

absl::StatusOr<ApplicationRecord> IntakeStore::GetApplication(const std::string& case_ref) {
  std::optional<ApplicationRecord> out;
  RETURN_IF_ERROR(pool_.Read([&](pqxx::work& tx) -> absl::Status {
    pqxx::result r = tx.exec_prepared("app_get", case_ref);
    if (!r.empty()) out = ApplicationFromRow(r[0]);
    return absl::OkStatus();
  }));
  if (!out) return absl::NotFoundError(absl::StrCat("no application ", case_ref));
  return *std::move(out);
}

absl::StatusOr<std::vector<ApplicationRecord>> IntakeStore::ListApplications(const ApplicationFilter& f,
                                                                             const std::vector<std::string>& after,
                                                                             int limit) {
  std::vector<ApplicationRecord> out;
  const char* after_date = after.size() == 2 ? after[0].c_str() : nullptr;
  const char* after_ref = after.size() == 2 ? after[1].c_str() : nullptr;
  std::optional<std::string> year;
  if (f.year) year = std::to_string(*f.year);
  RETURN_IF_ERROR(pool_.Read([&](pqxx::work& tx) -> absl::Status {
    out.clear();
    for (const pqxx::row& row :
         tx.exec_prepared("app_list", OrNull(f.region), OrNull(year), OrNull(f.atc_prefix), OrNull(f.drug_name),
                          OrNull(f.indication), OrNull(f.icd10_prefix), OrNull(f.outcome), OrNull(f.state),
                          after_date, after_ref, limit)) {
      out.push_back(ApplicationFromRow(row));
    }
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<std::vector<ApplicationRecord>> IntakeStore::ExportPage(const ApplicationFilter& f,
                                                                       const std::string& after_case_ref, int limit) {
  std::vector<ApplicationRecord> out;
  std::optional<std::string> year;
  if (f.year) year = std::to_string(*f.year);
  RETURN_IF_ERROR(pool_.Read([&](pqxx::work& tx) -> absl::Status {
    out.clear();
    for (const pqxx::row& row :
         tx.exec_prepared("app_export", OrNull(f.region), OrNull(year), OrNull(f.atc_prefix), OrNull(f.drug_name),
                          OrNull(f.indication), OrNull(f.icd10_prefix), OrNull(f.outcome), OrNull(f.state),
                          after_case_ref, limit)) {
      out.push_back(ApplicationFromRow(row));
    }
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<bool> IntakeStore::AnyRegionRef(const ApplicationFilter& f) {
  bool any = false;
  std::optional<std::string> year;
  if (f.year) year = std::to_string(*f.year);
  RETURN_IF_ERROR(pool_.Read([&](pqxx::work& tx) -> absl::Status {
    any = tx.exec_prepared1("app_any_region_ref", OrNull(f.region), OrNull(year), OrNull(f.atc_prefix),
                            OrNull(f.drug_name), OrNull(f.indication), OrNull(f.icd10_prefix), OrNull(f.outcome),
                            OrNull(f.state))[0]
              .as<bool>();
    return absl::OkStatus();
  }));
  return any;
}

absl::StatusOr<ApplicationRecord> IntakeStore::WithdrawApplication(const std::string& case_ref,
                                                                   const std::string& region,
                                                                   const std::string& principal_id,
                                                                   const std::string& reason, absl::Time now,
                                                                   const EventPayloadFn& event) {
  ApplicationRecord out;
  RETURN_IF_ERROR(pool_.Run([&](pqxx::work& tx) -> absl::Status {
    pqxx::result r = tx.exec_prepared("app_get_for_update", case_ref);
    if (r.empty()) return absl::NotFoundError(absl::StrCat("no application ", ApplicationName(region, case_ref)));
    ApplicationRecord current = ApplicationFromRow(r[0]);
    if (current.region != region) {
      return absl::NotFoundError(absl::StrCat("no application ", ApplicationName(region, case_ref)));
    }
    if (current.state == kStateWithdrawn) {
      out = std::move(current);
      return absl::OkStatus();
    }
    if (current.state == kStateDecided) {
      return absl::FailedPreconditionError(absl::StrCat(
          "application ", ApplicationName(region, case_ref), " is decided (", current.outcome,
          current.decided_on ? " on " + csv::FormatIsoDate(*current.decided_on) : "",
          "); a decided application cannot be withdrawn"));
    }
    out = ApplicationFromRow(tx.exec_prepared1("app_withdraw", case_ref, principal_id, Rfc3339(now), reason));
    db::EnqueueOutboxEvent(tx, kTopicWithdrawn, event(out));
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<IntakeStore::DecisionApplied> IntakeStore::ApplyDecision(const DecisionInput& d, absl::Time now) {
  DecisionApplied out;
  RETURN_IF_ERROR(pool_.Run([&](pqxx::work& tx) -> absl::Status {
    out = DecisionApplied();
    const std::string now_text = Rfc3339(now);
    pqxx::result r = tx.exec_prepared("app_get_for_update", d.case_ref);
    if (r.empty() || r[0][1].as<std::string>() != d.region) {
      return absl::NotFoundError(absl::StrCat("no application ", ApplicationName(d.region, d.case_ref)));
    }
    ApplicationRecord current = ApplicationFromRow(r[0]);
    if (tx.exec_prepared("decision_claim", d.event_id, d.case_ref, now_text).empty()) {
      out.record = std::move(current);
      out.duplicate = true;
      return absl::OkStatus();
    }
    if (current.state == kStateDecided) {
      // A decision under another event id: the same one again (an imported
      // decided case, a re-sent event) or one older than what is stored.
      // The stored decision stays; a newer event replaces it.
      const bool same = current.outcome == d.outcome && current.decided_on == d.decided_on;
      const bool older = current.decided_on && d.decided_on && *d.decided_on < *current.decided_on;
      if (same || older) {
        out.record = std::move(current);
        out.already_decided = true;
        out.out_of_date = !same;
        return absl::OkStatus();
      }
    }
    std::optional<std::string> decided_on;
    if (d.decided_on) decided_on = csv::FormatIsoDate(*d.decided_on);
    out.record = ApplicationFromRow(tx.exec_prepared1("app_decide", d.case_ref, d.outcome, OrNull(decided_on),
                                                      d.decided_by, now_text, d.reason));
    return absl::OkStatus();
  }));
  return out;
}

absl::Status IntakeStore::Import(bool validate_only, const std::string& principal_id, absl::Time now,
                                 const EventPayloadFn& event,
                                 const std::function<absl::Status(const ImportBatchFn&)>& body) {
  // The body consumes the client's stream, which cannot be read twice: a
  // retry of the transaction by the pool must not run it again.
  bool ran = false;
  bool rolled_back_on_purpose = false;
  absl::Status status = pool_.Run([&](pqxx::work& tx) -> absl::Status {
    if (ran) return absl::UnavailableError("the database connection broke during the import; nothing was stored");
    ran = true;
    // Rows of this import by case_ref, kept in the database rather than in
    // memory so that a file of millions of rows needs no more memory than one
    // batch. Dropped with the transaction.
    tx.exec("CREATE TEMP TABLE import_seen (case_ref text PRIMARY KEY, line bigint NOT NULL, digest text NOT NULL) "
            "ON COMMIT DROP");
    const std::string now_text = Rfc3339(now);
    ImportBatchFn batch = [&](const std::vector<ImportedRow>& rows) -> absl::StatusOr<ImportBatchResult> {
      ImportBatchResult result;
      if (rows.empty()) return result;
      // 1. Earlier rows of this file with these case_refs.
      PgArray refs;
      for (const ImportedRow& row : rows) refs.Add(row.record.case_ref);
      struct Seen {
        int64_t line;
        std::string digest;
      };
      std::unordered_map<std::string, Seen> seen;
      for (const pqxx::row& r :
           tx.exec_params("SELECT case_ref, line, digest FROM import_seen WHERE case_ref = ANY($1::text[])",
                          refs.Done())) {
        seen[r[0].as<std::string>()] = {r[1].as<int64_t>(), r[2].as<std::string>()};
      }
      // 2. Repeats within the file: identical -> unchanged, else an error.
      std::vector<const ImportedRow*> fresh;
      std::vector<std::string> fresh_digests;
      for (const ImportedRow& row : rows) {
        std::string digest = Digest(row.record);
        auto it = seen.find(row.record.case_ref);
        if (it != seen.end()) {
          if (it->second.digest == digest) {
            ++result.unchanged;
          } else {
            ++result.rejected;
            result.errors.push_back({row.line, "case_ref",
                                     absl::StrCat("`", row.record.case_ref, "` already appears on line ",
                                                  it->second.line, " with other content"),
                                     row.record.case_ref});
          }
          continue;
        }
        seen[row.record.case_ref] = {row.line, digest};
        fresh.push_back(&row);
        fresh_digests.push_back(std::move(digest));
      }
      if (fresh.empty()) return result;
      PgArray seen_refs, seen_lines, seen_digests;
      ApplicationArrays app;
      PgArray outcome, decided_on, state;
      for (size_t i = 0; i < fresh.size(); ++i) {
        const ApplicationRecord& a = fresh[i]->record;
        seen_refs.Add(a.case_ref);
        seen_lines.Add(std::to_string(fresh[i]->line));
        seen_digests.Add(fresh_digests[i]);
        app.Add(a);
        if (a.outcome.empty()) outcome.AddNull(); else outcome.Add(a.outcome);
        if (a.decided_on) decided_on.Add(csv::FormatIsoDate(*a.decided_on)); else decided_on.AddNull();
        state.Add(a.state);
      }
      tx.exec_params("INSERT INTO import_seen (case_ref, line, digest) "
                     "SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[])",
                     seen_refs.Done(), seen_lines.Done(), seen_digests.Done());
      // 3. Store what is new; an already stored case_ref (or a region_ref
      //    the region already uses) is left as it is.
      std::unordered_map<std::string, bool> inserted;
      for (const pqxx::row& r : tx.exec_prepared("app_import", app.case_ref.Done(), app.region.Done(),
                                                  app.region_ref.Done(), app.submitted_on.Done(),
                                                  app.drug_name.Done(), app.atc_code.Done(), app.indication.Done(),
                                                  app.icd10.Done(), app.cancer.Done(), app.marketed_dk.Done(),
                                                  app.medicinraadet_status.Done(), app.ema_status.Done(),
                                                  outcome.Done(), decided_on.Done(), state.Done(), principal_id,
                                                  now_text)) {
        inserted[r[0].as<std::string>()] = true;
      }
      // 4. Compare the others with what is stored.
      PgArray others;
      bool any_other = false;
      for (const ImportedRow* row : fresh) {
        if (!inserted.count(row->record.case_ref)) {
          others.Add(row->record.case_ref);
          any_other = true;
        }
      }
      std::unordered_map<std::string, ApplicationRecord> stored;
      if (any_other) {
        for (const pqxx::row& r : tx.exec_prepared("app_get_many", others.Done())) {
          ApplicationRecord rec = ApplicationFromRow(r);
          stored.emplace(rec.case_ref, std::move(rec));
        }
      }
      PgArray payloads;
      bool any_payload = false;
      for (const ImportedRow* row : fresh) {
        const ApplicationRecord& a = row->record;
        if (inserted.count(a.case_ref)) {
          ++result.stored;
          ApplicationRecord full = a;
          full.source = kSourceImported;
          full.created_by = principal_id;
          full.created_at = now;
          full.updated_at = now;
          payloads.Add(absl::BytesToHexString(event(full)));
          any_payload = true;
          continue;
        }
        ++result.rejected;
        auto it = stored.find(a.case_ref);
        if (it == stored.end()) {
          result.errors.push_back({row->line, "region_ref",
                                   absl::StrCat("region ", a.region, " already has another application with "
                                                "region_ref `", a.region_ref, "`"),
                                   a.case_ref});
          continue;
        }
        std::string diff = FirstDifference(a, it->second);
        if (diff.empty()) {
          --result.rejected;
          ++result.unchanged;
        } else {
          result.errors.push_back({row->line, diff,
                                   absl::StrCat("`", a.case_ref, "` is already stored with another ", diff,
                                                "; an import does not change stored cases"),
                                   a.case_ref});
        }
      }
      // 5. One outbox event per stored case, in file order.
      if (any_payload) {
        tx.exec_prepared("outbox_batch", kTopicImported, payloads.Done(), log::CurrentTraceparent());
      }
      return result;
    };
    RETURN_IF_ERROR(body(batch));
    if (validate_only) {
      rolled_back_on_purpose = true;
      return absl::CancelledError("validate_only: rolled back");
    }
    return absl::OkStatus();
  });
  if (rolled_back_on_purpose) return absl::OkStatus();
  return status;
}

absl::StatusOr<IntakeStore::ProtocolCreated> IntakeStore::CreateProtocol(ProtocolRecord p,
                                                                         const std::string& principal_id,
                                                                         const std::string& request_id,
                                                                         absl::Time now) {
  ProtocolCreated out;
  RETURN_IF_ERROR(pool_.Run([&](pqxx::work& tx) -> absl::Status {
    out = ProtocolCreated();
    const std::string now_text = Rfc3339(now);
    auto replay = [&](const std::string& id) -> absl::Status {
      pqxx::result r = tx.exec_prepared("protocol_get", id);
      if (r.empty()) return absl::InternalError("request_id refers to a missing protocol");
      out.record = ProtocolFromRow(r[0]);
      LoadNotes(tx, out.record);
      out.replayed = true;
      return absl::OkStatus();
    };
    if (pqxx::result r = tx.exec_prepared("request_find", "protocol", principal_id, request_id); !r.empty()) {
      return replay(r[0][0].as<std::string>());
    }
    const int64_t number = tx.exec_prepared1("protocol_next_number")[0].as<int64_t>();
    const std::string id = absl::StrFormat("P-%04d-%04d", p.presented_on.year, number);
    if (tx.exec_prepared("request_claim", "protocol", principal_id, request_id, id, now_text).empty()) {
      pqxx::result r = tx.exec_prepared("request_find", "protocol", principal_id, request_id);
      if (r.empty()) return absl::AbortedError("request_id claimed concurrently; retry");
      return replay(r[0][0].as<std::string>());
    }
    tx.exec_prepared("protocol_insert", id, p.title, p.region, p.department, p.drug_name, p.atc_code, p.indication,
                     p.icd10, csv::FormatIsoDate(p.presented_on), principal_id, now_text);
    out.record = ProtocolFromRow(tx.exec_prepared1("protocol_get", id));
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<ProtocolRecord> IntakeStore::GetProtocol(const std::string& id) {
  std::optional<ProtocolRecord> out;
  RETURN_IF_ERROR(pool_.Read([&](pqxx::work& tx) -> absl::Status {
    out.reset();
    pqxx::result r = tx.exec_prepared("protocol_get", id);
    if (r.empty()) return absl::OkStatus();
    out = ProtocolFromRow(r[0]);
    LoadNotes(tx, *out);
    return absl::OkStatus();
  }));
  if (!out) return absl::NotFoundError(absl::StrCat("no protocol ", ProtocolName(id)));
  return *std::move(out);
}

absl::StatusOr<std::vector<ProtocolRecord>> IntakeStore::ListProtocols(const ProtocolFilter& f,
                                                                       const std::vector<std::string>& after,
                                                                       int limit) {
  std::vector<ProtocolRecord> out;
  std::optional<std::string> year;
  if (f.year) year = std::to_string(*f.year);
  const char* after_date = after.size() == 2 ? after[0].c_str() : nullptr;
  const char* after_id = after.size() == 2 ? after[1].c_str() : nullptr;
  RETURN_IF_ERROR(pool_.Read([&](pqxx::work& tx) -> absl::Status {
    out.clear();
    for (const pqxx::row& row :
         tx.exec_prepared("protocol_list", OrNull(year), OrNull(f.state), after_date, after_id, limit)) {
      out.push_back(ProtocolFromRow(row));
    }
    for (ProtocolRecord& p : out) LoadNotes(tx, p);
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<ProtocolRecord> IntakeStore::AddProtocolNote(const std::string& id, ProtocolNoteRecord note,
                                                            const std::string& principal_id,
                                                            const std::string& request_id, absl::Time now) {
  ProtocolRecord out;
  RETURN_IF_ERROR(pool_.Run([&](pqxx::work& tx) -> absl::Status {
    const std::string now_text = Rfc3339(now);
    pqxx::result r = tx.exec_prepared("protocol_get_for_update", id);
    if (r.empty()) return absl::NotFoundError(absl::StrCat("no protocol ", ProtocolName(id)));
    bool add = true;
    if (!request_id.empty()) {
      add = !tx.exec_prepared("request_claim", "protocol_note", principal_id, request_id, id, now_text).empty();
    }
    if (add) {
      tx.exec_prepared("protocol_note_insert", id, note.text, csv::FormatIsoDate(note.noted_on),
                       EmptyAsNull(note.state), principal_id, now_text);
      tx.exec_prepared("protocol_set_state", id, EmptyAsNull(note.state), now_text);
    }
    out = ProtocolFromRow(tx.exec_prepared1("protocol_get", id));
    LoadNotes(tx, out);
    return absl::OkStatus();
  }));
  return out;
}

}  // namespace medkoord::intake
