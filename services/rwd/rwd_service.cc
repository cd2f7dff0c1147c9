#include "services/rwd/rwd_service.h"

#include <google/protobuf/util/json_util.h>

#include <regex>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/log.h"
#include "common/page_token.h"
#include "common/server.h"
#include "common/status.h"
#include "services/rwd/analyse/analyse.h"
#include "services/rwd/analysis.h"
#include "services/rwd/report.h"

namespace medkoord::rwd {
namespace {

using common::v1::ROLE_ADMIN;
using common::v1::ROLE_ANALYST;
using common::v1::ROLE_FORUM_MEMBER;
using common::v1::ROLE_FORUM_SECRETARIAT;

constexpr char kProtocols[] = "protocols/";
constexpr char kCohorts[] = "cohorts/";
constexpr char kAnalyses[] = "analyses/";

grpc::Status Fail(const absl::Status& s) { return ToGrpcStatus(s); }

std::optional<absl::CivilDay> DayOf(const google::type::Date& d) {
  return ParseIsoDate(absl::StrFormat("%04d-%02d-%02d", d.year(), d.month(), d.day()));
}

bool ValidDate(const google::type::Date& d) { return DayOf(d).has_value(); }

std::optional<std::string> ParseProtocolName(const std::string& name) {
  if (name.rfind(kProtocols, 0) != 0) return std::nullopt;
  std::string id = name.substr(sizeof(kProtocols) - 1);
  static const std::regex kId("^[a-z][a-z0-9-]{2,62}$");
  if (!std::regex_match(id, kId)) return std::nullopt;
  return id;
}

std::string EndpointArg(v1::Endpoint e) { return e == v1::ENDPOINT_OS ? "os" : "pfs"; }

// The column a covariate term reads: `log(x)` reads x.
std::string TermColumn(const std::string& term) {
  if (term.size() > 5 && term.rfind("log(", 0) == 0 && term.back() == ')') {
    return term.substr(4, term.size() - 5);
  }
  return term;
}

}  // namespace

std::optional<int64_t> ParseId(const std::string& name, std::string_view collection) {
  if (name.rfind(collection, 0) != 0) return std::nullopt;
  int64_t id = 0;
  std::string digits = name.substr(collection.size());
  if (!absl::SimpleAtoi(digits, &id) || id <= 0) return std::nullopt;
  if (std::to_string(id) != digits) return std::nullopt;  // no "+1" or "01"
  return id;
}

absl::StatusOr<ServiceParts> BuildRwdService(ServiceContext& ctx) {
  const std::string key = ctx.config.Secret("pseudonym_key");
  RwdOptions options;
  options.small_count_mask = static_cast<int>(ctx.config.Int("small_count_mask", 5));
  if (options.small_count_mask < 1) {
    return absl::FailedPreconditionError("config: --small_count_mask must be at least 1");
  }
  // A missing key is reported by Config::Finish; a short one here.
  absl::StatusOr<Pseudonymiser> pseudonymiser =
      Pseudonymiser::Create(key.empty() ? std::string(32, '\0') : key);
  if (!key.empty() && !pseudonymiser.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("config: ", pseudonymiser.status().message()));
  }
  ServiceParts parts;
  auto store = std::make_shared<RwdStore>(ctx.pool);
  parts.services.push_back(std::make_unique<RwdService>(*store, ctx.signer, ctx.clock,
                                                        std::move(*pseudonymiser), options));
  parts.keep_alive.push_back(store);
  return parts;
}

absl::Status ValidateProtocol(const std::string& protocol_id, const v1::Protocol& p) {
  FieldViolations v;
  static const std::regex kId("^[a-z][a-z0-9-]{2,62}$");
  if (!std::regex_match(protocol_id, kId)) {
    v.Add("protocol_id", "3-63 characters a-z, 0-9 and '-', starting with a letter");
  }
  auto required = [&](const std::string& value, const char* field) {
    if (value.empty()) v.Add(absl::StrCat("protocol.", field), "required");
  };
  required(p.title(), "title");
  required(p.medicine(), "medicine");
  required(p.regimen(), "regimen");
  required(p.population(), "population");
  required(p.intervention().label(), "intervention.label");
  required(p.comparator().label(), "comparator.label");
  if (!p.intervention().label().empty() && p.intervention().label() == p.comparator().label()) {
    v.Add("protocol.comparator.label", "must differ from the intervention's label");
  }
  if (p.endpoints_size() == 0) v.Add("protocol.endpoints", "at least one endpoint");
  for (int i = 0; i < p.endpoints_size(); ++i) {
    if (p.endpoints(i).endpoint() == v1::ENDPOINT_UNSPECIFIED) {
      v.Add(absl::StrCat("protocol.endpoints[", i, "].endpoint"), "required");
    }
  }
  if (p.expected_patients_per_year() < 0) {
    v.Add("protocol.expected_patients_per_year", "must not be negative");
  }
  if (!p.has_recommendation_date() || !ValidDate(p.recommendation_date())) {
    v.Add("protocol.recommendation_date", "a valid date is required");
  }
  if (p.recommendation_status() == v1::RECOMMENDATION_STATUS_UNSPECIFIED) {
    v.Add("protocol.recommendation_status", "required");
  }
  if (p.has_re_evaluation_date() && !ValidDate(p.re_evaluation_date())) {
    v.Add("protocol.re_evaluation_date", "not a valid date");
  }
  if (p.recommendation_status() == v1::RECOMMENDATION_STATUS_CONDITIONAL) {
    if (!p.has_re_evaluation_date()) {
      v.Add("protocol.re_evaluation_date", "required for a conditional recommendation");
    } else if (auto re = DayOf(p.re_evaluation_date()), rec = DayOf(p.recommendation_date());
               re && rec && *re <= *rec) {
      v.Add("protocol.re_evaluation_date", "must be after the recommendation date");
    }
  }
  for (int i = 0; i < p.benchmarks_size(); ++i) {
    const v1::TrialBenchmark& b = p.benchmarks(i);
    std::string at = absl::StrCat("protocol.benchmarks[", i, "].");
    if (b.trial().empty()) v.Add(at + "trial", "required");
    if (b.endpoint() == v1::ENDPOINT_UNSPECIFIED) v.Add(at + "endpoint", "required");
    if (b.source().empty()) v.Add(at + "source", "required: the publication of the figures");
    if (b.data_cut().empty()) v.Add(at + "data_cut", "required: the analysis / data cut");
    if (b.n() < 0) v.Add(at + "n", "must not be negative");
    if (b.has_hazard_ratio() && b.hazard_ratio() <= 0) v.Add(at + "hazard_ratio", "must be > 0");
    if (b.has_hr_lower() != b.has_hr_upper()) {
      v.Add(at + "hr_upper", "give both confidence limits or neither");
    } else if (b.has_hr_lower() &&
               !(0 < b.hr_lower() && b.hr_lower() <= b.hr_upper() &&
                 (!b.has_hazard_ratio() ||
                  (b.hr_lower() <= b.hazard_ratio() && b.hazard_ratio() <= b.hr_upper())))) {
      v.Add(at + "hr_lower", "need 0 < hr_lower <= hazard_ratio <= hr_upper");
    }
    for (const char* m : {"intervention_median_months", "comparator_median_months"}) {
      bool has = std::string(m)[0] == 'i' ? b.has_intervention_median_months()
                                          : b.has_comparator_median_months();
      double value = std::string(m)[0] == 'i' ? b.intervention_median_months()
                                              : b.comparator_median_months();
      if (has && value <= 0) v.Add(at + m, "must be > 0");
    }
    if (b.has_data_cut_date() && !ValidDate(b.data_cut_date())) {
      v.Add(at + "data_cut_date", "not a valid date");
    }
  }
  return v.ToStatus();
}

absl::StatusOr<Principal> RwdService::Authorize(grpc::ServerContext& context, const char* method,
                                                std::initializer_list<Role> roles) const {
  ASSIGN_OR_RETURN(Principal p,
                   signer_.Verify(context, FullMethodName(v1::Rwd::service_full_name(), method)));
  if (!HasAnyRole(p, roles)) {
    return absl::PermissionDeniedError(absl::StrCat("the caller's roles do not allow ", method));
  }
  return p;
}

AccessEntry RwdService::Access(const Principal& p, const char* method,
                               v1::AccessAction action) const {
  AccessEntry a;
  a.principal_id = p.id();
  a.action = action;
  a.method = FullMethodName(v1::Rwd::service_full_name(), method);
  a.at = clock_.Now();
  return a;
}

// ---------------------------------------------------------------- protocols

grpc::Status RwdService::CreateProtocol(grpc::ServerContext* context,
                                        const v1::CreateProtocolRequest* request,
                                        v1::Protocol* response) {
  auto principal = Authorize(*context, "CreateProtocol", {ROLE_ANALYST});
  if (!principal.ok()) return Fail(principal.status());
  if (absl::Status s = ValidateProtocol(request->protocol_id(), request->protocol()); !s.ok()) {
    return Fail(s);
  }
  auto created = store_.CreateProtocol(request->protocol_id(), request->protocol(),
                                       request->request_id(), principal->id(), clock_.Now());
  if (!created.ok()) return Fail(created.status());
  *response = std::move(*created);
  return grpc::Status::OK;
}

grpc::Status RwdService::GetProtocol(grpc::ServerContext* context,
                                     const v1::GetProtocolRequest* request,
                                     v1::Protocol* response) {
  auto principal = Authorize(*context, "GetProtocol",
                             {ROLE_ANALYST, ROLE_FORUM_MEMBER, ROLE_FORUM_SECRETARIAT});
  if (!principal.ok()) return Fail(principal.status());
  auto id = ParseProtocolName(request->name());
  if (!id) return Fail(InvalidField("name", "must be protocols/{protocol_id}"));
  auto protocol = store_.GetProtocol(*id);
  if (!protocol.ok()) return Fail(protocol.status());
  *response = std::move(*protocol);
  return grpc::Status::OK;
}

grpc::Status RwdService::ListProtocols(grpc::ServerContext* context,
                                       const v1::ListProtocolsRequest* request,
                                       v1::ListProtocolsResponse* response) {
  auto principal = Authorize(*context, "ListProtocols",
                             {ROLE_ANALYST, ROLE_FORUM_MEMBER, ROLE_FORUM_SECRETARIAT});
  if (!principal.ok()) return Fail(principal.status());
  const uint64_t hash = FilterHash("protocols");
  auto page = ParsePageRequest(request->page_size(), request->page_token(), hash);
  if (!page.ok()) return Fail(page.status());
  auto protocols = store_.ListProtocols(
      {page->after.empty() ? "" : page->after[0], page->page_size + 1});
  if (!protocols.ok()) return Fail(protocols.status());
  const bool more = static_cast<int>(protocols->size()) > page->page_size;
  if (more) protocols->pop_back();
  for (auto& p : *protocols) *response->add_protocols() = std::move(p);
  if (more) {
    response->set_next_page_token(
        EncodePageToken({*ParseProtocolName(response->protocols().rbegin()->name())}, hash));
  }
  return grpc::Status::OK;
}

// ------------------------------------------------------------------ cohorts

absl::Status RwdService::Replay(v1::UploadCohortResponse prior,
                                v1::UploadCohortResponse& response) {
  response = std::move(prior);
  // The cohort as it is now (NOT_FOUND once it was deleted).
  auto id = ParseId(response.cohort().name(), kCohorts);
  if (!id) return absl::InternalError("stored upload response without a cohort");
  ASSIGN_OR_RETURN(*response.mutable_cohort(), store_.GetCohort(*id, std::nullopt));
  return absl::OkStatus();
}

absl::Status RwdService::Upload(grpc::ServerContext& context, const Principal& principal,
                                grpc::ServerReader<v1::UploadCohortRequest>& reader,
                                v1::UploadCohortResponse& response) {
  v1::UploadCohortRequest message;
  if (!reader.Read(&message)) return InvalidField("protocol", "the stream carried no message");

  FieldViolations v;
  auto protocol_id = ParseProtocolName(message.protocol());
  if (!protocol_id) v.Add("protocol", "must be protocols/{protocol_id}");
  std::optional<absl::CivilDay> data_cut;
  if (message.has_data_cut_date()) {
    data_cut = DayOf(message.data_cut_date());
    if (!data_cut) v.Add("data_cut_date", "not a valid date");
  }
  if (message.display_name().size() > 200) v.Add("display_name", "longer than 200 characters");
  if (message.request_id().size() > 100) v.Add("request_id", "longer than 100 characters");
  RETURN_IF_ERROR(v.ToStatus());
  RETURN_IF_ERROR(store_.GetProtocol(*protocol_id).status());

  const bool validate_only = message.validate_only();
  if (!validate_only) {
    ASSIGN_OR_RETURN(auto prior, store_.FindUpload(message.request_id()));
    if (prior) return Replay(std::move(*prior), response);
  }

  std::unique_ptr<RwdStore::CohortWriter> writer;
  if (!validate_only) {
    auto begun = store_.BeginCohort(
        *protocol_id, message.request_id(), message.display_name(),
        data_cut ? std::optional(FormatIsoDate(*data_cut)) : std::nullopt, principal.id(),
        clock_.Now());
    if (absl::IsAlreadyExists(begun.status()) && !message.request_id().empty()) {
      // The same request id is being (or was just) uploaded by a retry that
      // got there first: answer as it did.
      ASSIGN_OR_RETURN(auto prior, store_.FindUpload(message.request_id()));
      if (prior) return Replay(std::move(*prior), response);
    }
    ASSIGN_OR_RETURN(writer, std::move(begun));
  }
  CohortUpload upload(pseudonymiser_, data_cut, options_.upload);
  std::vector<CohortRow> batch;
  auto flush = [&](bool always) -> absl::Status {
    if (batch.empty() || (!always && batch.size() < options_.upload.batch_rows)) {
      return absl::OkStatus();
    }
    if (writer) RETURN_IF_ERROR(writer->Insert(batch));
    batch.clear();
    return absl::OkStatus();
  };
  do {
    if (context.IsCancelled()) return absl::CancelledError("the client cancelled the upload");
    RETURN_IF_ERROR(upload.Feed(message.chunk(), batch));
    RETURN_IF_ERROR(flush(false));
  } while (reader.Read(&message));
  // A stream that ended because the client went away is not a whole file.
  if (context.IsCancelled()) return absl::CancelledError("the client cancelled the upload");
  RETURN_IF_ERROR(upload.Finish(batch));
  RETURN_IF_ERROR(flush(true));

  const std::string name = writer ? absl::StrCat(kCohorts, writer->cohort_id()) : "";
  nlohmann::json report = upload.Report(name);
  response.set_rows_read(upload.rows_read());
  response.set_rows_accepted(upload.rows_accepted());
  response.set_rows_rejected(upload.rows_rejected());
  for (const RowIssue& e : upload.errors()) {
    v1::RowIssue* out = response.add_errors();
    out->set_line(e.line);
    out->set_field(e.field);
    out->set_reason(e.reason);
  }
  for (const RowIssue& w : upload.warnings()) {
    v1::RowIssue* out = response.add_warnings();
    out->set_line(w.line);
    out->set_field(w.field);
    out->set_reason(w.reason);
  }
  response.set_errors_truncated(upload.errors_truncated());
  response.set_warnings_truncated(upload.warnings_truncated());
  log::Info("cohort upload read", {{"rows_read", upload.rows_read()},
                                   {"rows_accepted", upload.rows_accepted()},
                                   {"rows_rejected", upload.rows_rejected()},
                                   {"validate_only", validate_only}});
  if (!writer) return absl::OkStatus();

  RwdStore::CohortWriter::Summary s;
  s.patients = upload.rows_accepted();
  s.rows_rejected = upload.rows_rejected();
  s.covariate_names = upload.layout().covariate_names;
  for (size_t i = 0; i < s.covariate_names.size(); ++i) {
    s.covariate_numeric.push_back(false);
  }
  nlohmann::json variables = nlohmann::json::array();
  for (const auto& [variable, kind] : upload.Variables()) {
    const char* type = kind == VariableKind::kNumeric       ? "VARIABLE_TYPE_NUMERIC"
                       : kind == VariableKind::kCategorical ? "VARIABLE_TYPE_CATEGORICAL"
                       : kind == VariableKind::kDate        ? "VARIABLE_TYPE_DATE"
                                                            : "VARIABLE_TYPE_TEXT";
    variables.push_back({{"name", variable}, {"type", type}});
    for (size_t i = 0; i < s.covariate_names.size(); ++i) {
      if (s.covariate_names[i] == variable) s.covariate_numeric[i] = kind == VariableKind::kNumeric;
    }
  }
  nlohmann::json arms = nlohmann::json::array();
  for (const auto& [arm, n] : upload.arms()) arms.push_back({{"arm", arm}, {"patients", n}});
  s.has_source = upload.layout().source >= 0;
  s.variables_json = variables.dump();
  s.arms_json = arms.dump();
  s.sha256 = upload.Sha256Hex();
  s.quality_report_json = report.dump();
  s.access = Access(principal, "UploadCohort", v1::ACCESS_ACTION_UPLOAD);
  // The stored response (for a retry with the same request id) carries the
  // cohort as it is after the commit.
  v1::Cohort* cohort = response.mutable_cohort();
  cohort->set_name(name);
  s.upload_response = response.SerializeAsString();
  if (context.IsCancelled()) return absl::CancelledError("the client cancelled the upload");
  absl::Status committed = writer->Commit(s);
  if (absl::IsAlreadyExists(committed) && !message.request_id().empty()) {
    // A concurrent retry with the same request id won; answer as it did.
    ASSIGN_OR_RETURN(auto prior, store_.FindUpload(message.request_id()));
    if (prior) return Replay(std::move(*prior), response);
  }
  RETURN_IF_ERROR(committed);
  ASSIGN_OR_RETURN(*cohort, store_.GetCohort(writer->cohort_id(), std::nullopt));
  return absl::OkStatus();
}

grpc::Status RwdService::UploadCohort(grpc::ServerContext* context,
                                      grpc::ServerReader<v1::UploadCohortRequest>* reader,
                                      v1::UploadCohortResponse* response) {
  auto principal = Authorize(*context, "UploadCohort", {ROLE_ANALYST});
  if (!principal.ok()) return Fail(principal.status());
  absl::Status s = Upload(*context, *principal, *reader, *response);
  if (!s.ok()) {
    response->Clear();
    return Fail(s);
  }
  return grpc::Status::OK;
}

grpc::Status RwdService::GetCohort(grpc::ServerContext* context,
                                   const v1::GetCohortRequest* request, v1::Cohort* response) {
  auto principal = Authorize(*context, "GetCohort", {ROLE_ANALYST});
  if (!principal.ok()) return Fail(principal.status());
  auto id = ParseId(request->name(), kCohorts);
  if (!id) return Fail(InvalidField("name", "must be cohorts/{id}"));
  auto cohort = store_.GetCohort(*id, Access(*principal, "GetCohort", v1::ACCESS_ACTION_READ));
  if (!cohort.ok()) return Fail(cohort.status());
  *response = std::move(*cohort);
  return grpc::Status::OK;
}

grpc::Status RwdService::ListCohorts(grpc::ServerContext* context,
                                     const v1::ListCohortsRequest* request,
                                     v1::ListCohortsResponse* response) {
  auto principal = Authorize(*context, "ListCohorts", {ROLE_ANALYST});
  if (!principal.ok()) return Fail(principal.status());
  std::string protocol_id;
  if (!request->protocol().empty()) {
    auto id = ParseProtocolName(request->protocol());
    if (!id) return Fail(InvalidField("protocol", "must be protocols/{protocol_id}"));
    protocol_id = *id;
  }
  const uint64_t hash = FilterHash(absl::StrCat("cohorts|", protocol_id));
  auto page = ParsePageRequest(request->page_size(), request->page_token(), hash);
  if (!page.ok()) return Fail(page.status());
  auto cohorts = store_.ListCohorts(
      protocol_id, {page->after.empty() ? "" : page->after[0], page->page_size + 1});
  if (!cohorts.ok()) return Fail(cohorts.status());
  const bool more = static_cast<int>(cohorts->size()) > page->page_size;
  if (more) cohorts->pop_back();
  for (auto& c : *cohorts) *response->add_cohorts() = std::move(c);
  if (more) {
    response->set_next_page_token(EncodePageToken(
        {std::to_string(*ParseId(response->cohorts().rbegin()->name(), kCohorts))}, hash));
  }
  return grpc::Status::OK;
}

grpc::Status RwdService::DeleteCohort(grpc::ServerContext* context,
                                      const v1::DeleteCohortRequest* request,
                                      google::protobuf::Empty* response) {
  auto principal = Authorize(*context, "DeleteCohort", {ROLE_ANALYST});
  if (!principal.ok()) return Fail(principal.status());
  auto id = ParseId(request->name(), kCohorts);
  if (!id) return Fail(InvalidField("name", "must be cohorts/{id}"));
  absl::Status s =
      store_.DeleteCohort(*id, Access(*principal, "DeleteCohort", v1::ACCESS_ACTION_DELETE));
  if (!s.ok()) return Fail(s);
  log::Info("cohort deleted for good", {{"cohort", request->name()}});
  return grpc::Status::OK;
}

grpc::Status RwdService::GetDataQualityReport(grpc::ServerContext* context,
                                              const v1::GetDataQualityReportRequest* request,
                                              v1::DataQualityReport* response) {
  auto principal = Authorize(*context, "GetDataQualityReport", {ROLE_ANALYST});
  if (!principal.ok()) return Fail(principal.status());
  auto id = ParseId(request->name(), kCohorts);
  if (!id) return Fail(InvalidField("name", "must be cohorts/{id}"));
  auto json = store_.GetQualityReport(
      *id, Access(*principal, "GetDataQualityReport", v1::ACCESS_ACTION_READ));
  if (!json.ok()) return Fail(json.status());
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  if (!google::protobuf::util::JsonStringToMessage(*json, response, options).ok()) {
    return Fail(absl::InternalError("stored data-quality report does not parse"));
  }
  response->set_cohort(request->name());
  return grpc::Status::OK;
}

grpc::Status RwdService::ListCohortAccess(grpc::ServerContext* context,
                                          const v1::ListCohortAccessRequest* request,
                                          v1::ListCohortAccessResponse* response) {
  auto principal = Authorize(*context, "ListCohortAccess", {ROLE_ANALYST, ROLE_ADMIN});
  if (!principal.ok()) return Fail(principal.status());
  int64_t cohort_id = 0;
  if (!request->cohort().empty()) {
    auto id = ParseId(request->cohort(), kCohorts);
    if (!id) return Fail(InvalidField("cohort", "must be cohorts/{id}"));
    cohort_id = *id;
  }
  const uint64_t hash =
      FilterHash(absl::StrCat("access|", cohort_id, "|", request->principal_id()));
  auto page = ParsePageRequest(request->page_size(), request->page_token(), hash);
  if (!page.ok()) return Fail(page.status());
  auto entries = store_.ListAccess(cohort_id, request->principal_id(),
                                   {page->after.empty() ? "" : page->after[0], page->page_size + 1});
  if (!entries.ok()) return Fail(entries.status());
  const bool more = static_cast<int>(entries->size()) > page->page_size;
  if (more) entries->pop_back();
  for (auto& [id, entry] : *entries) *response->add_entries() = std::move(entry);
  if (more) response->set_next_page_token(EncodePageToken({std::to_string(entries->back().first)}, hash));
  return grpc::Status::OK;
}

// ----------------------------------------------------------------- analyses

absl::StatusOr<v1::Analysis> RwdService::Analyse(const Principal& principal,
                                                 const v1::RunAnalysisRequest& request) {
  FieldViolations v;
  auto protocol_id = ParseProtocolName(request.protocol());
  if (!protocol_id) v.Add("protocol", "must be protocols/{protocol_id}");
  auto cohort_id = ParseId(request.cohort(), kCohorts);
  if (!cohort_id) v.Add("cohort", "must be cohorts/{id}");
  const v1::AnalysisSpec& in = request.spec();
  if (in.endpoint() != v1::ENDPOINT_OS && in.endpoint() != v1::ENDPOINT_PFS) {
    v.Add("spec.endpoint", "ENDPOINT_OS or ENDPOINT_PFS");
  }
  for (int i = 0; i < in.at_times_size(); ++i) {
    if (!(in.at_times(i) >= 0)) v.Add(absl::StrCat("spec.at_times[", i, "]"), "must be >= 0 days");
  }
  RETURN_IF_ERROR(v.ToStatus());

  ASSIGN_OR_RETURN(auto prior, store_.FindAnalysis(request.request_id()));
  if (prior) return *prior;
  ASSIGN_OR_RETURN(v1::Protocol protocol, store_.GetProtocol(*protocol_id));
  ASSIGN_OR_RETURN(CohortShape shape, store_.GetCohortShape(*cohort_id));
  if (shape.protocol_id != *protocol_id) {
    return InvalidField("cohort", absl::StrCat(request.cohort(), " belongs to protocols/",
                                               shape.protocol_id));
  }

  // The spec as run, defaults filled in.
  v1::AnalysisSpec spec = in;
  if (spec.group().empty()) spec.set_group(kArm);
  if (spec.arms().empty() && spec.group() == kArm) {
    spec.add_arms(protocol.intervention().label());
    spec.add_arms(protocol.comparator().label());
  }
  if (spec.group() == kArm && !spec.reference_levels().contains(kArm)) {
    (*spec.mutable_reference_levels())[kArm] = protocol.comparator().label();
  }
  std::set<std::string> columns = {kArm, kSource};
  for (const auto& c : shape.covariate_names) columns.insert(c);
  auto check = [&](const std::string& column, const std::string& field) {
    if (!columns.count(column)) v.Add(field, absl::StrCat("the cohort has no column `", column, "`"));
  };
  check(spec.group(), "spec.group");
  for (int i = 0; i < spec.covariates_size(); ++i) {
    check(TermColumn(spec.covariates(i)), absl::StrCat("spec.covariates[", i, "]"));
  }
  for (int i = 0; i < spec.ps_covariates_size(); ++i) {
    check(TermColumn(spec.ps_covariates(i)), absl::StrCat("spec.ps_covariates[", i, "]"));
  }
  for (const auto& [column, level] : spec.reference_levels()) {
    check(column, absl::StrCat("spec.reference_levels[", column, "]"));
  }
  RETURN_IF_ERROR(v.ToStatus());

  CohortTableBuilder builder(shape.covariate_names, shape.covariate_numeric, shape.has_source,
                             std::set<std::string>(spec.arms().begin(), spec.arms().end()));
  RETURN_IF_ERROR(store_.ForEachRow(*cohort_id, [&](const CohortRow& row) { builder.Add(row); }));
  if (builder.rows() == 0) {
    return absl::FailedPreconditionError("no rows of the chosen arms in the cohort");
  }

  analyse::AnalysisSpec a;
  a.endpoint = EndpointArg(spec.endpoint());
  a.group = spec.group();
  a.covariates.assign(spec.covariates().begin(), spec.covariates().end());
  a.ps_covariates.assign(spec.ps_covariates().begin(), spec.ps_covariates().end());
  for (const auto& [column, level] : spec.reference_levels()) a.reference[column] = level;
  a.at_times.assign(spec.at_times().begin(), spec.at_times().end());
  const int64_t patients = builder.rows();
  analyse::Table table = builder.Take();
  ASSIGN_OR_RETURN(analyse::Json result, analyse::RunAnalysis(table, a));

  v1::Analysis analysis;
  analysis.set_protocol(request.protocol());
  analysis.set_cohort(request.cohort());
  *analysis.mutable_spec() = spec;
  analysis.set_patients(patients);
  analysis.set_result_json(analyse::DumpJson(result));
  for (auto& c : CompareWithBenchmarks(result, spec.group(), protocol, spec.endpoint())) {
    *analysis.add_benchmarks() = std::move(c);
  }
  absl::StatusOr<v1::Analysis> stored = store_.CreateAnalysis(
      *cohort_id, analysis, request.request_id(),
      Access(principal, "RunAnalysis", v1::ACCESS_ACTION_ANALYSE));
  if (absl::IsAlreadyExists(stored.status())) {
    ASSIGN_OR_RETURN(auto winner, store_.FindAnalysis(request.request_id()));
    if (winner) return *winner;
  }
  return stored;
}

grpc::Status RwdService::RunAnalysis(grpc::ServerContext* context,
                                     const v1::RunAnalysisRequest* request,
                                     v1::Analysis* response) {
  auto principal = Authorize(*context, "RunAnalysis", {ROLE_ANALYST});
  if (!principal.ok()) return Fail(principal.status());
  auto analysis = Analyse(*principal, *request);
  if (!analysis.ok()) return Fail(analysis.status());
  *response = std::move(*analysis);
  return grpc::Status::OK;
}

grpc::Status RwdService::GetAnalysis(grpc::ServerContext* context,
                                     const v1::GetAnalysisRequest* request,
                                     v1::Analysis* response) {
  auto principal = Authorize(*context, "GetAnalysis", {ROLE_ANALYST});
  if (!principal.ok()) return Fail(principal.status());
  auto id = ParseId(request->name(), kAnalyses);
  if (!id) return Fail(InvalidField("name", "must be analyses/{id}"));
  auto analysis =
      store_.GetAnalysis(*id, Access(*principal, "GetAnalysis", v1::ACCESS_ACTION_READ_ANALYSIS));
  if (!analysis.ok()) return Fail(analysis.status());
  *response = std::move(*analysis);
  return grpc::Status::OK;
}

grpc::Status RwdService::ListAnalyses(grpc::ServerContext* context,
                                      const v1::ListAnalysesRequest* request,
                                      v1::ListAnalysesResponse* response) {
  auto principal = Authorize(*context, "ListAnalyses", {ROLE_ANALYST});
  if (!principal.ok()) return Fail(principal.status());
  FieldViolations v;
  int64_t cohort_id = 0;
  std::string protocol_id;
  if (!request->cohort().empty()) {
    auto id = ParseId(request->cohort(), kCohorts);
    if (!id) v.Add("cohort", "must be cohorts/{id}");
    cohort_id = id.value_or(0);
  }
  if (!request->protocol().empty()) {
    auto id = ParseProtocolName(request->protocol());
    if (!id) v.Add("protocol", "must be protocols/{protocol_id}");
    protocol_id = id.value_or("");
  }
  if (!v.empty()) return Fail(v.ToStatus());
  const uint64_t hash = FilterHash(absl::StrCat("analyses|", cohort_id, "|", protocol_id));
  auto page = ParsePageRequest(request->page_size(), request->page_token(), hash);
  if (!page.ok()) return Fail(page.status());
  auto analyses = store_.ListAnalyses(
      cohort_id, protocol_id, {page->after.empty() ? "" : page->after[0], page->page_size + 1});
  if (!analyses.ok()) return Fail(analyses.status());
  const bool more = static_cast<int>(analyses->size()) > page->page_size;
  if (more) analyses->pop_back();
  for (auto& a : *analyses) {
    a.clear_result_json();  // the list stays small; Get has the full result
    *response->add_analyses() = std::move(a);
  }
  if (more) {
    response->set_next_page_token(EncodePageToken(
        {std::to_string(*ParseId(response->analyses().rbegin()->name(), kAnalyses))}, hash));
  }
  return grpc::Status::OK;
}

grpc::Status RwdService::GetAnalysisReport(grpc::ServerContext* context,
                                           const v1::GetAnalysisReportRequest* request,
                                           v1::AnalysisReport* response) {
  auto principal = Authorize(*context, "GetAnalysisReport",
                             {ROLE_ANALYST, ROLE_FORUM_MEMBER, ROLE_FORUM_SECRETARIAT});
  if (!principal.ok()) return Fail(principal.status());
  auto id = ParseId(request->name(), kAnalyses);
  if (!id) return Fail(InvalidField("name", "must be analyses/{id}"));
  auto analysis = store_.GetAnalysis(
      *id, Access(*principal, "GetAnalysisReport", v1::ACCESS_ACTION_READ_ANALYSIS));
  if (!analysis.ok()) return Fail(analysis.status());
  auto protocol = store_.GetProtocol(*ParseProtocolName(analysis->protocol()));
  if (!protocol.ok()) return Fail(protocol.status());
  nlohmann::ordered_json result =
      nlohmann::ordered_json::parse(analysis->result_json(), nullptr, /*allow_exceptions=*/false);
  if (result.is_discarded()) return Fail(absl::InternalError("stored result does not parse"));
  const int threshold = options_.small_count_mask;
  response->set_analysis(analysis->name());
  response->set_km_svg(KaplanMeierSvg(result, threshold));
  response->set_html(AnalysisHtml(*analysis, *protocol, result, threshold));
  response->set_small_count_threshold(threshold);
  return grpc::Status::OK;
}

}  // namespace medkoord::rwd
