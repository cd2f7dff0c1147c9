#include "services/intake/intake_service.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/log.h"
#include "common/page_token.h"
#include "common/server.h"
#include "common/status.h"
#include "google/protobuf/util/time_util.h"
#include "medkoord/assessment/v1/assessment.pb.h"

namespace medkoord::intake {
namespace {

namespace av1 = ::medkoord::assessment::v1;
using ::medkoord::common::v1::ROLE_FORUM_MEMBER;
using ::medkoord::common::v1::ROLE_FORUM_SECRETARIAT;
using ::medkoord::common::v1::ROLE_REGION;
using ::medkoord::common::v1::ROLE_SERVICE;

// Enum <-> export spelling. The proto enums list the values in the order of
// the application.h tables, starting at 1.
template <typename E, size_t N>
std::string SlugOf(E value, const std::string_view (&slugs)[N]) {
  const int i = static_cast<int>(value);
  return i >= 1 && i <= static_cast<int>(N) ? std::string(slugs[i - 1]) : std::string();
}
template <typename E, size_t N>
E EnumOf(std::string_view slug, const std::string_view (&slugs)[N]) {
  for (size_t i = 0; i < N; ++i) {
    if (slugs[i] == slug) return static_cast<E>(i + 1);
  }
  return static_cast<E>(0);
}

std::string DateText(const google::type::Date& d) { return absl::StrFormat("%04d-%02d-%02d", d.year(), d.month(), d.day()); }
void SetDate(const csv::Date& d, google::type::Date* out) {
  out->set_year(d.year);
  out->set_month(d.month);
  out->set_day(d.day);
}
void SetTime(absl::Time t, google::protobuf::Timestamp* out) {
  *out = google::protobuf::util::TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(t));
}
void SetStamp(const std::string& who, absl::Time when, common::v1::ChangeStamp* out) {
  out->set_principal_id(who);
  SetTime(when, out->mutable_time());
}

csv::Date Today(const Clock& clock) {
  absl::CivilDay d = DanishToday(clock);
  return {static_cast<int>(d.year()), d.month(), d.day()};
}

// The region a caller is confined to: none for the Forum, its own for a region.
std::optional<std::string> ScopeOf(const Principal& p) {
  if (HasAnyRole(p, {ROLE_FORUM_MEMBER, ROLE_FORUM_SECRETARIAT})) return std::nullopt;
  return std::string(RegionSlug(p.region()));
}

grpc::Status Fail(const absl::Status& s) { return ToGrpcStatus(s); }

absl::Status ViolationsStatus(const std::vector<Violation>& violations, const std::string& prefix,
                              FieldViolations& out) {
  for (const Violation& v : violations) out.Add(prefix + v.field, v.reason);
  return out.ToStatus();
}

av1::ApplicationSnapshot Snapshot(const ApplicationRecord& r) {
  av1::ApplicationSnapshot s;
  s.set_application(ApplicationName(r.region, r.case_ref));
  s.set_case_ref(r.case_ref);
  s.set_region(RegionFromSlug(r.region).value_or(common::v1::REGION_UNSPECIFIED));
  SetDate(r.submitted_on, s.mutable_submitted_on());
  s.set_drug_name(r.drug_name);
  s.set_atc_code(r.atc_code);
  s.set_indication(r.indication);
  s.set_icd10(r.icd10);
  s.set_cancer(r.cancer);
  s.set_marketed_dk(r.marketed_dk);
  s.set_medicinraadet_status(EnumOf<av1::MedicinraadetStatus>(r.medicinraadet_status, kMedicinraadetStatuses));
  s.set_ema_status(EnumOf<av1::EmaStatus>(r.ema_status, kEmaStatuses));
  return s;
}

// Filters shared by List and Export, checked and made canonical (for the
// page token's fingerprint).
absl::StatusOr<ApplicationFilter> FilterFrom(const Principal& principal, const std::string& parent, int32_t year,
                                             const std::string& atc, const std::string& drug,
                                             const std::string& indication, const std::string& icd10,
                                             v1::Outcome outcome, v1::ApplicationState state,
                                             FieldViolations& violations) {
  ApplicationFilter f;
  const std::optional<std::string> scope = ScopeOf(principal);
  if (!parent.empty() && parent != "regions/-") {
    std::optional<Region> region;
    if (absl::StartsWith(parent, "regions/")) region = RegionFromSlug(std::string_view(parent).substr(8));
    if (!region) {
      violations.Add("parent", "must be regions/{region} or regions/-");
    } else {
      f.region = std::string(RegionSlug(*region));
      if (scope && *scope != *f.region) {
        return absl::PermissionDeniedError(absl::StrCat("a regional caller may list only regions/", *scope));
      }
    }
  }
  if (scope) f.region = *scope;
  if (year < 0 || year > 9999) violations.Add("year", "must be a calendar year");
  if (year > 0) f.year = year;
  if (!atc.empty()) {
    if (csv::AtcLevel(atc) == 0) violations.Add("atc_code", absl::StrCat("`", atc, "` is not an ATC code or group"));
    f.atc_prefix = atc;
  }
  if (!drug.empty()) f.drug_name = drug;
  if (!indication.empty()) f.indication = indication;
  if (!icd10.empty()) {
    if (!csv::IsIcd10Prefix(icd10)) violations.Add("icd10", absl::StrCat("`", icd10, "` is not an ICD-10 code or prefix"));
    f.icd10_prefix = icd10;
  }
  if (outcome != v1::OUTCOME_UNSPECIFIED) {
    f.outcome = SlugOf(outcome, kOutcomes);
    if (f.outcome->empty()) violations.Add("outcome", "unknown outcome");
  }
  if (state != v1::APPLICATION_STATE_UNSPECIFIED) {
    static constexpr std::string_view kStates[] = {kStateOpen, kStateDecided, kStateWithdrawn};
    f.state = SlugOf(state, kStates);
    if (f.state->empty()) violations.Add("state", "unknown state");
  }
  return f;
}

std::string Canonical(const ApplicationFilter& f) {
  auto s = [](const std::optional<std::string>& v) { return v.value_or("\x01"); };
  return absl::StrCat(s(f.region), "|", f.year.value_or(0), "|", s(f.atc_prefix), "|", s(f.drug_name), "|",
                      s(f.indication), "|", s(f.icd10_prefix), "|", s(f.outcome), "|", s(f.state));
}

void ProtocolToProto(const ProtocolRecord& p, v1::Protocol* out) {
  static constexpr std::string_view kStates[] = {"presented", "under_follow_up", "closed"};
  out->set_name(ProtocolName(p.id));
  out->set_title(p.title);
  out->set_region(RegionFromSlug(p.region).value_or(common::v1::REGION_UNSPECIFIED));
  out->set_department(p.department);
  out->set_drug_name(p.drug_name);
  out->set_atc_code(p.atc_code);
  out->set_indication(p.indication);
  out->set_icd10(p.icd10);
  SetDate(p.presented_on, out->mutable_presented_on());
  out->set_state(EnumOf<v1::ProtocolState>(p.state, kStates));
  for (const ProtocolNoteRecord& n : p.notes) {
    v1::ProtocolNote* note = out->add_notes();
    note->set_text(n.text);
    SetDate(n.noted_on, note->mutable_noted_on());
    if (!n.state.empty()) note->set_state(EnumOf<v1::ProtocolState>(n.state, kStates));
    SetStamp(n.created_by, n.created_at, note->mutable_created());
  }
  SetStamp(p.created_by, p.created_at, out->mutable_created());
  SetTime(p.updated_at, out->mutable_update_time());
}

}  // namespace

void ToProto(const ApplicationRecord& r, v1::Application* out) {
  static constexpr std::string_view kStates[] = {kStateOpen, kStateDecided, kStateWithdrawn};
  static constexpr std::string_view kSources[] = {kSourceSubmitted, kSourceImported};
  out->set_name(ApplicationName(r.region, r.case_ref));
  out->set_case_ref(r.case_ref);
  out->set_region_ref(r.region_ref);
  out->set_region(RegionFromSlug(r.region).value_or(common::v1::REGION_UNSPECIFIED));
  SetDate(r.submitted_on, out->mutable_submitted_on());
  out->set_drug_name(r.drug_name);
  out->set_atc_code(r.atc_code);
  out->set_indication(r.indication);
  out->set_icd10(r.icd10);
  out->set_cancer(r.cancer);
  out->set_marketed_dk(r.marketed_dk);
  out->set_medicinraadet_status(EnumOf<v1::MedicinraadetStatus>(r.medicinraadet_status, kMedicinraadetStatuses));
  out->set_ema_status(EnumOf<v1::EmaStatus>(r.ema_status, kEmaStatuses));
  out->set_outcome(EnumOf<v1::Outcome>(r.outcome, kOutcomes));
  if (r.decided_on) SetDate(*r.decided_on, out->mutable_decided_on());
  out->set_state(EnumOf<v1::ApplicationState>(r.state, kStates));
  out->set_source(EnumOf<v1::ApplicationSource>(r.source, kSources));
  out->set_note(r.note);
  SetStamp(r.created_by, r.created_at, out->mutable_created());
  if (r.withdrawn_at) {
    SetStamp(r.withdrawn_by, *r.withdrawn_at, out->mutable_withdrawn());
    out->set_withdraw_reason(r.withdraw_reason);
  }
  if (r.decided_at) {
    SetStamp(r.decided_by, *r.decided_at, out->mutable_decided());
    out->set_decision_reason(r.decision_reason);
  }
  SetTime(r.updated_at, out->mutable_update_time());
}

RawApplication RawFromProto(const v1::Application& a) {
  RawApplication raw;
  raw.region_ref = a.region_ref();
  raw.region = std::string(RegionSlug(a.region()));
  if (raw.region.empty() && a.region() != common::v1::REGION_UNSPECIFIED) raw.region = absl::StrCat(a.region());
  if (a.has_submitted_on()) raw.submitted_on = DateText(a.submitted_on());
  raw.drug_name = a.drug_name();
  raw.atc_code = a.atc_code();
  raw.indication = a.indication();
  raw.icd10 = a.icd10();
  if (a.has_cancer()) raw.cancer = a.cancer() ? "yes" : "no";
  if (a.has_marketed_dk()) raw.marketed_dk = a.marketed_dk() ? "yes" : "no";
  raw.medicinraadet_status = SlugOf(a.medicinraadet_status(), kMedicinraadetStatuses);
  if (raw.medicinraadet_status.empty() && a.medicinraadet_status() != 0) {
    raw.medicinraadet_status = absl::StrCat(a.medicinraadet_status());
  }
  raw.ema_status = SlugOf(a.ema_status(), kEmaStatuses);
  if (raw.ema_status.empty() && a.ema_status() != 0) raw.ema_status = absl::StrCat(a.ema_status());
  raw.note = a.note();
  return raw;
}

std::string SubmittedEvent(const ApplicationRecord& r) {
  av1::ApplyIntakeEventRequest e;
  e.set_actor(r.created_by);
  *e.mutable_application_submitted() = Snapshot(r);
  return e.SerializeAsString();
}

std::string ImportedEvent(const ApplicationRecord& r) {
  av1::ApplyIntakeEventRequest e;
  e.set_actor(r.created_by);
  av1::ApplicationSnapshot* s = e.mutable_application_imported();
  *s = Snapshot(r);
  if (!r.outcome.empty()) {
    s->set_outcome(EnumOf<av1::Outcome>(r.outcome, kOutcomes));
    if (r.decided_on) SetDate(*r.decided_on, s->mutable_decided_on());
  }
  return e.SerializeAsString();
}

std::string WithdrawnEvent(const ApplicationRecord& r) {
  av1::ApplyIntakeEventRequest e;
  e.set_actor(r.withdrawn_by);
  av1::ApplicationWithdrawn* w = e.mutable_application_withdrawn();
  w->set_application(ApplicationName(r.region, r.case_ref));
  const absl::Time at = r.withdrawn_at.value_or(r.updated_at);
  const absl::CivilDay day = absl::ToCivilDay(at, DanishTimeZone());
  w->mutable_withdrawn_on()->set_year(static_cast<int>(day.year()));
  w->mutable_withdrawn_on()->set_month(day.month());
  w->mutable_withdrawn_on()->set_day(day.day());
  w->set_by(r.withdrawn_by);
  SetTime(at, w->mutable_withdrawn_at());
  return e.SerializeAsString();
}

absl::StatusOr<Principal> IntakeService::Authorize(const grpc::ServerContextBase& context, const char* method,
                                                   std::initializer_list<Role> roles) const {
  ASSIGN_OR_RETURN(Principal p, signer_.Verify(context, FullMethodName(v1::Intake::service_full_name(), method)));
  NoteVerifiedPrincipal(p.id());  // the access log need not verify it again
  if (!HasAnyRole(p, roles)) {
    return absl::PermissionDeniedError(absl::StrCat("the caller's roles do not allow ", method));
  }
  if (ScopeOf(p) && ScopeOf(p)->empty()) {
    return absl::PermissionDeniedError("a regional caller without a region");
  }
  return p;
}

grpc::ServerUnaryReactor* IntakeService::SubmitApplication(grpc::CallbackServerContext* context,
                                                           const v1::SubmitApplicationRequest* request,
                                                           v1::Application* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  // The call's trace context for the outbox row: gRPC need not run a
  // callback handler inside the access-log interceptor's scope.
  std::string traceparent;
  if (auto it = context->client_metadata().find("traceparent"); it != context->client_metadata().end()) {
    traceparent.assign(it->second.data(), it->second.size());
  }
  log::ScopedTrace trace(traceparent.empty() ? log::CurrentTraceparent() : traceparent);
  auto principal = Authorize(*context, "SubmitApplication", {ROLE_REGION, ROLE_FORUM_SECRETARIAT});
  if (!principal.ok()) {
    reactor->Finish(Fail(principal.status()));
    return reactor;
  }
  const csv::Date today = Today(clock_);
  ParsedApplication parsed = ParseApplication(RawFromProto(request->application()), ParseMode::kSubmission, today);
  FieldViolations violations;
  if (request->request_id().empty()) {
    violations.Add("request_id", "required");
  } else if (request->request_id().size() > 128) {
    violations.Add("request_id", "longer than 128 characters");
  }
  std::optional<std::string> scope = ScopeOf(*principal);
  if (scope && !parsed.record.region.empty() && parsed.record.region != *scope) {
    bool region_reported = std::any_of(parsed.violations.begin(), parsed.violations.end(),
                                       [](const Violation& v) { return v.field == "region"; });
    if (!region_reported) {
      parsed.violations.push_back({"region", absl::StrCat("a regional caller submits only for its own region (",
                                                          *scope, ")")});
    }
  }
  if (absl::Status s = ViolationsStatus(parsed.violations, "application.", violations); !s.ok()) {
    reactor->Finish(Fail(s));
    return reactor;
  }
  store_.StartSubmitApplication(
      std::move(parsed.record), principal->id(), request->request_id(), clock_.Now(), today.year, SubmittedEvent,
      [reactor, response, scope = std::move(scope)](absl::StatusOr<IntakeStore::Submitted> submitted) {
        if (!submitted.ok()) {
          reactor->Finish(Fail(submitted.status()));
          return;
        }
        // A replay by another region's caller must not reveal the application.
        if (scope && submitted->record.region != *scope) {
          reactor->Finish(Fail(absl::NotFoundError("no such request")));
          return;
        }
        ToProto(submitted->record, response);
        reactor->Finish(grpc::Status::OK);
      });
  return reactor;
}

grpc::Status IntakeService::GetApplication(grpc::ServerContext* context, const v1::GetApplicationRequest* request,
                                           v1::Application* response) {
  auto principal = Authorize(*context, "GetApplication", {ROLE_REGION, ROLE_FORUM_MEMBER, ROLE_FORUM_SECRETARIAT});
  if (!principal.ok()) return Fail(principal.status());
  auto name = ParseApplicationName(request->name());
  if (!name) return Fail(InvalidField("name", "must be regions/{region}/applications/{case_ref}"));
  const std::optional<std::string> scope = ScopeOf(*principal);
  const absl::Status not_found = absl::NotFoundError(absl::StrCat("no application ", request->name()));
  if (scope && *scope != name->region) return Fail(not_found);
  auto record = store_.GetApplication(name->case_ref);
  if (!record.ok()) return Fail(record.status());
  if (record->region != name->region) return Fail(not_found);
  ToProto(*record, response);
  return grpc::Status::OK;
}

grpc::Status IntakeService::ListApplications(grpc::ServerContext* context,
                                             const v1::ListApplicationsRequest* request,
                                             v1::ListApplicationsResponse* response) {
  auto principal =
      Authorize(*context, "ListApplications", {ROLE_REGION, ROLE_FORUM_MEMBER, ROLE_FORUM_SECRETARIAT});
  if (!principal.ok()) return Fail(principal.status());
  FieldViolations violations;
  auto filter = FilterFrom(*principal, request->parent(), request->year(), request->atc_code(), request->drug_name(),
                           request->indication(), request->icd10(), request->outcome(), request->state(), violations);
  if (!filter.ok()) return Fail(filter.status());
  if (!violations.empty()) return Fail(violations.ToStatus());
  const uint64_t hash = FilterHash(Canonical(*filter));
  auto page = ParsePageRequest(request->page_size(), request->page_token(), hash);
  if (!page.ok()) return Fail(page.status());
  if (!page->after.empty() && page->after.size() != 2) return Fail(InvalidField("page_token", "malformed"));
  auto records = store_.ListApplications(*filter, page->after, page->page_size + 1);
  if (!records.ok()) return Fail(records.status());
  const bool more = static_cast<int>(records->size()) > page->page_size;
  if (more) records->pop_back();
  for (const ApplicationRecord& r : *records) ToProto(r, response->add_applications());
  if (more) {
    const ApplicationRecord& last = records->back();
    response->set_next_page_token(EncodePageToken({csv::FormatIsoDate(last.submitted_on), last.case_ref}, hash));
  }
  return grpc::Status::OK;
}

grpc::Status IntakeService::WithdrawApplication(grpc::ServerContext* context,
                                                const v1::WithdrawApplicationRequest* request,
                                                v1::Application* response) {
  auto principal = Authorize(*context, "WithdrawApplication", {ROLE_REGION, ROLE_FORUM_SECRETARIAT});
  if (!principal.ok()) return Fail(principal.status());
  FieldViolations violations;
  auto name = ParseApplicationName(request->name());
  if (!name) violations.Add("name", "must be regions/{region}/applications/{case_ref}");
  if (Utf8Length(request->reason()) > kMaxReason) {
    violations.Add("reason", absl::StrCat("longer than ", kMaxReason, " characters"));
  }
  if (!violations.empty()) return Fail(violations.ToStatus());
  const std::optional<std::string> scope = ScopeOf(*principal);
  if (scope && *scope != name->region) {
    return Fail(absl::NotFoundError(absl::StrCat("no application ", request->name())));
  }
  auto record = store_.WithdrawApplication(name->case_ref, name->region, principal->id(), request->reason(),
                                           clock_.Now(), WithdrawnEvent);
  if (!record.ok()) return Fail(record.status());
  ToProto(*record, response);
  return grpc::Status::OK;
}

grpc::Status IntakeService::CreateProtocol(grpc::ServerContext* context, const v1::CreateProtocolRequest* request,
                                           v1::Protocol* response) {
  auto principal = Authorize(*context, "CreateProtocol", {ROLE_FORUM_SECRETARIAT});
  if (!principal.ok()) return Fail(principal.status());
  const v1::Protocol& in = request->protocol();
  ProtocolRecord p;
  p.title = in.title();
  p.region = std::string(RegionSlug(in.region()));
  p.department = in.department();
  p.drug_name = in.drug_name();
  p.atc_code = in.atc_code();
  p.indication = in.indication();
  p.icd10 = in.icd10();
  FieldViolations violations;
  if (request->request_id().empty()) violations.Add("request_id", "required");
  const std::string presented = in.has_presented_on() ? DateText(in.presented_on()) : "";
  if (absl::Status s = ViolationsStatus(CheckProtocol(p, presented, Today(clock_), &p.presented_on), "protocol.",
                                        violations);
      !s.ok()) {
    return Fail(s);
  }
  auto created = store_.CreateProtocol(std::move(p), principal->id(), request->request_id(), clock_.Now());
  if (!created.ok()) return Fail(created.status());
  ProtocolToProto(created->record, response);
  return grpc::Status::OK;
}

grpc::Status IntakeService::GetProtocol(grpc::ServerContext* context, const v1::GetProtocolRequest* request,
                                        v1::Protocol* response) {
  auto principal = Authorize(*context, "GetProtocol", {ROLE_FORUM_SECRETARIAT});
  if (!principal.ok()) return Fail(principal.status());
  auto id = ProtocolIdFromName(request->name());
  if (!id) return Fail(InvalidField("name", "must be protocols/{protocol_id}"));
  auto record = store_.GetProtocol(*id);
  if (!record.ok()) return Fail(record.status());
  ProtocolToProto(*record, response);
  return grpc::Status::OK;
}

grpc::Status IntakeService::ListProtocols(grpc::ServerContext* context, const v1::ListProtocolsRequest* request,
                                          v1::ListProtocolsResponse* response) {
  auto principal = Authorize(*context, "ListProtocols", {ROLE_FORUM_SECRETARIAT});
  if (!principal.ok()) return Fail(principal.status());
  ProtocolFilter filter;
  FieldViolations violations;
  if (request->year() < 0 || request->year() > 9999) violations.Add("year", "must be a calendar year");
  if (request->year() > 0) filter.year = request->year();
  if (request->state() != v1::PROTOCOL_STATE_UNSPECIFIED) {
    filter.state = SlugOf(request->state(), kProtocolStates);
    if (filter.state->empty()) violations.Add("state", "unknown state");
  }
  if (!violations.empty()) return Fail(violations.ToStatus());
  const uint64_t hash = FilterHash(absl::StrCat(filter.year.value_or(0), "|", filter.state.value_or("")));
  auto page = ParsePageRequest(request->page_size(), request->page_token(), hash);
  if (!page.ok()) return Fail(page.status());
  if (!page->after.empty() && page->after.size() != 2) return Fail(InvalidField("page_token", "malformed"));
  auto records = store_.ListProtocols(filter, page->after, page->page_size + 1);
  if (!records.ok()) return Fail(records.status());
  const bool more = static_cast<int>(records->size()) > page->page_size;
  if (more) records->pop_back();
  for (const ProtocolRecord& p : *records) ProtocolToProto(p, response->add_protocols());
  if (more) {
    response->set_next_page_token(
        EncodePageToken({csv::FormatIsoDate(records->back().presented_on), records->back().id}, hash));
  }
  return grpc::Status::OK;
}

grpc::Status IntakeService::AddProtocolNote(grpc::ServerContext* context, const v1::AddProtocolNoteRequest* request,
                                            v1::Protocol* response) {
  auto principal = Authorize(*context, "AddProtocolNote", {ROLE_FORUM_SECRETARIAT});
  if (!principal.ok()) return Fail(principal.status());
  FieldViolations violations;
  auto id = ProtocolIdFromName(request->name());
  if (!id) violations.Add("name", "must be protocols/{protocol_id}");
  ProtocolNoteRecord note;
  note.text = request->note().text();
  note.state = SlugOf(request->note().state(), kProtocolStates);
  note.noted_on = Today(clock_);
  if (request->note().has_noted_on()) {
    const std::string text = DateText(request->note().noted_on());
    if (auto d = csv::ParseIsoDate(text); d && !(Today(clock_) < *d)) {
      note.noted_on = *d;
    } else {
      violations.Add("note.noted_on", absl::StrCat("`", text, "` is not a date up to today"));
    }
  }
  std::string state_text = note.state;
  if (state_text.empty() && request->note().state() != v1::PROTOCOL_STATE_UNSPECIFIED) state_text = "?";
  if (absl::Status s = ViolationsStatus(CheckProtocolNote(note.text, state_text), "note.", violations); !s.ok()) {
    return Fail(s);
  }
  auto record = store_.AddProtocolNote(*id, std::move(note), principal->id(), request->request_id(), clock_.Now());
  if (!record.ok()) return Fail(record.status());
  ProtocolToProto(*record, response);
  return grpc::Status::OK;
}

grpc::Status IntakeService::ImportApplications(grpc::ServerContext* context,
                                               grpc::ServerReader<v1::ImportApplicationsRequest>* reader,
                                               v1::ImportApplicationsResponse* response) {
  auto principal = Authorize(*context, "ImportApplications", {ROLE_FORUM_SECRETARIAT});
  if (!principal.ok()) return Fail(principal.status());
  v1::ImportApplicationsRequest message;
  const bool have_first = reader->Read(&message);
  const bool validate_only = have_first && message.validate_only();
  ApplicationCsvParser parser(Today(clock_));
  int64_t stored = 0, unchanged = 0, rejected_in_store = 0;
  std::vector<ImportRowError> errors;
  bool truncated = false;
  auto keep = [&](std::vector<ImportRowError>& more) {
    for (ImportRowError& e : more) {
      if (static_cast<int>(errors.size()) < kMaxImportErrors) {
        errors.push_back(std::move(e));
      } else {
        truncated = true;
      }
    }
    more.clear();
  };
  absl::Status status = store_.Import(
      validate_only, principal->id(), clock_.Now(), ImportedEvent,
      [&](const ImportBatchFn& batch) -> absl::Status {
        stored = unchanged = rejected_in_store = 0;
        errors.clear();
        truncated = false;
        auto flush = [&](bool all) -> absl::Status {
          keep(parser.errors());
          if (parser.rows().empty() || (!all && parser.rows().size() < kImportBatch)) return absl::OkStatus();
          ASSIGN_OR_RETURN(ImportBatchResult result, batch(parser.rows()));
          parser.rows().clear();
          stored += result.stored;
          unchanged += result.unchanged;
          rejected_in_store += result.rejected;
          keep(result.errors);
          return absl::OkStatus();
        };
        bool more = have_first;
        while (more) {
          if (context->IsCancelled()) return absl::CancelledError("the client cancelled the import");
          parser.Feed(message.chunk());
          if (parser.fatal()) break;
          RETURN_IF_ERROR(flush(false));
          more = reader->Read(&message);
        }
        parser.Finish();
        if (parser.fatal()) {
          return absl::InvalidArgumentError(absl::StrCat("import rejected, nothing stored: ", *parser.fatal()));
        }
        return flush(true);
      });
  if (!status.ok()) return Fail(status);
  std::stable_sort(errors.begin(), errors.end(),
                   [](const ImportRowError& a, const ImportRowError& b) { return a.line < b.line; });
  response->set_rows_read(parser.rows_read());
  response->set_stored(stored);
  response->set_unchanged(unchanged);
  response->set_rejected(parser.rows_rejected() + rejected_in_store);
  for (const ImportRowError& e : errors) {
    v1::ImportRowError* out = response->add_errors();
    out->set_line(e.line);
    out->set_column(e.column);
    out->set_reason(e.reason);
    out->set_case_ref(e.case_ref);
  }
  response->set_errors_truncated(truncated);
  response->set_validate_only(validate_only);
  log::Info("import", {{"principal", principal->id()},
                       {"rows", parser.rows_read()},
                       {"stored", stored},
                       {"unchanged", unchanged},
                       {"rejected", response->rejected()},
                       {"validate_only", validate_only}});
  return grpc::Status::OK;
}

grpc::Status IntakeService::ExportApplications(grpc::ServerContext* context,
                                               const v1::ExportApplicationsRequest* request,
                                               grpc::ServerWriter<v1::ExportApplicationsResponse>* writer) {
  auto principal = Authorize(*context, "ExportApplications", {ROLE_FORUM_SECRETARIAT});
  if (!principal.ok()) return Fail(principal.status());
  FieldViolations violations;
  auto filter = FilterFrom(*principal, request->parent(), request->year(), "", "", "", "", v1::OUTCOME_UNSPECIFIED,
                           v1::APPLICATION_STATE_UNSPECIFIED, violations);
  if (!filter.ok()) return Fail(filter.status());
  if (!violations.empty()) return Fail(violations.ToStatus());
  bool with_region_ref = request->include_region_ref();
  if (!with_region_ref) {
    auto any = store_.AnyRegionRef(*filter);
    if (!any.ok()) return Fail(any.status());
    with_region_ref = *any;
  }
  constexpr size_t kChunkBytes = 256 * 1024;
  constexpr int kPage = 1000;
  v1::ExportApplicationsResponse chunk;
  std::string buffer;
  ForumCsvFormat::AppendHeader(buffer, with_region_ref);
  std::string after;
  while (true) {
    if (context->IsCancelled()) return grpc::Status(grpc::StatusCode::CANCELLED, "cancelled");
    auto page = store_.ExportPage(*filter, after, kPage);
    if (!page.ok()) return Fail(page.status());
    for (const ApplicationRecord& r : *page) {
      ForumCsvFormat::AppendRow(buffer, r, with_region_ref);
      if (buffer.size() >= kChunkBytes) {
        chunk.set_chunk(std::move(buffer));
        buffer.clear();
        if (!writer->Write(chunk)) return grpc::Status(grpc::StatusCode::CANCELLED, "client went away");
      }
    }
    if (static_cast<int>(page->size()) < kPage) break;
    after = page->back().case_ref;
  }
  if (!buffer.empty()) {
    chunk.set_chunk(std::move(buffer));
    writer->Write(chunk);
  }
  return grpc::Status::OK;
}

grpc::Status IntakeInternalService::ApplyDecision(grpc::ServerContext* context,
                                                  const v1::ApplyDecisionRequest* request,
                                                  v1::ApplyDecisionResponse* response) {
  auto principal =
      signer_.Verify(*context, FullMethodName(v1::IntakeInternal::service_full_name(), "ApplyDecision"));
  if (!principal.ok()) return Fail(principal.status());
  NoteVerifiedPrincipal(principal->id());
  if (!HasRole(*principal, ROLE_SERVICE)) {
    return Fail(absl::PermissionDeniedError("IntakeInternal is for services only"));
  }
  FieldViolations violations;
  if (request->event_id().empty()) violations.Add("event_id", "required");
  auto name = ParseApplicationName(request->application());
  if (!name) violations.Add("application", "must be regions/{region}/applications/{case_ref}");
  const std::string outcome = SlugOf(request->outcome(), kOutcomes);
  if (outcome.empty()) violations.Add("outcome", "required");
  std::optional<csv::Date> decided_on;
  if (request->has_decided_on()) {
    decided_on = csv::ParseIsoDate(DateText(request->decided_on()));
    if (!decided_on) violations.Add("decided_on", "not a date");
  } else if (outcome == "recommended" || outcome == "not_recommended") {
    violations.Add("decided_on", "required for a recommended / not recommended outcome");
  }
  if (!violations.empty()) return Fail(violations.ToStatus());
  IntakeStore::DecisionInput input{request->event_id(), name->case_ref, name->region,      outcome,
                                   decided_on,          request->decided_by(), request->reason()};
  auto applied = store_.ApplyDecision(input, clock_.Now());
  if (!applied.ok()) {
    if (absl::IsNotFound(applied.status())) {
      // Assessment only decides cases registered from intake's events, so
      // this means lost or mismatched data: loud, and a final answer that
      // the sender's relay can tell from an outage.
      log::Error("decision for an application intake does not have",
                 {{"event_id", request->event_id()}, {"application", request->application()}});
    }
    return Fail(applied.status());
  }
  if (applied->out_of_date) {
    log::Warn("decision older than the one stored; kept the stored one",
                 {{"event_id", request->event_id()}, {"application", request->application()}});
  }
  ToProto(applied->record, response->mutable_application());
  response->set_duplicate(applied->duplicate);
  return grpc::Status::OK;
}

}  // namespace medkoord::intake
