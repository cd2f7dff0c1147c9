#include "services/shortage/validation.h"

#include <set>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/civil_time.h"
#include "common/csv/validators.h"
#include "services/shortage/allocation.h"

namespace medkoord::shortage {
namespace {

using common::v1::Region;

constexpr size_t kMaxShortText = 200;
constexpr size_t kMaxLongText = 20000;
constexpr int kMaxListItems = 100;

bool IsRegion(Region region) {
  return common::v1::Region_IsValid(region) && region != common::v1::REGION_UNSPECIFIED;
}

void RequireText(FieldViolations& v, const std::string& field, const std::string& value, size_t max = kMaxShortText) {
  if (absl::StripAsciiWhitespace(value).empty()) {
    v.Add(field, "is required");
  } else if (value.size() > max) {
    v.Add(field, absl::StrCat("must be at most ", max, " bytes"));
  }
}

void LimitText(FieldViolations& v, const std::string& field, const std::string& value, size_t max = kMaxLongText) {
  if (value.size() > max) v.Add(field, absl::StrCat("must be at most ", max, " bytes"));
}

void CheckAtc(FieldViolations& v, const std::string& field, const std::string& code) {
  std::string problem = csv::AtcProblem(code, /*allow_group=*/false);
  if (!problem.empty()) v.Add(field, problem);
}

void CheckDate(FieldViolations& v, const std::string& field, const google::type::Date& date, bool required,
               bool present) {
  if (!present) {
    if (required) v.Add(field, "is required");
    return;
  }
  if (!IsValidDate(date)) v.Add(field, "is not a calendar date");
}

void CheckRequestId(FieldViolations& v, const std::string& request_id) {
  if (request_id.size() > 100) v.Add("request_id", "must be at most 100 bytes");
}

void CheckParent(FieldViolations& v, const std::string& parent) {
  auto id = ParseShortageName(parent, "parent");
  if (!id.ok()) v.Add("parent", "must be shortages/{shortage_id}");
}

}  // namespace

bool IsValidDate(const google::type::Date& date) {
  return csv::IsValidDate(date.year(), date.month(), date.day());
}

int64_t DateOrdinal(const google::type::Date& date) {
  return absl::CivilDay(date.year(), date.month(), date.day()) - absl::CivilDay(1970, 1, 1);
}

bool IsValidShortageId(std::string_view id) {
  if (id.size() < 3 || id.size() > 63) return false;
  if (!absl::ascii_islower(id[0])) return false;
  for (char c : id) {
    if (!(absl::ascii_islower(c) || absl::ascii_isdigit(c) || c == '-')) return false;
  }
  return true;
}

std::string ShortageName(std::string_view shortage_id) {
  return absl::StrCat("shortages/", std::string(shortage_id));
}

absl::StatusOr<std::string> ParseShortageName(std::string_view name, std::string_view field) {
  const std::string text(name);
  std::vector<std::string> parts = absl::StrSplit(text, '/');
  if (parts.size() != 2 || parts[0] != "shortages" || !IsValidShortageId(parts[1])) {
    return InvalidField(std::string(field), absl::StrCat("\"", text, "\" is not shortages/{shortage_id}"));
  }
  return parts[1];
}

std::string ChildResourceName(std::string_view shortage_id, std::string_view collection, std::string_view child) {
  return absl::StrCat("shortages/", std::string(shortage_id), "/", std::string(collection), "/", std::string(child));
}

absl::StatusOr<ChildName> ParseChildName(std::string_view name, std::string_view collection,
                                         std::string_view field) {
  const std::string text(name);
  std::vector<std::string> parts = absl::StrSplit(text, '/');
  if (parts.size() != 4 || parts[0] != "shortages" || !IsValidShortageId(parts[1]) || parts[2] != collection ||
      parts[3].empty()) {
    return InvalidField(std::string(field), absl::StrCat("\"", text, "\" is not shortages/{shortage_id}/",
                                                         std::string(collection), "/{id}"));
  }
  return ChildName{parts[1], parts[3]};
}

absl::StatusOr<int64_t> ParseNumericId(std::string_view child_id, std::string_view field) {
  const std::string text(child_id);
  int64_t id = 0;
  if (!absl::SimpleAtoi(text, &id) || id <= 0) {
    return InvalidField(std::string(field), absl::StrCat("\"", text, "\" is not a valid id"));
  }
  return id;
}

namespace {

void CheckShortageDates(FieldViolations& v, const std::string& prefix, const v1::ShortageRecord& s,
                        bool announced_required) {
  CheckDate(v, prefix + ".announced_on", s.announced_on(), announced_required, s.has_announced_on());
  CheckDate(v, prefix + ".expected_start", s.expected_start(), false, s.has_expected_start());
  CheckDate(v, prefix + ".expected_end", s.expected_end(), false, s.has_expected_end());
  if (s.has_expected_start() && s.has_expected_end() && IsValidDate(s.expected_start()) &&
      IsValidDate(s.expected_end()) && DateOrdinal(s.expected_end()) < DateOrdinal(s.expected_start())) {
    v.Add(prefix + ".expected_end", "is before expected_start");
  }
}

void CheckCriticality(FieldViolations& v, const std::string& field, v1::Criticality c) {
  if (!v1::Criticality_IsValid(c) || c == v1::CRITICALITY_UNSPECIFIED) {
    v.Add(field, "is required (CRITICALITY_LOW .. CRITICALITY_CRITICAL)");
  }
}

}  // namespace

absl::Status ValidateAnnounce(const v1::AnnounceShortageRequest& request) {
  FieldViolations v;
  const v1::ShortageRecord& s = request.shortage();
  if (!request.has_shortage()) v.Add("shortage", "is required");
  RequireText(v, "shortage.drug.name", s.drug().name());
  CheckAtc(v, "shortage.drug.atc_code", s.drug().atc_code());
  RequireText(v, "shortage.drug.strength", s.drug().strength());
  RequireText(v, "shortage.drug.form", s.drug().form());
  RequireText(v, "shortage.drug.pack", s.drug().pack());
  CheckShortageDates(v, "shortage", s, /*announced_required=*/true);
  CheckCriticality(v, "shortage.criticality", s.criticality());
  RequireText(v, "shortage.source", s.source());
  LimitText(v, "shortage.notes", s.notes());
  if (!request.shortage_id().empty() && !IsValidShortageId(request.shortage_id())) {
    v.Add("shortage_id", "must be 3-63 characters [a-z0-9-], starting with a letter");
  }
  CheckRequestId(v, request.request_id());
  return v.ToStatus();
}

absl::Status ValidateUpdateShortage(const v1::UpdateShortageRequest& request) {
  FieldViolations v;
  const v1::ShortageRecord& s = request.shortage();
  if (!ParseShortageName(s.name(), "shortage.name").ok()) v.Add("shortage.name", "must be shortages/{shortage_id}");
  static const std::set<std::string> kUpdatable = {"expected_start", "expected_end", "criticality", "source",
                                                   "notes"};
  if (request.update_mask().paths().empty()) v.Add("update_mask", "must name at least one field");
  for (int i = 0; i < request.update_mask().paths_size(); ++i) {
    const std::string& path = request.update_mask().paths(i);
    if (!kUpdatable.count(path)) {
      v.Add(absl::StrCat("update_mask.paths[", i, "]"),
            absl::StrCat("\"", path, "\" cannot be updated (expected_start, expected_end, criticality, source, notes)"));
    } else if (path == "criticality") {
      CheckCriticality(v, "shortage.criticality", s.criticality());
    } else if (path == "source") {
      RequireText(v, "shortage.source", s.source());
    } else if (path == "notes") {
      LimitText(v, "shortage.notes", s.notes());
    }
  }
  CheckDate(v, "shortage.expected_start", s.expected_start(), false, s.has_expected_start());
  CheckDate(v, "shortage.expected_end", s.expected_end(), false, s.has_expected_end());
  LimitText(v, "reason", request.reason(), 2000);
  return v.ToStatus();
}

absl::Status ValidateReportPosition(const v1::ReportPositionRequest& request, absl::Time now) {
  FieldViolations v;
  CheckParent(v, request.parent());
  const v1::RegionalPosition& p = request.position();
  if (!request.has_position()) v.Add("position", "is required");
  if (!IsRegion(p.region())) v.Add("position.region", "must be one of the five regions");
  if (p.stock_packs() < 0) {
    v.Add("position.stock_packs", "must not be negative");
  } else if (p.stock_packs() > kMaxStockPacks) {
    v.Add("position.stock_packs", absl::StrCat("must be at most ", kMaxStockPacks, " packs"));
  }
  if (!ConsumptionToMillipacks(p.weekly_consumption_packs())) {
    v.Add("position.weekly_consumption_packs",
          absl::StrCat("must be between 0 and ", kMaxWeeklyConsumptionMillipacks / 1000,
                       " packs with at most three decimals"));
  }
  if (p.patients_on_treatment() < 0) {
    v.Add("position.patients_on_treatment", "must not be negative");
  } else if (p.patients_on_treatment() > kMaxPatients) {
    v.Add("position.patients_on_treatment", absl::StrCat("must be at most ", kMaxPatients));
  }
  if (p.has_as_of()) {
    const absl::Time as_of = absl::FromUnixSeconds(p.as_of().seconds()) + absl::Nanoseconds(p.as_of().nanos());
    // A little slack for clocks that disagree; a day ahead is a typing error.
    if (as_of > now + absl::Minutes(5)) v.Add("position.as_of", "is in the future");
    if (p.as_of().seconds() < 946684800) v.Add("position.as_of", "is before the year 2000");
  }
  LimitText(v, "position.notes", p.notes(), 4000);
  CheckRequestId(v, request.request_id());
  return v.ToStatus();
}

absl::Status ValidateProposeAllocation(const v1::ProposeAllocationRequest& request) {
  FieldViolations v;
  CheckParent(v, request.parent());
  if (request.quantity_packs() < 1 || request.quantity_packs() > kMaxAllocationPacks) {
    v.Add("quantity_packs", absl::StrCat("must be between 1 and ", kMaxAllocationPacks));
  }
  if (request.source() == v1::ALLOCATION_SOURCE_UNSPECIFIED || !v1::AllocationSource_IsValid(request.source())) {
    v.Add("source", "is required (ALLOCATION_SOURCE_REMAINING_STOCK or ALLOCATION_SOURCE_INCOMING)");
  }
  LimitText(v, "source_note", request.source_note(), 2000);
  std::set<int> seen;
  int64_t total = 0;
  for (int i = 0; i < request.minimums_size(); ++i) {
    const auto& m = request.minimums(i);
    const std::string prefix = absl::StrCat("minimums[", i, "]");
    if (!IsRegion(m.region())) {
      v.Add(prefix + ".region", "must be one of the five regions");
    } else if (!seen.insert(m.region()).second) {
      v.Add(prefix + ".region", "appears more than once");
    }
    if (m.packs() < 0) v.Add(prefix + ".packs", "must not be negative");
    if (m.packs() > kMaxAllocationPacks) v.Add(prefix + ".packs", "is out of range");
    total += std::max<int64_t>(0, std::min(m.packs(), kMaxAllocationPacks));
  }
  if (total > request.quantity_packs() && request.quantity_packs() >= 1) {
    v.Add("minimums", absl::StrCat("add up to ", total, " packs, more than quantity_packs (",
                                   request.quantity_packs(), ")"));
  }
  CheckRequestId(v, request.request_id());
  return v.ToStatus();
}

absl::Status ValidateAmendment(const v1::ApproveAllocationRequest& request, int64_t quantity_packs) {
  FieldViolations v;
  if (request.amended_lines().empty()) return absl::OkStatus();
  std::set<int> seen;
  int64_t total = 0;
  for (int i = 0; i < request.amended_lines_size(); ++i) {
    const auto& line = request.amended_lines(i);
    const std::string prefix = absl::StrCat("amended_lines[", i, "]");
    if (!IsRegion(line.region())) {
      v.Add(prefix + ".region", "must be one of the five regions");
    } else if (!seen.insert(line.region()).second) {
      v.Add(prefix + ".region", "appears more than once");
    }
    if (line.packs() < 0) {
      v.Add(prefix + ".packs", "must not be negative");
    } else if (line.packs() > kMaxAllocationPacks) {
      v.Add(prefix + ".packs", "is out of range");
    } else {
      total += line.packs();
    }
  }
  for (int r = common::v1::REGION_HOVEDSTADEN; r <= common::v1::REGION_NORDJYLLAND; ++r) {
    if (!seen.count(r)) {
      v.Add("amended_lines", absl::StrCat("has no line for ", common::v1::Region_Name(static_cast<Region>(r))));
    }
  }
  if (total != quantity_packs) {
    v.Add("amended_lines", absl::StrCat("add up to ", total, " packs; the allocation is for ", quantity_packs));
  }
  if (absl::StripAsciiWhitespace(request.amendment_reason()).empty()) {
    v.Add("amendment_reason", "is required when the allocation is amended");
  }
  LimitText(v, "amendment_reason", request.amendment_reason(), 4000);
  return v.ToStatus();
}

absl::Status ValidatePublishGuidance(const v1::PublishGuidanceRequest& request) {
  FieldViolations v;
  CheckParent(v, request.parent());
  const v1::Guidance& g = request.guidance();
  RequireText(v, "guidance.summary", g.summary(), kMaxLongText);
  if (g.alternatives_size() > kMaxListItems) v.Add("guidance.alternatives", "too many");
  for (int i = 0; i < g.alternatives_size() && i < kMaxListItems; ++i) {
    const std::string prefix = absl::StrCat("guidance.alternatives[", i, "]");
    RequireText(v, prefix + ".drug_name", g.alternatives(i).drug_name());
    CheckAtc(v, prefix + ".atc_code", g.alternatives(i).atc_code());
    LimitText(v, prefix + ".dose_notes", g.alternatives(i).dose_notes(), 4000);
    LimitText(v, prefix + ".notes", g.alternatives(i).notes(), 4000);
  }
  std::set<int> ranks;
  if (g.priority_groups_size() > kMaxListItems) v.Add("guidance.priority_groups", "too many");
  for (int i = 0; i < g.priority_groups_size() && i < kMaxListItems; ++i) {
    const std::string prefix = absl::StrCat("guidance.priority_groups[", i, "]");
    RequireText(v, prefix + ".description", g.priority_groups(i).description(), 2000);
    if (g.priority_groups(i).rank() < 1) {
      v.Add(prefix + ".rank", "must be 1 or more");
    } else if (!ranks.insert(g.priority_groups(i).rank()).second) {
      v.Add(prefix + ".rank", "is used by another group");
    }
  }
  if (g.specialists_consulted_size() > kMaxListItems) v.Add("guidance.specialists_consulted", "too many");
  for (int i = 0; i < g.specialists_consulted_size() && i < kMaxListItems; ++i) {
    RequireText(v, absl::StrCat("guidance.specialists_consulted[", i, "].name"), g.specialists_consulted(i).name());
  }
  CheckDate(v, "guidance.effective_from", g.effective_from(), false, g.has_effective_from());
  CheckRequestId(v, request.request_id());
  return v.ToStatus();
}

absl::Status ValidateCreateMeeting(const v1::CreateMeetingRequest& request) {
  FieldViolations v;
  CheckParent(v, request.parent());
  const v1::Meeting& m = request.meeting();
  CheckDate(v, "meeting.meeting_date", m.meeting_date(), true, m.has_meeting_date());
  RequireText(v, "meeting.title", m.title());
  if (m.participants_size() > kMaxListItems) v.Add("meeting.participants", "too many");
  for (int i = 0; i < m.participants_size() && i < kMaxListItems; ++i) {
    RequireText(v, absl::StrCat("meeting.participants[", i, "]"), m.participants(i));
  }
  if (m.decisions_size() > kMaxListItems) v.Add("meeting.decisions", "too many");
  for (int i = 0; i < m.decisions_size() && i < kMaxListItems; ++i) {
    RequireText(v, absl::StrCat("meeting.decisions[", i, "]"), m.decisions(i), 4000);
  }
  LimitText(v, "meeting.minutes", m.minutes());
  CheckRequestId(v, request.request_id());
  return v.ToStatus();
}

namespace {
void CheckActionStatus(FieldViolations& v, v1::ActionStatus s, bool allow_unspecified) {
  if (!v1::ActionStatus_IsValid(s) || (!allow_unspecified && s == v1::ACTION_STATUS_UNSPECIFIED)) {
    v.Add("action.status", "must be ACTION_STATUS_OPEN, _IN_PROGRESS, _DONE or _CANCELLED");
  }
}
}  // namespace

absl::Status ValidateCreateAction(const v1::CreateActionRequest& request) {
  FieldViolations v;
  CheckParent(v, request.parent());
  const v1::Action& a = request.action();
  RequireText(v, "action.title", a.title());
  RequireText(v, "action.owner", a.owner());
  LimitText(v, "action.description", a.description());
  CheckDate(v, "action.due_on", a.due_on(), false, a.has_due_on());
  CheckActionStatus(v, a.status(), /*allow_unspecified=*/true);
  if (!a.meeting().empty() && !ParseChildName(a.meeting(), "meetings", "action.meeting").ok()) {
    v.Add("action.meeting", "must be shortages/{shortage_id}/meetings/{id}");
  }
  CheckRequestId(v, request.request_id());
  return v.ToStatus();
}

absl::Status ValidateUpdateAction(const v1::UpdateActionRequest& request) {
  FieldViolations v;
  const v1::Action& a = request.action();
  if (!ParseChildName(a.name(), "actions", "action.name").ok()) {
    v.Add("action.name", "must be shortages/{shortage_id}/actions/{id}");
  }
  if (request.update_mask().paths().empty()) v.Add("update_mask", "must name at least one field");
  for (int i = 0; i < request.update_mask().paths_size(); ++i) {
    const std::string& path = request.update_mask().paths(i);
    if (path == "title") {
      RequireText(v, "action.title", a.title());
    } else if (path == "owner") {
      RequireText(v, "action.owner", a.owner());
    } else if (path == "description") {
      LimitText(v, "action.description", a.description());
    } else if (path == "due_on") {
      CheckDate(v, "action.due_on", a.due_on(), false, a.has_due_on());
    } else if (path == "status") {
      CheckActionStatus(v, a.status(), /*allow_unspecified=*/false);
    } else {
      v.Add(absl::StrCat("update_mask.paths[", i, "]"),
            absl::StrCat("\"", path, "\" cannot be updated (title, description, owner, due_on, status)"));
    }
  }
  return v.ToStatus();
}

absl::Status ValidateListShortages(const v1::ListShortagesRequest& request) {
  FieldViolations v;
  for (int i = 0; i < request.statuses_size(); ++i) {
    if (request.statuses(i) == v1::SHORTAGE_STATUS_UNSPECIFIED || !v1::ShortageStatus_IsValid(request.statuses(i))) {
      v.Add(absl::StrCat("statuses[", i, "]"), "is not a shortage status");
    }
  }
  if (!request.atc_prefix().empty()) {
    std::string problem = csv::AtcProblem(request.atc_prefix(), /*allow_group=*/true);
    if (!problem.empty()) v.Add("atc_prefix", problem);
  }
  if (!v1::Criticality_IsValid(request.min_criticality())) v.Add("min_criticality", "is not a criticality");
  CheckDate(v, "announced_from", request.announced_from(), false, request.has_announced_from());
  CheckDate(v, "announced_to", request.announced_to(), false, request.has_announced_to());
  if (request.page_size() < 0) v.Add("page_size", "must not be negative");
  return v.ToStatus();
}

absl::Status ValidateWatch(const v1::WatchShortagesRequest& request) {
  FieldViolations v;
  if (request.has_after_sequence() && request.after_sequence() < 0) {
    v.Add("after_sequence", "must not be negative");
  }
  for (int i = 0; i < request.shortages_size(); ++i) {
    if (!ParseShortageName(request.shortages(i), "shortages").ok()) {
      v.Add(absl::StrCat("shortages[", i, "]"), "must be shortages/{shortage_id}");
    }
  }
  for (int i = 0; i < request.event_types_size(); ++i) {
    if (request.event_types(i) == v1::EVENT_TYPE_UNSPECIFIED || !v1::EventType_IsValid(request.event_types(i))) {
      v.Add(absl::StrCat("event_types[", i, "]"), "is not an event type");
    }
  }
  if (!request.atc_prefix().empty()) {
    std::string problem = csv::AtcProblem(request.atc_prefix(), /*allow_group=*/true);
    if (!problem.empty()) v.Add("atc_prefix", problem);
  }
  return v.ToStatus();
}

}  // namespace medkoord::shortage
