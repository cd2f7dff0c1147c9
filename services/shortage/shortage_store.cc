#include "services/shortage/shortage_store.h"

#include <atomic>
#include <utility>

#include <google/protobuf/util/json_util.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/status.h"
#include "nlohmann/json.hpp"
#include "services/shortage/allocation.h"
#include "services/shortage/lifecycle.h"
#include "services/shortage/validation.h"

namespace medkoord::shortage {
namespace {

// Instants travel as microseconds since the epoch; dates as ISO text, ""
// for none (NULLIF makes it NULL).
#define TS(n) "('epoch'::timestamptz + $" #n "::bigint * interval '1 microsecond')"
#define US(col) "(extract(epoch from " col ") * 1000000)::bigint"

constexpr char kShortageColumns[] =
    "id, drug_name, atc_code, strength, form, pack, announced_on::text, coalesce(expected_start::text, ''), "
    "coalesce(expected_end::text, ''), status, criticality, source, notes, created_by, " US("created_at") ", "
    "updated_by, " US("updated_at");
constexpr char kPositionColumns[] =
    "id, shortage_id, region, stock_packs, weekly_consumption_millipacks, patients_on_treatment, " US("as_of") ", "
    "notes, reported_by, " US("reported_at");
constexpr char kAllocationColumns[] =
    "id, shortage_id, state, quantity_packs, source, source_note, array_to_json(reasoning)::text, "
    "array_to_string(based_on_positions, ','), amended, amendment_reason, proposed_by, " US("proposed_at") ", "
    "coalesce(approved_by, ''), coalesce(" US("approved_at") ", 0)";
constexpr char kMeetingColumns[] =
    "id, shortage_id, meeting_date::text, title, array_to_json(participants)::text, "
    "array_to_json(decisions)::text, minutes, created_by, " US("created_at");
constexpr char kActionColumns[] =
    "id, shortage_id, title, description, owner, coalesce(due_on::text, ''), status, coalesce(meeting_id, 0), "
    "created_by, " US("created_at") ", updated_by, " US("updated_at");
constexpr char kGuidanceColumns[] = "shortage_id, version, content::text, published_by, " US("published_at");

struct Statement {
  const char* name;
  std::string sql;
};

const std::vector<Statement>& Statements() {
  static const auto* statements = new std::vector<Statement>{
      {"shortage_by_request", "SELECT id FROM shortages WHERE request_id = $1"},
      {"shortage_next_number", "SELECT nextval('shortage_number')"},
      {"shortage_insert",
       "INSERT INTO shortages (id, drug_name, atc_code, strength, form, pack, announced_on, expected_start, "
       "expected_end, status, criticality, source, notes, created_by, created_at, updated_by, updated_at, "
       "request_id) VALUES ($1, $2, $3, $4, $5, $6, $7::date, NULLIF($8, '')::date, NULLIF($9, '')::date, 1, "
       "$10, $11, $12, $13, " TS(14) ", $13, " TS(14) ", NULLIF($15, ''))"},
      {"shortage_select", absl::StrCat("SELECT ", kShortageColumns, " FROM shortages WHERE id = $1")},
      {"shortage_lock", absl::StrCat("SELECT ", kShortageColumns, " FROM shortages WHERE id = $1 FOR UPDATE")},
      {"shortage_update",
       "UPDATE shortages SET expected_start = NULLIF($2, '')::date, expected_end = NULLIF($3, '')::date, "
       "criticality = $4, source = $5, notes = $6, updated_by = $7, updated_at = " TS(8) " WHERE id = $1"},
      {"shortage_set_status",
       "UPDATE shortages SET status = $2, updated_by = $3, updated_at = " TS(4) " WHERE id = $1"},
      {"history_insert",
       "INSERT INTO shortage_history (shortage_id, kind, from_status, to_status, changed_fields, reason, "
       "changed_by, changed_at) VALUES ($1, $2, $3, $4, "
       "ARRAY(SELECT jsonb_array_elements_text($5::jsonb)), $6, $7, " TS(8) ")"},
      {"history_select",
       "SELECT kind, from_status, to_status, array_to_json(changed_fields)::text, reason, changed_by, "
       US("changed_at") " FROM shortage_history WHERE shortage_id = $1 ORDER BY id"},

      {"position_by_request", absl::StrCat("SELECT ", kPositionColumns, " FROM positions WHERE request_id = $1")},
      {"position_insert",
       "INSERT INTO positions (shortage_id, region, stock_packs, weekly_consumption_millipacks, "
       "patients_on_treatment, as_of, notes, reported_by, reported_at, request_id) VALUES ($1, $2, $3, $4, $5, "
       TS(6) ", $7, $8, " TS(9) ", NULLIF($10, '')) RETURNING id"},
      {"positions_current",
       absl::StrCat("SELECT DISTINCT ON (region) ", kPositionColumns,
                    " FROM positions WHERE shortage_id = $1 ORDER BY region, as_of DESC, id DESC")},

      {"allocation_by_request", "SELECT id, shortage_id FROM allocations WHERE request_id = $1"},
      {"allocation_insert",
       "INSERT INTO allocations (shortage_id, state, quantity_packs, source, source_note, reasoning, "
       "based_on_positions, proposed_by, proposed_at, request_id) VALUES ($1, 1, $2, $3, $4, "
       "ARRAY(SELECT jsonb_array_elements_text($5::jsonb)), "
       "ARRAY(SELECT jsonb_array_elements_text($6::jsonb)::bigint), $7, " TS(8) ", NULLIF($9, '')) RETURNING id"},
      {"allocation_line_insert",
       "INSERT INTO allocation_lines (allocation_id, region, packs, proposed_packs, minimum_packs, "
       "stock_packs_before, weekly_consumption_millipacks, patients_on_treatment) "
       "VALUES ($1, $2, $3, $3, $4, $5, $6, $7)"},
      {"allocation_select",
       absl::StrCat("SELECT ", kAllocationColumns, " FROM allocations WHERE shortage_id = $1 AND id = $2")},
      {"allocation_lock",
       absl::StrCat("SELECT ", kAllocationColumns,
                    " FROM allocations WHERE shortage_id = $1 AND id = $2 FOR UPDATE")},
      {"allocation_lines",
       "SELECT region, packs, proposed_packs, minimum_packs, stock_packs_before, weekly_consumption_millipacks, "
       "patients_on_treatment FROM allocation_lines WHERE allocation_id = $1 ORDER BY region"},
      {"allocation_approve",
       "UPDATE allocations SET state = 2, amended = $2, amendment_reason = $3, approved_by = $4, "
       "approved_at = " TS(5) " WHERE id = $1"},
      {"allocation_line_update", "UPDATE allocation_lines SET packs = $3 WHERE allocation_id = $1 AND region = $2"},

      {"guidance_by_request", absl::StrCat("SELECT ", kGuidanceColumns, " FROM guidance WHERE request_id = $1")},
      {"guidance_max_version", "SELECT coalesce(max(version), 0) FROM guidance WHERE shortage_id = $1"},
      {"guidance_insert",
       "INSERT INTO guidance (shortage_id, version, content, published_by, published_at, request_id) "
       "VALUES ($1, $2, $3::jsonb, $4, " TS(5) ", NULLIF($6, ''))"},
      {"guidance_select",
       absl::StrCat("SELECT ", kGuidanceColumns, " FROM guidance WHERE shortage_id = $1 AND version = $2")},
      {"guidance_latest",
       absl::StrCat("SELECT ", kGuidanceColumns,
                    " FROM guidance WHERE shortage_id = $1 ORDER BY version DESC LIMIT 1")},

      {"meeting_by_request", absl::StrCat("SELECT ", kMeetingColumns, " FROM meetings WHERE request_id = $1")},
      {"meeting_insert",
       "INSERT INTO meetings (shortage_id, meeting_date, title, participants, decisions, minutes, created_by, "
       "created_at, request_id) VALUES ($1, $2::date, $3, ARRAY(SELECT jsonb_array_elements_text($4::jsonb)), "
       "ARRAY(SELECT jsonb_array_elements_text($5::jsonb)), $6, $7, " TS(8) ", NULLIF($9, '')) RETURNING id"},
      {"meeting_exists", "SELECT 1 FROM meetings WHERE shortage_id = $1 AND id = $2"},

      {"action_by_request", absl::StrCat("SELECT ", kActionColumns, " FROM actions WHERE request_id = $1")},
      {"action_insert",
       "INSERT INTO actions (shortage_id, title, description, owner, due_on, status, meeting_id, created_by, "
       "created_at, updated_by, updated_at, request_id) VALUES ($1, $2, $3, $4, NULLIF($5, '')::date, $6, "
       "NULLIF($7, 0), $8, " TS(9) ", $8, " TS(9) ", NULLIF($10, '')) RETURNING id"},
      {"action_lock",
       absl::StrCat("SELECT ", kActionColumns, " FROM actions WHERE shortage_id = $1 AND id = $2 FOR UPDATE")},
      {"action_update",
       "UPDATE actions SET title = $2, description = $3, owner = $4, due_on = NULLIF($5, '')::date, status = $6, "
       "updated_by = $7, updated_at = " TS(8) " WHERE id = $1"},

      // The event log. event_next must be the last write of a transaction:
      // it holds the counter row lock until COMMIT (commit-order numbering).
      {"event_next", "UPDATE event_counter SET last_sequence = last_sequence + 1 RETURNING last_sequence"},
      {"event_insert",
       "INSERT INTO events (sequence, type, shortage_id, atc_code, region, payload, created_at) "
       "VALUES ($1, $2, $3, $4, $5, $6, " TS(7) ")"},
      {"event_notify", absl::StrCat("SELECT pg_notify('", kEventChannel, "', $1)")},
      {"events_after",
       "SELECT sequence, type, shortage_id, atc_code, region, payload FROM events WHERE sequence > $1 "
       "ORDER BY sequence LIMIT $2"},
      {"event_head", "SELECT last_sequence FROM event_counter"},
      {"events_oldest", "SELECT coalesce(min(sequence), (SELECT last_sequence + 1 FROM event_counter)) FROM events"},
      // Retention: one replica at a time (the others skip) removes a prefix
      // of the log, oldest first, stopping at the first event that is new
      // enough or among the last $3 numbers. Only ever a prefix, so that what
      // is kept is contiguous even when replicas' clocks disagree a little.
      {"events_prune_lock", "SELECT pg_try_advisory_xact_lock(hashtext('medkoord.shortage.events_prune'))"},
      {"events_prune",
       "WITH oldest AS (SELECT sequence, created_at FROM events ORDER BY sequence LIMIT $1), "
       "cap AS (SELECT last_sequence - $3 AS last FROM event_counter), "
       "stop AS (SELECT min(sequence) AS at FROM oldest WHERE created_at >= " TS(2) " OR sequence > (SELECT last FROM cap)) "
       "DELETE FROM events WHERE sequence IN (SELECT sequence FROM oldest "
       "WHERE sequence < coalesce((SELECT at FROM stop), 9223372036854775807))"},
  };
  return *statements;
}

int64_t Micros(absl::Time t) { return absl::ToUnixMicros(t); }

void SetTimestamp(google::protobuf::Timestamp* ts, int64_t micros) {
  ts->set_seconds(micros >= 0 ? micros / 1000000 : (micros - 999999) / 1000000);
  ts->set_nanos(static_cast<int32_t>((micros - ts->seconds() * 1000000) * 1000));
}

int64_t TimestampMicros(const google::protobuf::Timestamp& ts) {
  return ts.seconds() * 1000000 + ts.nanos() / 1000;
}

void SetStamp(common::v1::ChangeStamp* stamp, const std::string& principal_id, int64_t micros) {
  stamp->set_principal_id(principal_id);
  SetTimestamp(stamp->mutable_time(), micros);
}

std::string DateText(const google::type::Date& d) {
  return absl::StrFormat("%04d-%02d-%02d", d.year(), d.month(), d.day());
}
std::string OptionalDateText(bool has, const google::type::Date& d) { return has ? DateText(d) : ""; }

bool ParseDateText(const std::string& text, google::type::Date* out) {
  int y = 0, m = 0, d = 0;
  if (text.empty() || std::sscanf(text.c_str(), "%d-%d-%d", &y, &m, &d) != 3) return false;
  out->set_year(y);
  out->set_month(m);
  out->set_day(d);
  return true;
}

std::string JsonArray(const google::protobuf::RepeatedPtrField<std::string>& items) {
  return nlohmann::json(std::vector<std::string>(items.begin(), items.end())).dump();
}
std::string JsonArray(const std::vector<std::string>& items) { return nlohmann::json(items).dump(); }

std::vector<std::string> ParseJsonArray(const std::string& text) {
  if (text.empty()) return {};
  auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_array()) return {};
  std::vector<std::string> out;
  for (const auto& item : j) out.push_back(item.is_string() ? item.get<std::string>() : item.dump());
  return out;
}

absl::Status NotFound(const std::string& what) { return absl::NotFoundError(absl::StrCat(what, " not found")); }

// ---- row mapping ---------------------------------------------------------

v1::ShortageRecord ShortageFromRow(const pqxx::row& r) {
  v1::ShortageRecord s;
  s.set_name(ShortageName(r[0].as<std::string>()));
  s.mutable_drug()->set_name(r[1].as<std::string>());
  s.mutable_drug()->set_atc_code(r[2].as<std::string>());
  s.mutable_drug()->set_strength(r[3].as<std::string>());
  s.mutable_drug()->set_form(r[4].as<std::string>());
  s.mutable_drug()->set_pack(r[5].as<std::string>());
  ParseDateText(r[6].as<std::string>(), s.mutable_announced_on());
  google::type::Date d;
  if (ParseDateText(r[7].as<std::string>(), &d)) *s.mutable_expected_start() = d;
  if (ParseDateText(r[8].as<std::string>(), &d)) *s.mutable_expected_end() = d;
  s.set_status(static_cast<v1::ShortageStatus>(r[9].as<int>()));
  s.set_criticality(static_cast<v1::Criticality>(r[10].as<int>()));
  s.set_source(r[11].as<std::string>());
  s.set_notes(r[12].as<std::string>());
  SetStamp(s.mutable_created(), r[13].as<std::string>(), r[14].as<int64_t>());
  SetStamp(s.mutable_updated(), r[15].as<std::string>(), r[16].as<int64_t>());
  return s;
}

v1::RegionalPosition PositionFromRow(const pqxx::row& r) {
  v1::RegionalPosition p;
  p.set_name(ChildResourceName(r[1].as<std::string>(), "positions", r[0].as<std::string>()));
  p.set_region(static_cast<common::v1::Region>(r[2].as<int>()));
  p.set_stock_packs(r[3].as<int64_t>());
  const int64_t millipacks = r[4].as<int64_t>();
  p.set_weekly_consumption_packs(MillipacksToPacks(millipacks));
  p.set_patients_on_treatment(r[5].as<int>());
  SetTimestamp(p.mutable_as_of(), r[6].as<int64_t>());
  p.set_notes(r[7].as<std::string>());
  SetStamp(p.mutable_reported(), r[8].as<std::string>(), r[9].as<int64_t>());
  SetWeeksOfCover(p.mutable_weeks_of_cover(), WeeksOfCover(p.stock_packs(), millipacks));
  return p;
}

v1::Allocation AllocationFromRow(pqxx::work& tx, const pqxx::row& r) {
  v1::Allocation a;
  const int64_t id = r[0].as<int64_t>();
  const std::string shortage_id = r[1].as<std::string>();
  a.set_name(ChildResourceName(shortage_id, "allocations", std::to_string(id)));
  a.set_state(static_cast<v1::AllocationState>(r[2].as<int>()));
  a.set_quantity_packs(r[3].as<int64_t>());
  a.set_source(static_cast<v1::AllocationSource>(r[4].as<int>()));
  a.set_source_note(r[5].as<std::string>());
  for (std::string& line : ParseJsonArray(r[6].as<std::string>())) a.add_reasoning(std::move(line));
  for (absl::string_view p : absl::StrSplit(r[7].as<std::string>(), ',', absl::SkipEmpty())) {
    a.add_based_on_positions(ChildResourceName(shortage_id, "positions", std::string(p)));
  }
  a.set_amended(r[8].as<bool>());
  a.set_amendment_reason(r[9].as<std::string>());
  SetStamp(a.mutable_proposed(), r[10].as<std::string>(), r[11].as<int64_t>());
  if (a.state() == v1::ALLOCATION_STATE_APPROVED) {
    SetStamp(a.mutable_approved(), r[12].as<std::string>(), r[13].as<int64_t>());
  }
  for (const pqxx::row& l : tx.exec_prepared("allocation_lines", id)) {
    v1::AllocationLine* line = a.add_lines();
    line->set_region(static_cast<common::v1::Region>(l[0].as<int>()));
    line->set_packs(l[1].as<int64_t>());
    line->set_proposed_packs(l[2].as<int64_t>());
    line->set_minimum_packs(l[3].as<int64_t>());
    line->set_stock_packs_before(l[4].as<int64_t>());
    const int64_t millipacks = l[5].as<int64_t>();
    line->set_weekly_consumption_packs(MillipacksToPacks(millipacks));
    line->set_patients_on_treatment(l[6].as<int>());
    SetWeeksOfCover(line->mutable_weeks_of_cover_before(), WeeksOfCover(line->stock_packs_before(), millipacks));
    SetWeeksOfCover(line->mutable_weeks_of_cover_after(), WeeksOfCover(line->stock_packs_before() + line->packs(), millipacks));
  }
  return a;
}

absl::StatusOr<v1::Guidance> GuidanceFromRow(const pqxx::row& r) {
  v1::Guidance g;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  auto status = google::protobuf::util::JsonStringToMessage(r[2].as<std::string>(), &g, options);
  if (!status.ok()) return absl::InternalError("stored guidance does not parse");
  g.set_version(r[1].as<int>());
  g.set_name(ChildResourceName(r[0].as<std::string>(), "guidance", std::to_string(g.version())));
  SetStamp(g.mutable_published(), r[3].as<std::string>(), r[4].as<int64_t>());
  return g;
}

v1::Meeting MeetingFromRow(const pqxx::row& r) {
  v1::Meeting m;
  m.set_name(ChildResourceName(r[1].as<std::string>(), "meetings", r[0].as<std::string>()));
  ParseDateText(r[2].as<std::string>(), m.mutable_meeting_date());
  m.set_title(r[3].as<std::string>());
  for (std::string& p : ParseJsonArray(r[4].as<std::string>())) m.add_participants(std::move(p));
  for (std::string& d : ParseJsonArray(r[5].as<std::string>())) m.add_decisions(std::move(d));
  m.set_minutes(r[6].as<std::string>());
  SetStamp(m.mutable_created(), r[7].as<std::string>(), r[8].as<int64_t>());
  return m;
}

v1::Action ActionFromRow(const pqxx::row& r) {
  v1::Action a;
  const std::string shortage_id = r[1].as<std::string>();
  a.set_name(ChildResourceName(shortage_id, "actions", r[0].as<std::string>()));
  a.set_title(r[2].as<std::string>());
  a.set_description(r[3].as<std::string>());
  a.set_owner(r[4].as<std::string>());
  google::type::Date d;
  if (ParseDateText(r[5].as<std::string>(), &d)) *a.mutable_due_on() = d;
  a.set_status(static_cast<v1::ActionStatus>(r[6].as<int>()));
  const int64_t meeting = r[7].as<int64_t>();
  if (meeting != 0) a.set_meeting(ChildResourceName(shortage_id, "meetings", std::to_string(meeting)));
  SetStamp(a.mutable_created(), r[8].as<std::string>(), r[9].as<int64_t>());
  SetStamp(a.mutable_updated(), r[10].as<std::string>(), r[11].as<int64_t>());
  return a;
}

// ---- shared steps inside a transaction ----------------------------------

absl::StatusOr<v1::ShortageRecord> LoadShortage(pqxx::work& tx, const std::string& id, bool lock) {
  pqxx::result r = tx.exec_prepared(lock ? "shortage_lock" : "shortage_select", id);
  if (r.empty()) return NotFound(ShortageName(id));
  return ShortageFromRow(r[0]);
}

void LoadHistory(pqxx::work& tx, const std::string& id, v1::ShortageRecord* s) {
  for (const pqxx::row& r : tx.exec_prepared("history_select", id)) {
    v1::ShortageHistoryEntry* h = s->add_history();
    h->set_kind(static_cast<v1::ShortageHistoryEntry::Kind>(r[0].as<int>()));
    h->set_from_status(static_cast<v1::ShortageStatus>(r[1].as<int>()));
    h->set_to_status(static_cast<v1::ShortageStatus>(r[2].as<int>()));
    for (std::string& f : ParseJsonArray(r[3].as<std::string>())) h->add_changed_fields(std::move(f));
    h->set_reason(r[4].as<std::string>());
    SetStamp(h->mutable_changed(), r[5].as<std::string>(), r[6].as<int64_t>());
  }
}

void AddHistory(pqxx::work& tx, const std::string& id, v1::ShortageHistoryEntry::Kind kind, int from, int to,
                const std::vector<std::string>& fields, const std::string& reason, const Actor& actor) {
  tx.exec_prepared("history_insert", id, static_cast<int>(kind), from, to, JsonArray(fields), reason,
                   actor.principal_id, Micros(actor.time));
}

std::string AtcOf(const v1::ShortageRecord& s) { return s.drug().atc_code(); }

// Numbers the event and writes it; the last statements of every writing
// transaction (see event_next).
void AppendEvent(pqxx::work& tx, v1::ShortageEvent event, const v1::ShortageRecord& shortage, int region,
                 const Actor& actor) {
  const int64_t sequence = tx.exec_prepared1("event_next")[0].as<int64_t>();
  event.set_sequence(sequence);
  event.set_shortage(shortage.name());
  SetStamp(event.mutable_changed(), actor.principal_id, Micros(actor.time));
  const std::string payload = event.SerializeAsString();
  const std::string id = shortage.name().substr(std::string("shortages/").size());
  tx.exec_prepared("event_insert", sequence, static_cast<int>(event.type()), id, AtcOf(shortage), region,
                   pqxx::binarystring(payload.data(), payload.size()), Micros(actor.time));
  tx.exec_prepared("event_notify", std::to_string(sequence));
}

v1::ShortageEvent Event(v1::EventType type) {
  v1::ShortageEvent e;
  e.set_type(type);
  return e;
}

// Runs a read or write in a transaction and returns what it produced.
template <typename T>
absl::StatusOr<T> RunFor(db::Pool& pool, const std::function<absl::StatusOr<T>(pqxx::work&)>& fn) {
  std::optional<T> out;
  absl::Status status = pool.Run([&](pqxx::work& tx) -> absl::Status {
    out.reset();  // Pool::Run may retry after a broken connection
    absl::StatusOr<T> result = fn(tx);
    if (!result.ok()) return result.status();
    out = *std::move(result);
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  return *std::move(out);
}

int PageLimit(const PageRequest& page) { return page.page_size + 1; }

template <typename T, typename KeyFn>
Page<T> TrimPage(std::vector<T> items, const PageRequest& page, KeyFn key) {
  Page<T> out;
  if (static_cast<int>(items.size()) > page.page_size) {
    items.resize(page.page_size);
    out.next_after = key(items.back());
  }
  out.items = std::move(items);
  return out;
}

std::string After(const PageRequest& page, size_t i, const std::string& fallback) {
  return page.after.size() > i ? page.after[i] : fallback;
}

}  // namespace

void SetWeeksOfCover(v1::WeeksOfCover* out, const Cover& cover) {
  if (cover.unbounded) {
    out->set_unbounded(true);
  } else {
    out->set_weeks(cover.weeks);
  }
}

void ShortageStore::Prepare(pqxx::connection& connection) {
  for (const Statement& s : Statements()) connection.prepare(s.name, s.sql);
}

// ---- shortages ----------------------------------------------------------------

absl::StatusOr<v1::ShortageRecord> ShortageStore::Announce(const v1::AnnounceShortageRequest& request,
                                                           const Actor& actor) {
  return RunFor<v1::ShortageRecord>(pool_, [&](pqxx::work& tx) -> absl::StatusOr<v1::ShortageRecord> {
    if (!request.request_id().empty()) {
      pqxx::result seen = tx.exec_prepared("shortage_by_request", request.request_id());
      if (!seen.empty()) {
        ASSIGN_OR_RETURN(v1::ShortageRecord s, LoadShortage(tx, seen[0][0].as<std::string>(), false));
        LoadHistory(tx, seen[0][0].as<std::string>(), &s);
        return s;
      }
    }
    std::string id = request.shortage_id();
    if (id.empty()) {
      id = absl::StrFormat("s-%06d", tx.exec_prepared1("shortage_next_number")[0].as<int64_t>());
    } else if (!tx.exec_prepared("shortage_select", id).empty()) {
      return absl::AlreadyExistsError(absl::StrCat(ShortageName(id), " already exists"));
    }
    const v1::ShortageRecord& s = request.shortage();
    tx.exec_prepared("shortage_insert", id, s.drug().name(), s.drug().atc_code(), s.drug().strength(),
                     s.drug().form(), s.drug().pack(), DateText(s.announced_on()),
                     OptionalDateText(s.has_expected_start(), s.expected_start()),
                     OptionalDateText(s.has_expected_end(), s.expected_end()), static_cast<int>(s.criticality()),
                     s.source(), s.notes(), actor.principal_id, Micros(actor.time), request.request_id());
    AddHistory(tx, id, v1::ShortageHistoryEntry::KIND_ANNOUNCED, 0, v1::SHORTAGE_STATUS_ANNOUNCED, {}, "", actor);
    ASSIGN_OR_RETURN(v1::ShortageRecord stored, LoadShortage(tx, id, false));
    v1::ShortageEvent event = Event(v1::EVENT_TYPE_SHORTAGE_ANNOUNCED);
    *event.mutable_shortage_snapshot() = stored;
    AppendEvent(tx, std::move(event), stored, 0, actor);
    LoadHistory(tx, id, &stored);
    return stored;
  });
}

absl::StatusOr<v1::ShortageRecord> ShortageStore::GetShortage(const std::string& id) {
  return RunFor<v1::ShortageRecord>(pool_, [&](pqxx::work& tx) -> absl::StatusOr<v1::ShortageRecord> {
    ASSIGN_OR_RETURN(v1::ShortageRecord s, LoadShortage(tx, id, false));
    LoadHistory(tx, id, &s);
    return s;
  });
}

absl::StatusOr<Page<v1::ShortageRecord>> ShortageStore::ListShortages(const v1::ListShortagesRequest& f,
                                                                      const PageRequest& page) {
  std::vector<std::string> statuses;
  for (int s : f.statuses()) statuses.push_back(std::to_string(s));
  const std::string status_array = absl::StrCat("{", absl::StrJoin(statuses, ","), "}");
  return RunFor<Page<v1::ShortageRecord>>(pool_, [&](pqxx::work& tx) -> absl::StatusOr<Page<v1::ShortageRecord>> {
    // Keyset (announced_on, id) descending; "" parameters switch filters off.
    pqxx::result r = tx.exec_params(
        absl::StrCat("SELECT ", kShortageColumns,
                     " FROM shortages WHERE ($1 = '{}' OR status = ANY($1::smallint[])) "
                     "AND ($2 = '' OR atc_code LIKE $2 || '%') AND criticality >= $3 "
                     "AND ($4 = '' OR announced_on >= $4::date) AND ($5 = '' OR announced_on <= $5::date) "
                     "AND ($6 = '' OR (announced_on, id) < ($6::date, $7)) "
                     "ORDER BY announced_on DESC, id DESC LIMIT $8"),
        status_array, f.atc_prefix(), static_cast<int>(f.min_criticality()),
        OptionalDateText(f.has_announced_from(), f.announced_from()),
        OptionalDateText(f.has_announced_to(), f.announced_to()), After(page, 0, ""), After(page, 1, ""),
        PageLimit(page));
    std::vector<v1::ShortageRecord> items;
    for (const pqxx::row& row : r) items.push_back(ShortageFromRow(row));
    return TrimPage(std::move(items), page, [](const v1::ShortageRecord& s) {
      return std::vector<std::string>{DateText(s.announced_on()), s.name().substr(10)};
    });
  });
}

absl::StatusOr<v1::ShortageRecord> ShortageStore::UpdateShortage(const std::string& id,
                                                                 const v1::UpdateShortageRequest& request,
                                                                 const Actor& actor) {
  return RunFor<v1::ShortageRecord>(pool_, [&](pqxx::work& tx) -> absl::StatusOr<v1::ShortageRecord> {
    ASSIGN_OR_RETURN(v1::ShortageRecord current, LoadShortage(tx, id, true));
    RETURN_IF_ERROR(CheckOpen(current.status(), "updates"));
    const v1::ShortageRecord& in = request.shortage();
    std::vector<std::string> fields;
    for (const std::string& path : request.update_mask().paths()) {
      fields.push_back(path);
      if (path == "expected_start") {
        if (in.has_expected_start()) *current.mutable_expected_start() = in.expected_start();
        else current.clear_expected_start();
      } else if (path == "expected_end") {
        if (in.has_expected_end()) *current.mutable_expected_end() = in.expected_end();
        else current.clear_expected_end();
      } else if (path == "criticality") {
        current.set_criticality(in.criticality());
      } else if (path == "source") {
        current.set_source(in.source());
      } else if (path == "notes") {
        current.set_notes(in.notes());
      }
    }
    if (current.has_expected_start() && current.has_expected_end() &&
        DateOrdinal(current.expected_end()) < DateOrdinal(current.expected_start())) {
      return InvalidField("shortage.expected_end", "is before expected_start");
    }
    tx.exec_prepared("shortage_update", id, OptionalDateText(current.has_expected_start(), current.expected_start()),
                     OptionalDateText(current.has_expected_end(), current.expected_end()),
                     static_cast<int>(current.criticality()), current.source(), current.notes(), actor.principal_id,
                     Micros(actor.time));
    AddHistory(tx, id, v1::ShortageHistoryEntry::KIND_UPDATED, 0, 0, fields, request.reason(), actor);
    ASSIGN_OR_RETURN(v1::ShortageRecord stored, LoadShortage(tx, id, false));
    v1::ShortageEvent event = Event(v1::EVENT_TYPE_SHORTAGE_UPDATED);
    *event.mutable_shortage_snapshot() = stored;
    AppendEvent(tx, std::move(event), stored, 0, actor);
    LoadHistory(tx, id, &stored);
    return stored;
  });
}

absl::StatusOr<v1::ShortageRecord> ShortageStore::Transition(
    const std::string& id, v1::ShortageStatus to, const std::string& reason,
    const std::function<absl::Status(v1::ShortageStatus)>& check, const Actor& actor) {
  return RunFor<v1::ShortageRecord>(pool_, [&](pqxx::work& tx) -> absl::StatusOr<v1::ShortageRecord> {
    ASSIGN_OR_RETURN(v1::ShortageRecord current, LoadShortage(tx, id, true));
    RETURN_IF_ERROR(check(current.status()));
    tx.exec_prepared("shortage_set_status", id, static_cast<int>(to), actor.principal_id, Micros(actor.time));
    AddHistory(tx, id, v1::ShortageHistoryEntry::KIND_STATUS_CHANGED, current.status(), to, {}, reason, actor);
    ASSIGN_OR_RETURN(v1::ShortageRecord stored, LoadShortage(tx, id, false));
    v1::ShortageEvent event = Event(v1::EVENT_TYPE_SHORTAGE_STATUS_CHANGED);
    *event.mutable_shortage_snapshot() = stored;
    AppendEvent(tx, std::move(event), stored, 0, actor);
    LoadHistory(tx, id, &stored);
    return stored;
  });
}

// ---- positions ------------------------------------------------------------------

absl::StatusOr<v1::RegionalPosition> ShortageStore::ReportPosition(const std::string& id,
                                                                   const v1::RegionalPosition& p,
                                                                   const std::string& request_id,
                                                                   const Actor& actor) {
  const std::optional<int64_t> millipacks = ConsumptionToMillipacks(p.weekly_consumption_packs());
  if (!millipacks) return InvalidField("position.weekly_consumption_packs", "is out of range");
  return RunFor<v1::RegionalPosition>(pool_, [&](pqxx::work& tx) -> absl::StatusOr<v1::RegionalPosition> {
    if (!request_id.empty()) {
      pqxx::result seen = tx.exec_prepared("position_by_request", request_id);
      if (!seen.empty()) return PositionFromRow(seen[0]);
    }
    // FOR UPDATE: a concurrent resolve cannot slip in between check and insert.
    ASSIGN_OR_RETURN(v1::ShortageRecord shortage, LoadShortage(tx, id, true));
    RETURN_IF_ERROR(CheckOpen(shortage.status(), "positions"));
    const int64_t as_of = p.has_as_of() ? TimestampMicros(p.as_of()) : Micros(actor.time);
    const int64_t row_id =
        tx.exec_prepared1("position_insert", id, static_cast<int>(p.region()), p.stock_packs(), *millipacks,
                          p.patients_on_treatment(), as_of, p.notes(), actor.principal_id, Micros(actor.time),
                          request_id)[0]
            .as<int64_t>();
    pqxx::result stored = tx.exec_params(
        absl::StrCat("SELECT ", kPositionColumns, " FROM positions WHERE id = $1"), row_id);
    v1::RegionalPosition position = PositionFromRow(stored[0]);
    v1::ShortageEvent event = Event(v1::EVENT_TYPE_POSITION_REPORTED);
    *event.mutable_position() = position;
    AppendEvent(tx, std::move(event), shortage, p.region(), actor);
    return position;
  });
}

absl::StatusOr<Page<v1::RegionalPosition>> ShortageStore::ListPositions(const std::string& id, int region,
                                                                        bool current_only, const PageRequest& page) {
  return RunFor<Page<v1::RegionalPosition>>(
      pool_, [&](pqxx::work& tx) -> absl::StatusOr<Page<v1::RegionalPosition>> {
        if (tx.exec_prepared("shortage_select", id).empty()) return NotFound(ShortageName(id));
        const std::string source =
            current_only ? absl::StrCat("(SELECT DISTINCT ON (region) * FROM positions WHERE shortage_id = $1 "
                                        "ORDER BY region, as_of DESC, id DESC) p")
                         : "positions";
        pqxx::result r = tx.exec_params(
            absl::StrCat("SELECT ", kPositionColumns, " FROM ", source,
                         " WHERE shortage_id = $1 AND ($2 = 0 OR region = $2) "
                         "AND ($3 = '' OR (" US("as_of") ", id) < ($3::bigint, $4::bigint)) "
                         "ORDER BY as_of DESC, id DESC LIMIT $5"),
            id, region, After(page, 0, ""), After(page, 1, "0"), PageLimit(page));
        std::vector<v1::RegionalPosition> items;
        for (const pqxx::row& row : r) items.push_back(PositionFromRow(row));
        return TrimPage(std::move(items), page, [](const v1::RegionalPosition& p) {
          return std::vector<std::string>{std::to_string(TimestampMicros(p.as_of())),
                                          p.name().substr(p.name().rfind('/') + 1)};
        });
      });
}

absl::StatusOr<std::vector<v1::RegionalPosition>> ShortageStore::CurrentPositions(const std::string& id) {
  return RunFor<std::vector<v1::RegionalPosition>>(
      pool_, [&](pqxx::work& tx) -> absl::StatusOr<std::vector<v1::RegionalPosition>> {
        if (tx.exec_prepared("shortage_select", id).empty()) return NotFound(ShortageName(id));
        std::vector<v1::RegionalPosition> out;
        for (const pqxx::row& row : tx.exec_prepared("positions_current", id)) out.push_back(PositionFromRow(row));
        return out;
      });
}

// ---- allocations ----------------------------------------------------------------

absl::StatusOr<v1::Allocation> ShortageStore::ProposeAllocation(const std::string& id,
                                                                const v1::ProposeAllocationRequest& request,
                                                                const PlanFn& plan, const Actor& actor) {
  return RunFor<v1::Allocation>(pool_, [&](pqxx::work& tx) -> absl::StatusOr<v1::Allocation> {
    if (!request.request_id().empty()) {
      pqxx::result seen = tx.exec_prepared("allocation_by_request", request.request_id());
      if (!seen.empty()) {
        pqxx::result row = tx.exec_prepared("allocation_select", seen[0][1].as<std::string>(), seen[0][0].as<int64_t>());
        return AllocationFromRow(tx, row[0]);
      }
    }
    ASSIGN_OR_RETURN(v1::ShortageRecord shortage, LoadShortage(tx, id, true));
    RETURN_IF_ERROR(CheckOpen(shortage.status(), "allocations"));
    std::vector<v1::RegionalPosition> positions;
    for (const pqxx::row& row : tx.exec_prepared("positions_current", id)) positions.push_back(PositionFromRow(row));
    ASSIGN_OR_RETURN(v1::Allocation proposal, plan(positions));
    std::vector<std::string> based_on;
    for (const v1::RegionalPosition& p : positions) based_on.push_back(p.name().substr(p.name().rfind('/') + 1));
    std::vector<std::string> reasoning(proposal.reasoning().begin(), proposal.reasoning().end());
    const int64_t allocation_id =
        tx.exec_prepared1("allocation_insert", id, request.quantity_packs(), static_cast<int>(request.source()),
                          request.source_note(), JsonArray(reasoning), JsonArray(based_on), actor.principal_id,
                          Micros(actor.time), request.request_id())[0]
            .as<int64_t>();
    for (const v1::AllocationLine& line : proposal.lines()) {
      const std::optional<int64_t> millipacks = ConsumptionToMillipacks(line.weekly_consumption_packs());
      tx.exec_prepared("allocation_line_insert", allocation_id, static_cast<int>(line.region()), line.packs(),
                       line.minimum_packs(), line.stock_packs_before(), millipacks.value_or(0),
                       line.patients_on_treatment());
    }
    pqxx::result row = tx.exec_prepared("allocation_select", id, allocation_id);
    v1::Allocation stored = AllocationFromRow(tx, row[0]);
    v1::ShortageEvent event = Event(v1::EVENT_TYPE_ALLOCATION_PROPOSED);
    *event.mutable_allocation() = stored;
    AppendEvent(tx, std::move(event), shortage, 0, actor);
    return stored;
  });
}

absl::StatusOr<v1::Allocation> ShortageStore::ApproveAllocation(const std::string& id, int64_t allocation_id,
                                                                const v1::ApproveAllocationRequest& request,
                                                                const std::function<absl::Status(int64_t)>& check,
                                                                const Actor& actor) {
  return RunFor<v1::Allocation>(pool_, [&](pqxx::work& tx) -> absl::StatusOr<v1::Allocation> {
    ASSIGN_OR_RETURN(v1::ShortageRecord shortage, LoadShortage(tx, id, true));
    RETURN_IF_ERROR(CheckOpen(shortage.status(), "allocation approvals"));
    pqxx::result row = tx.exec_prepared("allocation_lock", id, allocation_id);
    if (row.empty()) return NotFound(request.name());
    v1::Allocation current = AllocationFromRow(tx, row[0]);
    if (current.state() != v1::ALLOCATION_STATE_PROPOSED) {
      return absl::FailedPreconditionError(absl::StrCat(request.name(), " is already approved"));
    }
    RETURN_IF_ERROR(check(current.quantity_packs()));
    bool amended = false;
    for (const v1::AllocationLine& line : request.amended_lines()) {
      for (const v1::AllocationLine& old : current.lines()) {
        if (old.region() == line.region() && old.packs() != line.packs()) amended = true;
      }
      tx.exec_prepared("allocation_line_update", allocation_id, static_cast<int>(line.region()), line.packs());
    }
    tx.exec_prepared("allocation_approve", allocation_id, amended, amended ? request.amendment_reason() : "",
                     actor.principal_id, Micros(actor.time));
    pqxx::result stored_row = tx.exec_prepared("allocation_select", id, allocation_id);
    v1::Allocation stored = AllocationFromRow(tx, stored_row[0]);
    v1::ShortageEvent event = Event(v1::EVENT_TYPE_ALLOCATION_APPROVED);
    *event.mutable_allocation() = stored;
    AppendEvent(tx, std::move(event), shortage, 0, actor);
    return stored;
  });
}

absl::StatusOr<v1::Allocation> ShortageStore::GetAllocation(const std::string& id, int64_t allocation_id) {
  return RunFor<v1::Allocation>(pool_, [&](pqxx::work& tx) -> absl::StatusOr<v1::Allocation> {
    pqxx::result row = tx.exec_prepared("allocation_select", id, allocation_id);
    if (row.empty()) return NotFound(ChildResourceName(id, "allocations", std::to_string(allocation_id)));
    return AllocationFromRow(tx, row[0]);
  });
}

absl::StatusOr<Page<v1::Allocation>> ShortageStore::ListAllocations(const std::string& id, v1::AllocationState state,
                                                                    const PageRequest& page) {
  return RunFor<Page<v1::Allocation>>(pool_, [&](pqxx::work& tx) -> absl::StatusOr<Page<v1::Allocation>> {
    if (tx.exec_prepared("shortage_select", id).empty()) return NotFound(ShortageName(id));
    pqxx::result r = tx.exec_params(absl::StrCat("SELECT ", kAllocationColumns,
                                                 " FROM allocations WHERE shortage_id = $1 AND ($2 = 0 OR state = $2) "
                                                 "AND id < $3 ORDER BY id DESC LIMIT $4"),
                                    id, static_cast<int>(state), After(page, 0, "9223372036854775807"),
                                    PageLimit(page));
    std::vector<v1::Allocation> items;
    for (const pqxx::row& row : r) items.push_back(AllocationFromRow(tx, row));
    return TrimPage(std::move(items), page, [](const v1::Allocation& a) {
      return std::vector<std::string>{a.name().substr(a.name().rfind('/') + 1)};
    });
  });
}

// ---- guidance ---------------------------------------------------------------------

absl::StatusOr<v1::Guidance> ShortageStore::PublishGuidance(const std::string& id, const v1::Guidance& guidance,
                                                            const std::string& request_id, const Actor& actor) {
  v1::Guidance content = guidance;
  content.clear_name();
  content.clear_version();
  content.clear_published();
  std::string json;
  if (!google::protobuf::util::MessageToJsonString(content, &json).ok()) {
    return absl::InternalError("guidance does not serialise");
  }
  return RunFor<v1::Guidance>(pool_, [&](pqxx::work& tx) -> absl::StatusOr<v1::Guidance> {
    if (!request_id.empty()) {
      pqxx::result seen = tx.exec_prepared("guidance_by_request", request_id);
      if (!seen.empty()) return GuidanceFromRow(seen[0]);
    }
    // The shortage row lock serialises version numbering.
    ASSIGN_OR_RETURN(v1::ShortageRecord shortage, LoadShortage(tx, id, true));
    RETURN_IF_ERROR(CheckOpen(shortage.status(), "guidance"));
    const int version = tx.exec_prepared1("guidance_max_version", id)[0].as<int>() + 1;
    tx.exec_prepared("guidance_insert", id, version, json, actor.principal_id, Micros(actor.time), request_id);
    ASSIGN_OR_RETURN(v1::Guidance stored, GuidanceFromRow(tx.exec_prepared1("guidance_select", id, version)));
    v1::ShortageEvent event = Event(v1::EVENT_TYPE_GUIDANCE_PUBLISHED);
    *event.mutable_guidance() = stored;
    AppendEvent(tx, std::move(event), shortage, 0, actor);
    return stored;
  });
}

absl::StatusOr<v1::Guidance> ShortageStore::GetGuidance(const std::string& id, int version) {
  return RunFor<v1::Guidance>(pool_, [&](pqxx::work& tx) -> absl::StatusOr<v1::Guidance> {
    pqxx::result r = version == 0 ? tx.exec_prepared("guidance_latest", id)
                                  : tx.exec_prepared("guidance_select", id, version);
    if (r.empty()) {
      return NotFound(ChildResourceName(id, "guidance", version == 0 ? "latest" : std::to_string(version)));
    }
    return GuidanceFromRow(r[0]);
  });
}

absl::StatusOr<Page<v1::Guidance>> ShortageStore::ListGuidance(const std::string& id, const PageRequest& page) {
  return RunFor<Page<v1::Guidance>>(pool_, [&](pqxx::work& tx) -> absl::StatusOr<Page<v1::Guidance>> {
    if (tx.exec_prepared("shortage_select", id).empty()) return NotFound(ShortageName(id));
    pqxx::result r = tx.exec_params(absl::StrCat("SELECT ", kGuidanceColumns,
                                                 " FROM guidance WHERE shortage_id = $1 AND version < $2 "
                                                 "ORDER BY version DESC LIMIT $3"),
                                    id, After(page, 0, "2147483647"), PageLimit(page));
    std::vector<v1::Guidance> items;
    for (const pqxx::row& row : r) {
      ASSIGN_OR_RETURN(v1::Guidance g, GuidanceFromRow(row));
      items.push_back(std::move(g));
    }
    return TrimPage(std::move(items), page,
                    [](const v1::Guidance& g) { return std::vector<std::string>{std::to_string(g.version())}; });
  });
}

// ---- meetings and actions ------------------------------------------------------------

absl::StatusOr<v1::Meeting> ShortageStore::CreateMeeting(const std::string& id, const v1::Meeting& m,
                                                         const std::string& request_id, const Actor& actor) {
  return RunFor<v1::Meeting>(pool_, [&](pqxx::work& tx) -> absl::StatusOr<v1::Meeting> {
    if (!request_id.empty()) {
      pqxx::result seen = tx.exec_prepared("meeting_by_request", request_id);
      if (!seen.empty()) return MeetingFromRow(seen[0]);
    }
    ASSIGN_OR_RETURN(v1::ShortageRecord shortage, LoadShortage(tx, id, false));
    const int64_t meeting_id =
        tx.exec_prepared1("meeting_insert", id, DateText(m.meeting_date()), m.title(), JsonArray(m.participants()),
                          JsonArray(m.decisions()), m.minutes(), actor.principal_id, Micros(actor.time), request_id)[0]
            .as<int64_t>();
    v1::Meeting stored = MeetingFromRow(
        tx.exec_params1(absl::StrCat("SELECT ", kMeetingColumns, " FROM meetings WHERE id = $1"), meeting_id));
    v1::ShortageEvent event = Event(v1::EVENT_TYPE_MEETING_CREATED);
    *event.mutable_meeting() = stored;
    AppendEvent(tx, std::move(event), shortage, 0, actor);
    return stored;
  });
}

absl::StatusOr<Page<v1::Meeting>> ShortageStore::ListMeetings(const std::string& id, const PageRequest& page) {
  return RunFor<Page<v1::Meeting>>(pool_, [&](pqxx::work& tx) -> absl::StatusOr<Page<v1::Meeting>> {
    if (tx.exec_prepared("shortage_select", id).empty()) return NotFound(ShortageName(id));
    pqxx::result r = tx.exec_params(
        absl::StrCat("SELECT ", kMeetingColumns,
                     " FROM meetings WHERE shortage_id = $1 AND ($2 = '' OR (meeting_date, id) < ($2::date, $3::bigint)) "
                     "ORDER BY meeting_date DESC, id DESC LIMIT $4"),
        id, After(page, 0, ""), After(page, 1, "0"), PageLimit(page));
    std::vector<v1::Meeting> items;
    for (const pqxx::row& row : r) items.push_back(MeetingFromRow(row));
    return TrimPage(std::move(items), page, [](const v1::Meeting& m) {
      return std::vector<std::string>{DateText(m.meeting_date()), m.name().substr(m.name().rfind('/') + 1)};
    });
  });
}

absl::StatusOr<v1::Action> ShortageStore::CreateAction(const std::string& id, const v1::Action& a,
                                                       const std::string& request_id, const Actor& actor) {
  return RunFor<v1::Action>(pool_, [&](pqxx::work& tx) -> absl::StatusOr<v1::Action> {
    if (!request_id.empty()) {
      pqxx::result seen = tx.exec_prepared("action_by_request", request_id);
      if (!seen.empty()) return ActionFromRow(seen[0]);
    }
    ASSIGN_OR_RETURN(v1::ShortageRecord shortage, LoadShortage(tx, id, false));
    int64_t meeting_id = 0;
    if (!a.meeting().empty()) {
      ASSIGN_OR_RETURN(ChildName meeting, ParseChildName(a.meeting(), "meetings", "action.meeting"));
      absl::StatusOr<int64_t> parsed = ParseNumericId(meeting.child_id, "action.meeting");
      if (meeting.shortage_id != id || !parsed.ok() || tx.exec_prepared("meeting_exists", id, *parsed).empty()) {
        return InvalidField("action.meeting", "is not a meeting of this shortage");
      }
      meeting_id = *parsed;
    }
    const int status = a.status() == v1::ACTION_STATUS_UNSPECIFIED ? v1::ACTION_STATUS_OPEN : a.status();
    const int64_t action_id =
        tx.exec_prepared1("action_insert", id, a.title(), a.description(), a.owner(),
                          OptionalDateText(a.has_due_on(), a.due_on()), status, meeting_id, actor.principal_id,
                          Micros(actor.time), request_id)[0]
            .as<int64_t>();
    v1::Action stored = ActionFromRow(tx.exec_prepared1("action_lock", id, action_id));
    v1::ShortageEvent event = Event(v1::EVENT_TYPE_ACTION_CREATED);
    *event.mutable_action() = stored;
    AppendEvent(tx, std::move(event), shortage, 0, actor);
    return stored;
  });
}

absl::StatusOr<v1::Action> ShortageStore::UpdateAction(const std::string& id, int64_t action_id, const v1::Action& in,
                                                       const std::vector<std::string>& paths, const Actor& actor) {
  return RunFor<v1::Action>(pool_, [&](pqxx::work& tx) -> absl::StatusOr<v1::Action> {
    ASSIGN_OR_RETURN(v1::ShortageRecord shortage, LoadShortage(tx, id, false));
    pqxx::result row = tx.exec_prepared("action_lock", id, action_id);
    if (row.empty()) return NotFound(in.name());
    v1::Action current = ActionFromRow(row[0]);
    if (IsTerminal(current.status())) {
      return absl::FailedPreconditionError(absl::StrCat(in.name(), " is closed (done or cancelled)"));
    }
    for (const std::string& path : paths) {
      if (path == "title") current.set_title(in.title());
      if (path == "description") current.set_description(in.description());
      if (path == "owner") current.set_owner(in.owner());
      if (path == "status") current.set_status(in.status());
      if (path == "due_on") {
        if (in.has_due_on()) *current.mutable_due_on() = in.due_on();
        else current.clear_due_on();
      }
    }
    tx.exec_prepared("action_update", action_id, current.title(), current.description(), current.owner(),
                     OptionalDateText(current.has_due_on(), current.due_on()), static_cast<int>(current.status()),
                     actor.principal_id, Micros(actor.time));
    v1::Action stored = ActionFromRow(tx.exec_prepared1("action_lock", id, action_id));
    v1::ShortageEvent event = Event(v1::EVENT_TYPE_ACTION_UPDATED);
    *event.mutable_action() = stored;
    AppendEvent(tx, std::move(event), shortage, 0, actor);
    return stored;
  });
}

absl::StatusOr<Page<v1::Action>> ShortageStore::ListActions(const std::string& id, const std::vector<int>& statuses,
                                                            const PageRequest& page) {
  std::vector<std::string> parts;
  for (int s : statuses) parts.push_back(std::to_string(s));
  const std::string status_array = absl::StrCat("{", absl::StrJoin(parts, ","), "}");
  return RunFor<Page<v1::Action>>(pool_, [&](pqxx::work& tx) -> absl::StatusOr<Page<v1::Action>> {
    if (tx.exec_prepared("shortage_select", id).empty()) return NotFound(ShortageName(id));
    // Soonest due first, undated last: keyset on (coalesce(due_on, 'infinity'), id).
    pqxx::result r = tx.exec_params(
        absl::StrCat("SELECT ", kActionColumns,
                     " FROM actions WHERE shortage_id = $1 AND ($2 = '{}' OR status = ANY($2::smallint[])) "
                     "AND ($3 = '' OR (coalesce(due_on, 'infinity'::date), id) > ($3::date, $4::bigint)) "
                     "ORDER BY coalesce(due_on, 'infinity'::date), id LIMIT $5"),
        id, status_array, After(page, 0, ""), After(page, 1, "0"), PageLimit(page));
    std::vector<v1::Action> items;
    for (const pqxx::row& row : r) items.push_back(ActionFromRow(row));
    return TrimPage(std::move(items), page, [](const v1::Action& a) {
      return std::vector<std::string>{a.has_due_on() ? DateText(a.due_on()) : "infinity",
                                      a.name().substr(a.name().rfind('/') + 1)};
    });
  });
}

// ---- event log ------------------------------------------------------------------------

absl::StatusOr<std::vector<StoredEvent>> ShortageStore::ReadEventsAfter(int64_t after, int limit) {
  return RunFor<std::vector<StoredEvent>>(pool_, [&](pqxx::work& tx) -> absl::StatusOr<std::vector<StoredEvent>> {
    std::vector<StoredEvent> out;
    for (const pqxx::row& r : tx.exec_prepared("events_after", after, limit)) {
      StoredEvent e;
      e.sequence = r[0].as<int64_t>();
      e.type = static_cast<v1::EventType>(r[1].as<int>());
      e.shortage_id = r[2].as<std::string>();
      e.atc_code = r[3].as<std::string>();
      e.region = r[4].as<int>();
      e.payload = pqxx::binarystring(r[5]).str();
      out.push_back(std::move(e));
    }
    return out;
  });
}

absl::StatusOr<int64_t> ShortageStore::HeadSequence() {
  return RunFor<int64_t>(pool_, [&](pqxx::work& tx) -> absl::StatusOr<int64_t> {
    return tx.exec_prepared1("event_head")[0].as<int64_t>();
  });
}

absl::StatusOr<int64_t> ShortageStore::OldestSequence() {
  return RunFor<int64_t>(pool_, [&](pqxx::work& tx) -> absl::StatusOr<int64_t> {
    return tx.exec_prepared1("events_oldest")[0].as<int64_t>();
  });
}

absl::StatusOr<int64_t> ShortageStore::PruneEvents(absl::Time older_than, int64_t keep_last, int batch) {
  int64_t total = 0;
  while (true) {
    // Each batch its own short transaction, so a large first prune never
    // holds locks or a snapshot for long.
    ASSIGN_OR_RETURN(int64_t deleted, RunFor<int64_t>(pool_, [&](pqxx::work& tx) -> absl::StatusOr<int64_t> {
                       if (!tx.exec_prepared1("events_prune_lock")[0].as<bool>()) return int64_t{-1};
                       return static_cast<int64_t>(
                           tx.exec_prepared("events_prune", batch, Micros(older_than), keep_last).affected_rows());
                     }));
    if (deleted < 0) return total;  // another replica is pruning
    total += deleted;
    if (deleted < batch) return total;
  }
}

struct ShortageStore::Listener::Receiver final : pqxx::notification_receiver {
  explicit Receiver(pqxx::connection& c) : pqxx::notification_receiver(c, kEventChannel) {}
  void operator()(const std::string&, int) override { ++received; }
  int64_t received = 0;
};

ShortageStore::Listener::~Listener() {
  receiver_.reset();  // before the connection it refers to
  connection_.reset();
}

absl::Status ShortageStore::Listener::Wait(absl::Duration timeout) {
  try {
    const int64_t micros = std::max<int64_t>(absl::ToInt64Microseconds(timeout), 0);
    connection_->await_notification(micros / 1000000, micros % 1000000);
    if (!connection_->is_open()) return absl::UnavailableError("event listener connection closed");
    return absl::OkStatus();
  } catch (...) {
    return db::StatusFromCurrentException();
  }
}

absl::StatusOr<std::unique_ptr<ShortageStore::Listener>> ShortageStore::Listen() {
  ASSIGN_OR_RETURN(std::unique_ptr<pqxx::connection> connection, pool_.Connect());
  try {
    auto listener = std::unique_ptr<Listener>(new Listener());
    listener->receiver_ = std::make_unique<Listener::Receiver>(*connection);
    listener->connection_ = std::move(connection);
    return listener;
  } catch (...) {
    return db::StatusFromCurrentException();
  }
}

}  // namespace medkoord::shortage
