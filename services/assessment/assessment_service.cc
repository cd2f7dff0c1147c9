#include "services/assessment/assessment_service.h"

#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/csv/validators.h"
#include "common/page_token.h"
#include "common/server.h"
#include "common/status.h"
#include "google/protobuf/util/time_util.h"

namespace medkoord::assessment {
namespace {

using ::google::protobuf::util::TimeUtil;
namespace intake = ::medkoord::intake::v1;

constexpr size_t kMaxRef = 100;
constexpr size_t kMaxText = 500;
constexpr size_t kMaxAssignee = 200;

// ---------------------------------------------------------------------------
// Conversions.

google::type::Date ToDate(absl::CivilDay d) {
  google::type::Date out;
  out.set_year(static_cast<int>(d.year()));
  out.set_month(d.month());
  out.set_day(d.day());
  return out;
}

bool IsSet(const google::type::Date& d) { return d.year() != 0 || d.month() != 0 || d.day() != 0; }

// A complete, real calendar date; nullopt otherwise.
std::optional<absl::CivilDay> FromDate(const google::type::Date& d) {
  if (!csv::IsValidDate(d.year(), d.month(), d.day())) return std::nullopt;
  return absl::CivilDay(d.year(), d.month(), d.day());
}

google::protobuf::Timestamp ToTimestamp(absl::Time t) {
  return TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(t));
}

medkoord::common::v1::ChangeStamp Stamp(const std::string& principal_id, absl::Time t) {
  medkoord::common::v1::ChangeStamp s;
  s.set_principal_id(principal_id);
  *s.mutable_time() = ToTimestamp(t);
  return s;
}

Actor ActorOf(const Principal& p) {
  Actor a;
  a.is_secretariat = HasRole(p, medkoord::common::v1::ROLE_FORUM_SECRETARIAT);
  a.is_forum_member = HasRole(p, medkoord::common::v1::ROLE_FORUM_MEMBER);
  a.is_region = HasRole(p, medkoord::common::v1::ROLE_REGION) &&
                p.region() != medkoord::common::v1::REGION_UNSPECIFIED;
  a.region = a.is_region ? static_cast<int>(p.region()) : 0;
  return a;
}

std::string CaseName(int region, const std::string& case_ref) {
  return absl::StrCat("regions/", std::string(RegionSlugOf(region)), "/cases/", case_ref);
}

struct ParsedName {
  int region = 0;
  std::string case_ref;
};

// "regions/{region}/{collection}/{case_ref}".
std::optional<ParsedName> ParseName(const std::string& name, const char* collection) {
  std::vector<std::string> parts = absl::StrSplit(name, '/');
  if (parts.size() != 4 || parts[0] != "regions" || parts[2] != collection || parts[3].empty() ||
      parts[3].size() > kMaxRef) {
    return std::nullopt;
  }
  std::optional<int> region = RegionFromSlugKey(parts[1]);
  if (!region) return std::nullopt;
  return ParsedName{*region, parts[3]};
}

absl::StatusOr<ParsedName> ParseCaseName(const std::string& name, const std::string& field = "name") {
  std::optional<ParsedName> p = ParseName(name, "cases");
  if (!p) return InvalidField(field, "must be regions/{region}/cases/{case_ref}");
  return *p;
}

// The case named by `name`, readable by the actor. A name whose region is not
// the case's region is NOT_FOUND, like a case that does not exist.
absl::Status CheckNamed(const ParsedName& name, const CaseRecord& c) {
  if (c.region != name.region) return absl::NotFoundError("case not found");
  return absl::OkStatus();
}

// An ICD-10 code (including the letter-third codes such as "C7A.8" that the
// Forum's data hold) or a prefix of one.
bool IsIcd10Filter(const std::string& code) { return csv::IsIcd10Code(code) || csv::IsIcd10Prefix(code); }

absl::Status RequireRoles(const Principal& p, std::initializer_list<Role> roles) {
  if (HasAnyRole(p, roles)) return absl::OkStatus();
  return absl::PermissionDeniedError("the caller's roles do not allow this method");
}

// ---------------------------------------------------------------------------
// ApplyIntakeEvent validation.

absl::StatusOr<CaseRecord> SnapshotToRecord(const v1::ApplicationSnapshot& s, const std::string& path,
                                            bool imported) {
  FieldViolations v;
  auto field = [&](const char* f) { return absl::StrCat(path, ".", f); };
  CaseRecord c;
  c.case_ref = s.case_ref();
  if (c.case_ref.empty() || c.case_ref.size() > kMaxRef || c.case_ref.find('/') != std::string::npos) {
    v.Add(field("case_ref"), absl::StrCat("required, at most ", kMaxRef, " characters, no '/'"));
  }
  if (s.region() < medkoord::common::v1::REGION_HOVEDSTADEN ||
      s.region() > medkoord::common::v1::REGION_NORDJYLLAND) {
    v.Add(field("region"), "must be one of the five regions");
  }
  c.region = s.region();
  std::optional<ParsedName> app = ParseName(s.application(), "applications");
  if (!app || app->case_ref != c.case_ref || app->region != c.region) {
    v.Add(field("application"), "must be regions/{region}/applications/{case_ref} of this case");
  }
  c.application = s.application();
  std::optional<absl::CivilDay> submitted = FromDate(s.submitted_on());
  if (!submitted) v.Add(field("submitted_on"), "required, a valid date");
  c.submitted_on = submitted.value_or(absl::CivilDay());
  auto text = [&](const char* f, const std::string& value, bool required) {
    if ((required && value.empty()) || value.size() > kMaxText) {
      v.Add(field(f), absl::StrCat(required ? "required, " : "", "at most ", kMaxText, " bytes"));
    }
  };
  text("drug_name", s.drug_name(), true);
  text("indication", s.indication(), true);
  text("icd10", s.icd10(), false);
  c.drug_name = s.drug_name();
  c.indication = s.indication();
  c.icd10 = s.icd10();
  if (csv::AtcLevel(s.atc_code()) == 0) v.Add(field("atc_code"), "must be a WHO ATC code");
  c.atc_code = s.atc_code();
  c.cancer = s.cancer();
  c.marketed_dk = s.marketed_dk();
  if (s.medicinraadet_status() == v1::MEDICINRAADET_STATUS_UNSPECIFIED) {
    v.Add(field("medicinraadet_status"), "required");
  }
  c.medicinraadet = s.medicinraadet_status();
  if (s.ema_status() == v1::EMA_STATUS_UNSPECIFIED) v.Add(field("ema_status"), "required");
  c.ema = s.ema_status();
  c.outcome = static_cast<DecisionOutcome>(s.outcome());
  if (!imported && s.outcome() != v1::OUTCOME_UNSPECIFIED) {
    v.Add(field("outcome"), "only an imported case may arrive decided");
  }
  if (IsSet(s.decided_on())) {
    std::optional<absl::CivilDay> decided = FromDate(s.decided_on());
    if (!decided) {
      v.Add(field("decided_on"), "must be a valid date");
    } else if (submitted && *decided < *submitted) {
      v.Add(field("decided_on"), "must not be before submitted_on");
    } else if (s.outcome() == v1::OUTCOME_UNSPECIFIED) {
      v.Add(field("decided_on"), "only with an outcome");
    }
    c.decided_on = decided;
  } else if (imported && (s.outcome() == v1::OUTCOME_RECOMMENDED ||
                          s.outcome() == v1::OUTCOME_NOT_RECOMMENDED)) {
    v.Add(field("decided_on"), "required with recommended / not_recommended");
  }
  RETURN_IF_ERROR(v.ToStatus());
  return c;
}

// ---------------------------------------------------------------------------
// Report -> proto.

void FillCounts(const std::vector<Count>& in, google::protobuf::RepeatedPtrField<v1::NamedCount>* out) {
  for (const Count& c : in) {
    v1::NamedCount* n = out->Add();
    n->set_name(c.name);
    n->set_count(static_cast<int32_t>(c.count));
    n->set_percent(c.percent);
  }
}

void FillSection(const ReportSection& s, v1::ReportSection* out) {
  out->set_total(static_cast<int32_t>(s.total));
  for (const auto& [y, n] : s.per_year) {
    v1::YearCount* yc = out->add_per_year();
    yc->set_year(y);
    yc->set_count(static_cast<int32_t>(n));
  }
  FillCounts(s.outcome, out->mutable_outcome());
  FillCounts(s.cancer, out->mutable_cancer());
  FillCounts(s.marketed_dk, out->mutable_marketed_dk());
  FillCounts(s.medicinraadet_status, out->mutable_medicinraadet_status());
  FillCounts(s.ema_status, out->mutable_ema_status());
  FillCounts(s.region, out->mutable_region());
  FillCounts(s.top_drugs, out->mutable_top_drugs());
  FillCounts(s.top_indications, out->mutable_top_indications());
  FillCounts(s.top_non_cancer_indications, out->mutable_top_non_cancer_indications());
}

// ---------------------------------------------------------------------------
// WatchDecisions: one reactor per call, fed by the process's DecisionFeed.

class WatchReactor final : public grpc::ServerWriteReactor<v1::DecisionEvent> {
 public:
  WatchReactor(DecisionFeed& feed, int region, int64_t cursor)
      : feed_(feed), region_(region), cursor_(cursor), hook_(std::make_shared<Hook>(this)) {
    feed_.Subscribe(hook_);
    // Initial metadata tells the client the subscription is live: decisions
    // committed from now on reach it.
    StartSendInitialMetadata();
    Pump();
  }

  void OnSendInitialMetadataDone(bool ok) override {}

  void OnWriteDone(bool ok) override {
    if (!ok) {
      Stop(grpc::Status(grpc::StatusCode::CANCELLED, "write failed"));
      return;
    }
    {
      absl::MutexLock lock(&mu_);
      writing_ = false;
    }
    Pump();
  }

  void OnCancel() override { Stop(grpc::Status(grpc::StatusCode::CANCELLED, "watch cancelled")); }

  void OnDone() override {
    hook_->Detach();
    feed_.Unsubscribe(hook_.get());
    delete this;
  }

 private:
  class Hook final : public DecisionFeed::Listener {
   public:
    explicit Hook(WatchReactor* r) : reactor_(r) {}
    void OnDecisions() override {
      absl::MutexLock lock(&mu_);
      if (reactor_ != nullptr) reactor_->Pump();
    }
    void Detach() {
      absl::MutexLock lock(&mu_);
      reactor_ = nullptr;
    }

   private:
    absl::Mutex mu_;
    WatchReactor* reactor_ ABSL_GUARDED_BY(mu_);
  };

  // Writes the next decision after the cursor, if the previous write is done.
  void Pump() {
    absl::MutexLock lock(&mu_);
    if (writing_ || finished_) return;
    if (pending_.empty()) {
      absl::StatusOr<std::vector<CaseRecord>> next = feed_.After(cursor_, region_, 64);
      if (!next.ok()) {
        finished_ = true;
        Finish(ToGrpcStatus(next.status()));
        return;
      }
      for (CaseRecord& c : *next) pending_.push_back(std::move(c));
      if (pending_.empty()) return;
    }
    const CaseRecord& c = pending_.front();
    cursor_ = c.decision_seq;
    event_.Clear();
    event_.set_sequence(c.decision_seq);
    *event_.mutable_decided_case() = ToProto(c);
    pending_.pop_front();
    writing_ = true;
    StartWrite(&event_);
  }

  void Stop(const grpc::Status& status) {
    absl::MutexLock lock(&mu_);
    if (finished_) return;
    finished_ = true;
    Finish(status);
  }

  DecisionFeed& feed_;
  const int region_;
  absl::Mutex mu_;
  int64_t cursor_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  std::deque<CaseRecord> pending_ ABSL_GUARDED_BY(mu_);
  v1::DecisionEvent event_;
  std::shared_ptr<Hook> hook_;
};

}  // namespace

v1::Case ToProto(const CaseRecord& c) {
  v1::Case out;
  out.set_name(CaseName(c.region, c.case_ref));
  out.set_application(c.application);
  out.set_case_ref(c.case_ref);
  out.set_region(static_cast<medkoord::common::v1::Region>(c.region));
  *out.mutable_submitted_on() = ToDate(c.submitted_on);
  out.set_drug_name(c.drug_name);
  out.set_atc_code(c.atc_code);
  out.set_indication(c.indication);
  out.set_icd10(c.icd10);
  out.set_cancer(c.cancer);
  out.set_marketed_dk(c.marketed_dk);
  out.set_medicinraadet_status(static_cast<v1::MedicinraadetStatus>(c.medicinraadet));
  out.set_ema_status(static_cast<v1::EmaStatus>(c.ema));
  out.set_state(static_cast<v1::CaseState>(c.state));
  out.set_assignee(c.assignee);
  if (c.state == CaseState::kDecided) {
    v1::Decision* d = out.mutable_decision();
    d->set_outcome(static_cast<v1::Outcome>(c.outcome));
    d->set_reason(c.reason);
    if (c.decided_on) *d->mutable_decided_on() = ToDate(*c.decided_on);
    *d->mutable_decided_by() = Stamp(c.decided_by, c.decided_at.value_or(c.registered_at));
    d->set_on_behalf_of_region(c.on_behalf);
    d->set_imported(c.decision_imported);
  }
  if (c.withdrawn_on) *out.mutable_withdrawn_on() = ToDate(*c.withdrawn_on);
  *out.mutable_registered() = Stamp(c.registered_by, c.registered_at);
  *out.mutable_updated() = Stamp(c.updated_by, c.updated_at);
  return out;
}

// ---------------------------------------------------------------------------
// AssessmentInternal

grpc::Status AssessmentInternalService::ApplyIntakeEvent(grpc::ServerContext* context,
                                                         const v1::ApplyIntakeEventRequest* request,
                                                         v1::ApplyIntakeEventResponse* response) {
  absl::StatusOr<Principal> principal = signer_.Verify(
      *context, FullMethodName(v1::AssessmentInternal::service_full_name(), "ApplyIntakeEvent"));
  if (!principal.ok()) return ToGrpcStatus(principal.status());
  if (!HasRole(*principal, medkoord::common::v1::ROLE_SERVICE)) {
    return ToGrpcStatus(absl::PermissionDeniedError("internal method: service principals only"));
  }
  if (request->event_id().empty() || request->event_id().size() > 200) {
    return ToGrpcStatus(InvalidField("event_id", "required, at most 200 characters"));
  }
  const std::string actor = request->actor().empty() ? principal->id() : request->actor();
  const absl::Time now = clock_.Now();
  absl::StatusOr<AssessmentStore::Applied> applied;
  switch (request->event_case()) {
    case v1::ApplyIntakeEventRequest::kApplicationSubmitted:
    case v1::ApplyIntakeEventRequest::kApplicationImported: {
      const bool imported = request->has_application_imported();
      absl::StatusOr<CaseRecord> record = SnapshotToRecord(
          imported ? request->application_imported() : request->application_submitted(),
          imported ? "application_imported" : "application_submitted", imported);
      if (!record.ok()) return ToGrpcStatus(record.status());
      record->registered_by = actor;
      applied = store_.RegisterCase(request->event_id(), *record, imported, now);
      break;
    }
    case v1::ApplyIntakeEventRequest::kApplicationWithdrawn: {
      const v1::ApplicationWithdrawn& w = request->application_withdrawn();
      FieldViolations v;
      std::optional<ParsedName> app = ParseName(w.application(), "applications");
      if (!app) {
        v.Add("application_withdrawn.application", "must be regions/{region}/applications/{case_ref}");
      }
      std::optional<absl::CivilDay> on = FromDate(w.withdrawn_on());
      if (!on) v.Add("application_withdrawn.withdrawn_on", "required, a valid date");
      if (!v.empty()) return ToGrpcStatus(v.ToStatus());
      const absl::Time at = w.has_withdrawn_at()
                                ? absl::FromUnixMicros(TimeUtil::TimestampToMicroseconds(w.withdrawn_at()))
                                : now;
      const std::string by = w.by().empty() ? actor : w.by();
      // The application's region must be the case's: checked on the row.
      absl::StatusOr<CaseRecord> existing = store_.GetCase(app->case_ref);
      if (existing.ok() && existing->region != app->region) {
        return ToGrpcStatus(absl::NotFoundError("case not found"));
      }
      applied = store_.WithdrawCase(request->event_id(), app->case_ref, *on, at, by, now);
      break;
    }
    case v1::ApplyIntakeEventRequest::EVENT_NOT_SET:
      return ToGrpcStatus(InvalidField("event", "one of application_submitted, application_imported, "
                                                "application_withdrawn is required"));
  }
  if (!applied.ok()) return ToGrpcStatus(applied.status());
  *response->mutable_assessed_case() = ToProto(applied->record);
  response->set_duplicate(applied->duplicate);
  return grpc::Status::OK;
}

// ---------------------------------------------------------------------------
// Assessment

absl::StatusOr<Principal> AssessmentService::Authenticate(const grpc::ServerContextBase& context,
                                                          const char* method) const {
  return signer_.Verify(context, FullMethodName(v1::Assessment::service_full_name(), method));
}

namespace {
constexpr std::initializer_list<Role> kReaders = {medkoord::common::v1::ROLE_REGION,
                                                  medkoord::common::v1::ROLE_FORUM_MEMBER,
                                                  medkoord::common::v1::ROLE_FORUM_SECRETARIAT};
}  // namespace

grpc::Status AssessmentService::GetCase(grpc::ServerContext* context, const v1::GetCaseRequest* request,
                                        v1::Case* response) {
  auto run = [&]() -> absl::Status {
    ASSIGN_OR_RETURN(Principal p, Authenticate(*context, "GetCase"));
    RETURN_IF_ERROR(RequireRoles(p, kReaders));
    ASSIGN_OR_RETURN(ParsedName name, ParseCaseName(request->name()));
    ASSIGN_OR_RETURN(CaseRecord c, store_.GetCase(name.case_ref));
    RETURN_IF_ERROR(CheckNamed(name, c));
    RETURN_IF_ERROR(CheckCanRead(ActorOf(p), c.region));
    *response = ToProto(c);
    return absl::OkStatus();
  };
  return ToGrpcStatus(run());
}

grpc::Status AssessmentService::ListCases(grpc::ServerContext* context, const v1::ListCasesRequest* request,
                                          v1::ListCasesResponse* response) {
  auto run = [&]() -> absl::Status {
    ASSIGN_OR_RETURN(Principal p, Authenticate(*context, "ListCases"));
    RETURN_IF_ERROR(RequireRoles(p, kReaders));
    const Actor actor = ActorOf(p);
    FieldViolations v;
    CaseFilter f;
    f.region = request->region();
    if (f.region < 0 || f.region > kRegionCount) v.Add("region", "unknown region");
    if (!actor.is_secretariat && !actor.is_forum_member) {
      if (f.region != 0 && f.region != actor.region) {
        return absl::PermissionDeniedError("a region lists only its own cases");
      }
      f.region = actor.region;
    }
    f.year = request->year();
    if (f.year != 0 && (f.year < 1900 || f.year > 9999)) v.Add("year", "must be a calendar year");
    f.atc_prefix = request->atc_code();
    if (!f.atc_prefix.empty() && csv::AtcLevel(f.atc_prefix) == 0) {
      v.Add("atc_code", "must be a WHO ATC code or group");
    }
    f.icd10_prefix = request->icd10();
    if (!f.icd10_prefix.empty() && !IsIcd10Filter(f.icd10_prefix)) {
      v.Add("icd10", "must be an ICD-10 code or prefix");
    }
    f.drug_name = request->drug_name();
    if (f.drug_name.size() > kMaxText) v.Add("drug_name", "too long");
    f.state = request->state();
    f.outcome = request->outcome();
    RETURN_IF_ERROR(v.ToStatus());
    const uint64_t hash = FilterHash(absl::StrCat(f.region, "|", f.year, "|", f.atc_prefix, "|",
                                                  f.icd10_prefix, "|", f.drug_name, "|", f.state, "|",
                                                  f.outcome));
    ASSIGN_OR_RETURN(PageRequest page, ParsePageRequest(request->page_size(), request->page_token(), hash));
    std::optional<std::pair<absl::CivilDay, std::string>> after;
    if (page.after.size() == 2) {
      absl::CivilDay d;
      if (!absl::ParseCivilTime(page.after[0], &d)) return InvalidField("page_token", "malformed");
      after = std::make_pair(d, page.after[1]);
    }
    ASSIGN_OR_RETURN(std::vector<CaseRecord> rows, store_.ListCases(f, after, page.page_size));
    const bool more = static_cast<int>(rows.size()) > page.page_size;
    if (more) rows.resize(page.page_size);
    for (const CaseRecord& c : rows) *response->add_cases() = ToProto(c);
    if (more) {
      response->set_next_page_token(EncodePageToken(
          {absl::FormatCivilTime(rows.back().submitted_on), rows.back().case_ref}, hash));
    }
    return absl::OkStatus();
  };
  return ToGrpcStatus(run());
}

grpc::Status AssessmentService::AssignCase(grpc::ServerContext* context, const v1::AssignCaseRequest* request,
                                           v1::Case* response) {
  auto run = [&]() -> absl::Status {
    ASSIGN_OR_RETURN(Principal p, Authenticate(*context, "AssignCase"));
    RETURN_IF_ERROR(RequireRoles(p, {medkoord::common::v1::ROLE_REGION,
                                     medkoord::common::v1::ROLE_FORUM_SECRETARIAT}));
    FieldViolations v;
    absl::StatusOr<ParsedName> name = ParseCaseName(request->name());
    if (!name.ok()) v.Add("name", "must be regions/{region}/cases/{case_ref}");
    if (request->assignee().empty() || request->assignee().size() > kMaxAssignee) {
      v.Add("assignee", absl::StrCat("required, at most ", kMaxAssignee, " bytes"));
    }
    RETURN_IF_ERROR(v.ToStatus());
    const Actor actor = ActorOf(p);
    auto access = [&](const CaseRecord& c) -> absl::Status {
      RETURN_IF_ERROR(CheckNamed(*name, c));
      return CheckCanChange(actor, c.region);
    };
    ASSIGN_OR_RETURN(CaseRecord c,
                     store_.AssignCase(name->case_ref, access, request->assignee(), p.id(), clock_.Now()));
    *response = ToProto(c);
    return absl::OkStatus();
  };
  return ToGrpcStatus(run());
}

grpc::Status AssessmentService::RecordDecision(grpc::ServerContext* context,
                                               const v1::RecordDecisionRequest* request, v1::Case* response) {
  auto run = [&]() -> absl::Status {
    ASSIGN_OR_RETURN(Principal p, Authenticate(*context, "RecordDecision"));
    RETURN_IF_ERROR(RequireRoles(p, {medkoord::common::v1::ROLE_REGION,
                                     medkoord::common::v1::ROLE_FORUM_SECRETARIAT}));
    const absl::CivilDay today = DanishToday(clock_);
    FieldViolations v;
    absl::StatusOr<ParsedName> name = ParseCaseName(request->name());
    if (!name.ok()) v.Add("name", "must be regions/{region}/cases/{case_ref}");
    std::optional<absl::CivilDay> decided_on = today;
    if (IsSet(request->decided_on())) {
      decided_on = FromDate(request->decided_on());
      if (!decided_on) v.Add("decided_on", "must be a valid date");
    }
    if (request->request_id().size() > 200) v.Add("request_id", "at most 200 characters");
    RETURN_IF_ERROR(v.ToStatus());
    const Actor actor = ActorOf(p);
    DecisionInput d;
    d.outcome = static_cast<DecisionOutcome>(request->outcome());
    d.reason = request->reason();
    d.decided_on = *decided_on;
    d.principal_id = p.id();
    d.request_id = request->request_id();
    auto access = [&](const CaseRecord& c) -> absl::Status {
      RETURN_IF_ERROR(CheckNamed(*name, c));
      RETURN_IF_ERROR(CheckCanChange(actor, c.region));
      // The secretariat decides on behalf of the region unless the caller is
      // (also) that region itself.
      d.on_behalf = !(actor.is_region && actor.region == c.region);
      return absl::OkStatus();
    };
    auto validate = [&](const CaseRecord& c) -> absl::Status {
      return ValidateDecision(d.outcome, d.reason, d.decided_on, c.submitted_on, today);
    };
    intake::ApplyDecisionRequest event;
    event.set_application(absl::StrCat("regions/", std::string(RegionSlugOf(name->region)),
                                       "/applications/", name->case_ref));
    event.set_outcome(static_cast<intake::Outcome>(request->outcome()));
    *event.mutable_decided_on() = ToDate(d.decided_on);
    event.set_decided_by(p.id());
    event.set_reason(d.reason);
    ASSIGN_OR_RETURN(CaseRecord c, store_.RecordDecision(name->case_ref, access, validate, d, kDecisionTopic,
                                                         event.SerializeAsString(), clock_.Now()));
    *response = ToProto(c);
    return absl::OkStatus();
  };
  return ToGrpcStatus(run());
}

grpc::Status AssessmentService::GetCaseHistory(grpc::ServerContext* context,
                                               const v1::GetCaseHistoryRequest* request,
                                               v1::GetCaseHistoryResponse* response) {
  auto run = [&]() -> absl::Status {
    ASSIGN_OR_RETURN(Principal p, Authenticate(*context, "GetCaseHistory"));
    RETURN_IF_ERROR(RequireRoles(p, kReaders));
    ASSIGN_OR_RETURN(ParsedName name, ParseCaseName(request->name()));
    ASSIGN_OR_RETURN(CaseRecord c, store_.GetCase(name.case_ref));
    RETURN_IF_ERROR(CheckNamed(name, c));
    RETURN_IF_ERROR(CheckCanRead(ActorOf(p), c.region));
    ASSIGN_OR_RETURN(std::vector<HistoryEntry> entries, store_.History(name.case_ref));
    for (const HistoryEntry& e : entries) {
      v1::CaseEvent* out = response->add_events();
      out->set_sequence(e.id);
      out->set_kind(static_cast<v1::CaseEvent::Kind>(e.kind));
      *out->mutable_stamp() = Stamp(e.principal_id, e.at);
      out->set_detail(e.detail);
    }
    return absl::OkStatus();
  };
  return ToGrpcStatus(run());
}

grpc::Status AssessmentService::FindPrecedents(grpc::ServerContext* context,
                                               const v1::FindPrecedentsRequest* request,
                                               v1::FindPrecedentsResponse* response) {
  auto run = [&]() -> absl::Status {
    ASSIGN_OR_RETURN(Principal p, Authenticate(*context, "FindPrecedents"));
    RETURN_IF_ERROR(RequireRoles(p, kReaders));
    PrecedentQuery q;
    FieldViolations v;
    if (!request->case_name().empty()) {
      absl::StatusOr<ParsedName> name = ParseCaseName(request->case_name(), "case_name");
      if (!name.ok()) return name.status();
      ASSIGN_OR_RETURN(CaseRecord c, store_.GetCase(name->case_ref));
      RETURN_IF_ERROR(CheckNamed(*name, c));
      RETURN_IF_ERROR(CheckCanRead(ActorOf(p), c.region));
      q.atc_prefix = c.atc_code;
      q.icd10_prefix = c.icd10;
      q.exclude_case_ref = c.case_ref;
    } else {
      q.atc_prefix = request->atc_code();
      q.icd10_prefix = request->icd10();
      if (csv::AtcLevel(q.atc_prefix) == 0) v.Add("atc_code", "required: a WHO ATC code or group");
      if (!q.icd10_prefix.empty() && !IsIcd10Filter(q.icd10_prefix)) {
        v.Add("icd10", "must be an ICD-10 code or prefix");
      }
    }
    if (IsSet(request->before())) {
      q.before = FromDate(request->before());
      if (!q.before) v.Add("before", "must be a valid date");
    }
    RETURN_IF_ERROR(v.ToStatus());
    const uint64_t hash = FilterHash(absl::StrCat(q.atc_prefix, "|", q.icd10_prefix, "|", q.exclude_case_ref,
                                                  "|", q.before ? absl::FormatCivilTime(*q.before) : ""));
    ASSIGN_OR_RETURN(PageRequest page,
                     ParsePageRequest(request->page_size(), request->page_token(), hash, 100, 1000));
    if (page.after.size() == 2) {
      absl::CivilDay d;
      if (!absl::ParseCivilTime(page.after[0], &d)) return InvalidField("page_token", "malformed");
      q.after = std::make_pair(d, page.after[1]);
    }
    q.limit = page.page_size;
    ASSIGN_OR_RETURN(PrecedentResult r, store_.FindPrecedents(q));
    const bool more = static_cast<int>(r.page.size()) > page.page_size;
    if (more) r.page.resize(page.page_size);
    for (const CaseRecord& c : r.page) {
      v1::Precedent* out = response->add_precedents();
      out->set_case_name(CaseName(c.region, c.case_ref));
      out->set_region(static_cast<medkoord::common::v1::Region>(c.region));
      out->set_drug_name(c.drug_name);
      out->set_atc_code(c.atc_code);
      out->set_indication(c.indication);
      out->set_icd10(c.icd10);
      out->set_outcome(static_cast<v1::Outcome>(c.outcome));
      if (c.decided_on) *out->mutable_decided_on() = ToDate(*c.decided_on);
    }
    if (more) {
      const CaseRecord& last = r.page.back();
      response->set_next_page_token(EncodePageToken(
          {absl::FormatCivilTime(last.decided_on.value_or(last.submitted_on)), last.case_ref}, hash));
    }
    OutcomeTally national;
    auto fill = [](const OutcomeTally& t, v1::OutcomeCounts* out) {
      out->set_recommended(static_cast<int32_t>(t.recommended));
      out->set_not_recommended(static_cast<int32_t>(t.not_recommended));
      out->set_not_concluded(static_cast<int32_t>(t.not_concluded));
      out->set_total(static_cast<int32_t>(t.total()));
    };
    for (int i = 0; i < kRegionCount; ++i) {
      const OutcomeTally& t = r.per_region[i];
      national.recommended += t.recommended;
      national.not_recommended += t.not_recommended;
      national.not_concluded += t.not_concluded;
      v1::RegionOutcomeCounts* rc = response->add_per_region();
      rc->set_region(static_cast<medkoord::common::v1::Region>(i + 1));
      fill(t, rc->mutable_counts());
    }
    fill(national, response->mutable_national());
    const PracticeVerdict verdict =
        JudgePractice(national, static_cast<DecisionOutcome>(request->proposed_outcome()));
    response->set_national_practice(static_cast<v1::Outcome>(verdict.practice));
    response->set_practice_share(verdict.share);
    response->set_departs_from_practice(verdict.departs);
    return absl::OkStatus();
  };
  return ToGrpcStatus(run());
}

grpc::Status AssessmentService::GetAnnualReport(grpc::ServerContext* context,
                                                const v1::GetAnnualReportRequest* request,
                                                v1::GetAnnualReportResponse* response) {
  auto run = [&]() -> absl::Status {
    ASSIGN_OR_RETURN(Principal p, Authenticate(*context, "GetAnnualReport"));
    RETURN_IF_ERROR(RequireRoles(p, {medkoord::common::v1::ROLE_FORUM_MEMBER,
                                     medkoord::common::v1::ROLE_FORUM_SECRETARIAT,
                                     medkoord::common::v1::ROLE_ANALYST}));
    FieldViolations v;
    if (request->year() < 1900 || request->year() > 9999) v.Add("year", "required, a calendar year");
    if (request->has_as_of() && (request->as_of().seconds() < TimeUtil::kTimestampMinSeconds ||
                                 request->as_of().seconds() > TimeUtil::kTimestampMaxSeconds ||
                                 request->as_of().nanos() < 0 || request->as_of().nanos() > 999999999)) {
      v.Add("as_of", "must be a valid timestamp");
    }
    RETURN_IF_ERROR(v.ToStatus());
    const absl::Time as_of =
        request->has_as_of() ? absl::FromUnixMicros(TimeUtil::TimestampToMicroseconds(request->as_of()))
                             : clock_.Now();
    ASSIGN_OR_RETURN(ReportInput input, store_.LoadReportInput(request->year(), as_of));
    ASSIGN_OR_RETURN(AnnualReport report, BuildAnnualReport(input));
    const auto format = request->format();
    if (format == v1::GetAnnualReportRequest::FORMAT_UNSPECIFIED ||
        format == v1::GetAnnualReportRequest::FORMAT_PROTO) {
      v1::AnnualReport* out = response->mutable_report();
      out->set_year(report.year);
      *out->mutable_as_of() = ToTimestamp(report.as_of);
      *out->mutable_data_source_date() = ToDate(report.data_source_date);
      FillSection(report.national, out->mutable_national());
      for (int r = 0; r < kRegionCount; ++r) {
        v1::RegionReport* rr = out->add_regions();
        rr->set_region(static_cast<medkoord::common::v1::Region>(r + 1));
        rr->set_slug(std::string(kRegionSlugs[r]));
        FillSection(report.regions[r], rr->mutable_section());
      }
    }
    if (format == v1::GetAnnualReportRequest::FORMAT_UNSPECIFIED ||
        format == v1::GetAnnualReportRequest::FORMAT_CSV) {
      response->set_csv(RenderReportCsv(report));
    }
    if (format == v1::GetAnnualReportRequest::FORMAT_UNSPECIFIED ||
        format == v1::GetAnnualReportRequest::FORMAT_JSON) {
      response->set_json(RenderReportJson(report));
    }
    return absl::OkStatus();
  };
  return ToGrpcStatus(run());
}

grpc::ServerWriteReactor<v1::DecisionEvent>* AssessmentService::WatchDecisions(
    grpc::CallbackServerContext* context, const v1::WatchDecisionsRequest* request) {
  auto start = [&]() -> absl::StatusOr<std::pair<int, int64_t>> {
    ASSIGN_OR_RETURN(Principal p, Authenticate(*context, "WatchDecisions"));
    RETURN_IF_ERROR(RequireRoles(p, kReaders));
    const Actor actor = ActorOf(p);
    int region = request->region();
    if (region < 0 || region > kRegionCount) return InvalidField("region", "unknown region");
    if (!actor.is_secretariat && !actor.is_forum_member) {
      if (region != 0 && region != actor.region) {
        return absl::PermissionDeniedError("a region watches only its own decisions");
      }
      region = actor.region;
    }
    if (request->resume_after() < 0) return InvalidField("resume_after", "must not be negative");
    int64_t cursor = request->resume_after();
    if (cursor == 0) {
      ASSIGN_OR_RETURN(cursor, store_.LatestDecisionSeq());
    }
    return std::make_pair(region, cursor);
  };
  absl::StatusOr<std::pair<int, int64_t>> s = start();
  if (!s.ok()) {
    // A reactor that only reports the error.
    class Failed final : public grpc::ServerWriteReactor<v1::DecisionEvent> {
     public:
      explicit Failed(const grpc::Status& st) { Finish(st); }
      void OnDone() override { delete this; }
    };
    return new Failed(ToGrpcStatus(s.status()));
  }
  return new WatchReactor(feed_, s->first, s->second);
}

// ---------------------------------------------------------------------------
// Outbox delivery to intake.

IntakeDecisionDelivery::IntakeDecisionDelivery(std::shared_ptr<grpc::Channel> channel,
                                               const PrincipalSigner& signer, absl::Duration timeout)
    : stub_(intake::IntakeInternal::NewStub(std::move(channel))), signer_(signer), timeout_(timeout) {}

absl::Status IntakeDecisionDelivery::operator()(const db::OutboxEvent& event) const {
  if (event.topic != kDecisionTopic) {
    return db::OutboxRefused(absl::InvalidArgumentError(absl::StrCat("unknown outbox topic ", event.topic)));
  }
  intake::ApplyDecisionRequest request;
  if (!request.ParseFromString(event.payload)) {
    return db::OutboxRefused(absl::InvalidArgumentError("undecodable outbox payload"));
  }
  request.set_event_id(event.event_id);
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + timeout_));
  if (!event.traceparent.empty()) context.AddMetadata("traceparent", event.traceparent);
  signer_.Attach(context, ServicePrincipal("assessment"),
                 FullMethodName(intake::IntakeInternal::service_full_name(), "ApplyDecision"));
  intake::ApplyDecisionResponse response;
  const grpc::Status status = stub_->ApplyDecision(&context, request, &response);
  switch (status.error_code()) {
    case grpc::StatusCode::NOT_FOUND:
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::FAILED_PRECONDITION:
      // Final: the relay keeps the row with this reason, logs and counts it
      // (medkoord_outbox_refused_total) and goes on with later decisions.
      return db::OutboxRefused(FromGrpcStatus(status));
    default:
      return FromGrpcStatus(status);
  }
}

}  // namespace medkoord::assessment
