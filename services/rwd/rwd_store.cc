#include "services/rwd/rwd_store.h"

#include <google/protobuf/util/json_util.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"

namespace medkoord::rwd {
namespace {

namespace pbu = ::google::protobuf::util;

std::string Rfc3339(absl::Time t) {
  return absl::FormatTime(absl::RFC3339_full, t, absl::UTCTimeZone());
}

void SetTime(google::protobuf::Timestamp* time, int64_t micros) {
  time->set_seconds(micros / 1000000);
  time->set_nanos(static_cast<int32_t>(micros % 1000000) * 1000);
}

void SetStamp(medkoord::common::v1::ChangeStamp* stamp, const std::string& principal,
              int64_t micros) {
  stamp->set_principal_id(principal);
  SetTime(stamp->mutable_time(), micros);
}

absl::StatusOr<std::string> ToJson(const google::protobuf::Message& m) {
  pbu::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  std::string out;
  auto status = pbu::MessageToJsonString(m, &out, options);
  if (!status.ok()) return absl::InternalError(absl::StrCat("json: ", status.ToString()));
  return out;
}

absl::Status FromJson(const std::string& json, google::protobuf::Message* m) {
  pbu::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  auto status = pbu::JsonStringToMessage(json, m, options);
  if (!status.ok()) return absl::InternalError(absl::StrCat("stored json: ", status.ToString()));
  return absl::OkStatus();
}

std::optional<absl::CivilDay> DayOf(const pqxx::field& f) {
  if (f.is_null()) return std::nullopt;
  return ParseIsoDate(f.c_str());
}

void SetDate(google::type::Date* date, absl::CivilDay day) {
  date->set_year(static_cast<int32_t>(day.year()));
  date->set_month(day.month());
  date->set_day(day.day());
}

// A PostgreSQL array literal of text, every element quoted.
std::string TextArray(const std::vector<std::string>& values) {
  std::string out = "{";
  for (size_t i = 0; i < values.size(); ++i) {
    if (i) out += ',';
    out += '"';
    for (char c : values[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  out += '}';
  return out;
}

std::string BoolArray(const std::vector<bool>& values) {
  std::string out = "{";
  for (size_t i = 0; i < values.size(); ++i) absl::StrAppend(&out, i ? "," : "", values[i] ? "t" : "f");
  return out + "}";
}

// Parses a text[] / boolean[] value as libpqxx 6.4's array_parser gives it.
std::vector<std::optional<std::string>> ParseArray(const pqxx::field& f) {
  std::vector<std::optional<std::string>> out;
  pqxx::array_parser parser = f.as_array();
  for (auto [kind, value] = parser.get_next(); kind != pqxx::array_parser::done;
       std::tie(kind, value) = parser.get_next()) {
    if (kind == pqxx::array_parser::string_value) out.emplace_back(value);
    if (kind == pqxx::array_parser::null_value) out.emplace_back(std::nullopt);
  }
  return out;
}

constexpr char kCohortColumns[] =
    "cohort_id, protocol_id, display_name, data_cut_date::text, patients, rows_rejected, "
    "variables::text, arms::text, sha256, created_by, "
    "(extract(epoch from created_at) * 1000000)::bigint";

absl::StatusOr<v1::Cohort> CohortFromRow(const pqxx::row& row) {
  v1::Cohort c;
  c.set_name(absl::StrCat("cohorts/", row[0].as<int64_t>()));
  c.set_protocol(absl::StrCat("protocols/", row[1].as<std::string>()));
  c.set_display_name(row[2].as<std::string>());
  if (auto day = DayOf(row[3])) SetDate(c.mutable_data_cut_date(), *day);
  c.set_patients(row[4].as<int64_t>());
  c.set_rows_rejected(row[5].as<int64_t>());
  // variables / arms are stored in the messages' JSON form.
  v1::Cohort parts;
  RETURN_IF_ERROR(FromJson(absl::StrCat("{\"variables\":", row[6].as<std::string>(),
                                        ",\"arms\":", row[7].as<std::string>(), "}"),
                           &parts));
  *c.mutable_variables() = parts.variables();
  *c.mutable_arms() = parts.arms();
  c.set_sha256(row[8].as<std::string>());
  SetStamp(c.mutable_created(), row[9].as<std::string>(), row[10].as<int64_t>());
  return c;
}

absl::StatusOr<v1::Protocol> ProtocolFromRow(const pqxx::row& row) {
  v1::Protocol p;
  RETURN_IF_ERROR(FromJson(row[1].as<std::string>(), &p));
  p.set_name(absl::StrCat("protocols/", row[0].as<std::string>()));
  SetStamp(p.mutable_created(), row[2].as<std::string>(), row[3].as<int64_t>());
  return p;
}

absl::StatusOr<v1::Analysis> AnalysisFromRow(const pqxx::row& row) {
  v1::Analysis a;
  RETURN_IF_ERROR(FromJson(row[3].as<std::string>(), &a));
  a.set_name(absl::StrCat("analyses/", row[0].as<int64_t>()));
  a.set_cohort(absl::StrCat("cohorts/", row[1].as<int64_t>()));
  a.set_protocol(absl::StrCat("protocols/", row[2].as<std::string>()));
  a.set_result_json(row[4].as<std::string>());
  SetStamp(a.mutable_created(), row[5].as<std::string>(), row[6].as<int64_t>());
  return a;
}

constexpr char kAnalysisColumns[] =
    "analysis_id, cohort_id, protocol_id, body::text, result_json, created_by, "
    "(extract(epoch from created_at) * 1000000)::bigint";

void InsertAccess(pqxx::work& tx, const AccessEntry& a) {
  std::string analysis = std::to_string(a.analysis_id);
  tx.exec_prepared("rwd_insert_access", a.cohort_id, a.principal_id,
                   v1::AccessAction_Name(a.action), a.method,
                   a.analysis_id > 0 ? analysis.c_str() : nullptr, Rfc3339(a.at));
}

int64_t AfterId(const Page& page) {
  int64_t after = 0;
  if (!page.after.empty() && !absl::SimpleAtoi(page.after, &after)) after = 0;
  return after;
}

// Runs `fn` and turns libpqxx exceptions into a status.
template <typename Fn>
absl::Status Guard(Fn&& fn) {
  try {
    return fn();
  } catch (...) {
    return db::StatusFromCurrentException();
  }
}

class PgCohortWriter final : public RwdStore::CohortWriter {
 public:
  PgCohortWriter(std::unique_ptr<pqxx::connection> conn, int64_t id)
      : conn_(std::move(conn)), tx_(std::make_unique<pqxx::work>(*conn_)), id_(id) {}

  static absl::StatusOr<std::unique_ptr<RwdStore::CohortWriter>> Begin(
      std::unique_ptr<pqxx::connection> conn, const std::string& protocol_id,
      const std::string& request_id, const std::string& display_name,
      std::optional<std::string> data_cut_date, const std::string& principal_id, absl::Time now) {
    auto writer = std::make_unique<PgCohortWriter>(std::move(conn), 0);
    absl::Status status = Guard([&]() -> absl::Status {
      pqxx::result r = writer->tx_->exec_prepared(
          "rwd_insert_cohort", protocol_id,
          request_id.empty() ? nullptr : request_id.c_str(), display_name,
          data_cut_date ? data_cut_date->c_str() : nullptr, principal_id, Rfc3339(now));
      writer->id_ = r[0][0].as<int64_t>();
      return absl::OkStatus();
    });
    RETURN_IF_ERROR(status);
    return std::unique_ptr<RwdStore::CohortWriter>(std::move(writer));
  }

  int64_t cohort_id() const override { return id_; }

  absl::Status Insert(const std::vector<CohortRow>& rows) override {
    if (rows.empty()) return absl::OkStatus();
    return Guard([&]() -> absl::Status {
      // COPY is several times faster than INSERT for bulk rows.
      pqxx::stream_to copy(*tx_, "cohort_patients",
                           std::vector<std::string>{"cohort_id", "line", "patient_key", "arm",
                                                    "index_date", "death_date", "progression_date",
                                                    "last_contact_date", "source", "covariates"});
      const std::string id = std::to_string(id_);
      for (const CohortRow& row : rows) {
        std::string index = FormatIsoDate(row.index_date);
        std::string death = row.death_date ? FormatIsoDate(*row.death_date) : "";
        std::string progression = row.progression_date ? FormatIsoDate(*row.progression_date) : "";
        std::string contact = row.last_contact_date ? FormatIsoDate(*row.last_contact_date) : "";
        std::string covariates = TextArray(row.covariates);
        copy << std::make_tuple(id.c_str(), std::to_string(row.line).c_str(),
                                row.patient_key.c_str(), row.arm.c_str(), index.c_str(),
                                row.death_date ? death.c_str() : nullptr,
                                row.progression_date ? progression.c_str() : nullptr,
                                row.last_contact_date ? contact.c_str() : nullptr,
                                row.source.c_str(), covariates.c_str());
      }
      copy.complete();
      return absl::OkStatus();
    });
  }

  absl::Status Commit(const Summary& s) override {
    return Guard([&]() -> absl::Status {
      tx_->exec_prepared("rwd_finish_cohort", id_, s.patients, s.rows_rejected,
                         TextArray(s.covariate_names), BoolArray(s.covariate_numeric),
                         s.has_source, s.variables_json, s.arms_json, s.sha256,
                         pqxx::binarystring(s.upload_response), s.quality_report_json);
      AccessEntry access = s.access;
      access.cohort_id = id_;
      InsertAccess(*tx_, access);
      tx_->commit();
      return absl::OkStatus();
    });
  }

 private:
  std::unique_ptr<pqxx::connection> conn_;
  std::unique_ptr<pqxx::work> tx_;
  int64_t id_;
};

}  // namespace

void RwdStore::Prepare(pqxx::connection& c) {
  c.prepare("rwd_insert_protocol",
            "INSERT INTO protocols (protocol_id, body, request_id, created_by, created_at) "
            "VALUES ($1, $2::jsonb, $3, $4, $5::timestamptz)");
  c.prepare("rwd_protocol_by_request",
            "SELECT protocol_id, body::text, created_by, "
            "(extract(epoch from created_at) * 1000000)::bigint FROM protocols WHERE request_id = $1");
  c.prepare("rwd_get_protocol",
            "SELECT protocol_id, body::text, created_by, "
            "(extract(epoch from created_at) * 1000000)::bigint FROM protocols WHERE protocol_id = $1");
  c.prepare("rwd_list_protocols",
            "SELECT protocol_id, body::text, created_by, "
            "(extract(epoch from created_at) * 1000000)::bigint FROM protocols "
            "WHERE protocol_id > $1 ORDER BY protocol_id LIMIT $2");
  c.prepare("rwd_upload_by_request",
            "SELECT upload_response FROM cohorts WHERE request_id = $1");
  c.prepare("rwd_insert_cohort",
            "INSERT INTO cohorts (protocol_id, request_id, display_name, data_cut_date, created_by, "
            "created_at) VALUES ($1, $2, $3, $4::date, $5, $6::timestamptz) RETURNING cohort_id");
  c.prepare("rwd_finish_cohort",
            "UPDATE cohorts SET patients = $2, rows_rejected = $3, covariate_names = $4::text[], "
            "covariate_numeric = $5::boolean[], has_source = $6, variables = $7::jsonb, "
            "arms = $8::jsonb, sha256 = $9, upload_response = $10, quality_report = $11::jsonb "
            "WHERE cohort_id = $1");
  c.prepare("rwd_get_cohort",
            absl::StrCat("SELECT ", kCohortColumns, " FROM cohorts WHERE cohort_id = $1"));
  c.prepare("rwd_list_cohorts",
            absl::StrCat("SELECT ", kCohortColumns, " FROM cohorts WHERE ($1 = '' OR protocol_id = $1) "
                         "AND ($2 = 0 OR cohort_id < $2) ORDER BY cohort_id DESC LIMIT $3"));
  c.prepare("rwd_quality_report",
            "SELECT quality_report::text FROM cohorts WHERE cohort_id = $1");
  c.prepare("rwd_delete_cohort", "DELETE FROM cohorts WHERE cohort_id = $1");
  c.prepare("rwd_cohort_shape",
            "SELECT cohort_id, protocol_id, covariate_names, covariate_numeric, has_source, patients "
            "FROM cohorts WHERE cohort_id = $1");
  c.prepare("rwd_cohort_rows",
            "SELECT line, arm, index_date::text, death_date::text, progression_date::text, "
            "last_contact_date::text, coalesce(source, ''), covariates FROM cohort_patients "
            "WHERE cohort_id = $1 AND line > $2 ORDER BY line LIMIT $3");
  c.prepare("rwd_insert_access",
            "INSERT INTO cohort_access (cohort_id, principal_id, action, method, analysis_id, at) "
            "VALUES ($1, $2, $3, $4, $5::bigint, $6::timestamptz)");
  c.prepare("rwd_list_access",
            "SELECT access_id, cohort_id, principal_id, action, method, coalesce(analysis_id, 0), "
            "(extract(epoch from at) * 1000000)::bigint FROM cohort_access "
            "WHERE ($1 = 0 OR cohort_id = $1) AND ($2 = '' OR principal_id = $2) "
            "AND ($3 = 0 OR access_id < $3) ORDER BY access_id DESC LIMIT $4");
  c.prepare("rwd_analysis_by_request",
            absl::StrCat("SELECT ", kAnalysisColumns, " FROM analyses WHERE request_id = $1"));
  c.prepare("rwd_insert_analysis",
            "INSERT INTO analyses (cohort_id, protocol_id, request_id, body, result_json, created_by, "
            "created_at) VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7::timestamptz) RETURNING analysis_id");
  c.prepare("rwd_get_analysis",
            absl::StrCat("SELECT ", kAnalysisColumns, " FROM analyses WHERE analysis_id = $1"));
  c.prepare("rwd_list_analyses",
            absl::StrCat("SELECT ", kAnalysisColumns, " FROM analyses "
                         "WHERE ($1 = 0 OR cohort_id = $1) AND ($2 = '' OR protocol_id = $2) "
                         "AND ($3 = 0 OR analysis_id < $3) ORDER BY analysis_id DESC LIMIT $4"));
}

absl::StatusOr<v1::Protocol> RwdStore::CreateProtocol(const std::string& protocol_id,
                                                      const v1::Protocol& protocol,
                                                      const std::string& request_id,
                                                      const std::string& principal_id,
                                                      absl::Time now) {
  v1::Protocol body = protocol;
  body.clear_name();
  body.clear_created();
  ASSIGN_OR_RETURN(std::string json, ToJson(body));
  v1::Protocol out;
  RETURN_IF_ERROR(pool_.Run([&](pqxx::work& tx) -> absl::Status {
    if (!request_id.empty()) {
      pqxx::result prior = tx.exec_prepared("rwd_protocol_by_request", request_id);
      if (!prior.empty()) {
        ASSIGN_OR_RETURN(out, ProtocolFromRow(prior[0]));
        return absl::OkStatus();
      }
    }
    if (!tx.exec_prepared("rwd_get_protocol", protocol_id).empty()) {
      return absl::AlreadyExistsError(absl::StrCat("protocols/", protocol_id, " already exists"));
    }
    tx.exec_prepared("rwd_insert_protocol", protocol_id, json,
                     request_id.empty() ? nullptr : request_id.c_str(), principal_id, Rfc3339(now));
    ASSIGN_OR_RETURN(out, ProtocolFromRow(tx.exec_prepared("rwd_get_protocol", protocol_id)[0]));
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<v1::Protocol> RwdStore::GetProtocol(const std::string& protocol_id) {
  v1::Protocol out;
  RETURN_IF_ERROR(pool_.Read([&](pqxx::work& tx) -> absl::Status {
    pqxx::result r = tx.exec_prepared("rwd_get_protocol", protocol_id);
    if (r.empty()) return absl::NotFoundError(absl::StrCat("protocols/", protocol_id, " not found"));
    ASSIGN_OR_RETURN(out, ProtocolFromRow(r[0]));
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<std::vector<v1::Protocol>> RwdStore::ListProtocols(const Page& page) {
  std::vector<v1::Protocol> out;
  RETURN_IF_ERROR(pool_.Read([&](pqxx::work& tx) -> absl::Status {
    out.clear();
    for (const auto& row : tx.exec_prepared("rwd_list_protocols", page.after, page.limit)) {
      ASSIGN_OR_RETURN(v1::Protocol p, ProtocolFromRow(row));
      out.push_back(std::move(p));
    }
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<std::optional<v1::UploadCohortResponse>> RwdStore::FindUpload(
    const std::string& request_id) {
  std::optional<v1::UploadCohortResponse> out;
  if (request_id.empty()) return out;
  RETURN_IF_ERROR(pool_.Read([&](pqxx::work& tx) -> absl::Status {
    pqxx::result r = tx.exec_prepared("rwd_upload_by_request", request_id);
    if (r.empty() || r[0][0].is_null()) return absl::OkStatus();
    pqxx::binarystring bytes(r[0][0]);
    v1::UploadCohortResponse response;
    if (!response.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
      return absl::InternalError("stored upload response does not parse");
    }
    out = std::move(response);
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<std::unique_ptr<RwdStore::CohortWriter>> RwdStore::BeginCohort(
    const std::string& protocol_id, const std::string& request_id, const std::string& display_name,
    std::optional<std::string> data_cut_date, const std::string& principal_id, absl::Time now) {
  ASSIGN_OR_RETURN(std::unique_ptr<pqxx::connection> conn, pool_.Connect());
  return PgCohortWriter::Begin(std::move(conn), protocol_id, request_id, display_name,
                               std::move(data_cut_date), principal_id, now);
}

absl::StatusOr<v1::Cohort> RwdStore::GetCohort(int64_t cohort_id,
                                               std::optional<AccessEntry> access) {
  v1::Cohort out;
  RETURN_IF_ERROR(pool_.Run([&](pqxx::work& tx) -> absl::Status {
    pqxx::result r = tx.exec_prepared("rwd_get_cohort", cohort_id);
    if (r.empty()) return absl::NotFoundError(absl::StrCat("cohorts/", cohort_id, " not found"));
    ASSIGN_OR_RETURN(out, CohortFromRow(r[0]));
    if (access) {
      access->cohort_id = cohort_id;
      InsertAccess(tx, *access);
    }
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<std::vector<v1::Cohort>> RwdStore::ListCohorts(const std::string& protocol_id,
                                                             const Page& page) {
  std::vector<v1::Cohort> out;
  RETURN_IF_ERROR(pool_.Read([&](pqxx::work& tx) -> absl::Status {
    out.clear();
    for (const auto& row :
         tx.exec_prepared("rwd_list_cohorts", protocol_id, AfterId(page), page.limit)) {
      ASSIGN_OR_RETURN(v1::Cohort c, CohortFromRow(row));
      out.push_back(std::move(c));
    }
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<std::string> RwdStore::GetQualityReport(int64_t cohort_id,
                                                       const AccessEntry& access) {
  std::string out;
  RETURN_IF_ERROR(pool_.Run([&](pqxx::work& tx) -> absl::Status {
    pqxx::result r = tx.exec_prepared("rwd_quality_report", cohort_id);
    if (r.empty()) return absl::NotFoundError(absl::StrCat("cohorts/", cohort_id, " not found"));
    out = r[0][0].is_null() ? "{}" : r[0][0].as<std::string>();
    AccessEntry a = access;
    a.cohort_id = cohort_id;
    InsertAccess(tx, a);
    return absl::OkStatus();
  }));
  return out;
}

absl::Status RwdStore::DeleteCohort(int64_t cohort_id, const AccessEntry& access) {
  return pool_.Run([&](pqxx::work& tx) -> absl::Status {
    pqxx::result r = tx.exec_prepared("rwd_delete_cohort", cohort_id);
    if (r.affected_rows() == 0) {
      return absl::NotFoundError(absl::StrCat("cohorts/", cohort_id, " not found"));
    }
    AccessEntry a = access;
    a.cohort_id = cohort_id;
    InsertAccess(tx, a);
    return absl::OkStatus();
  });
}

absl::StatusOr<CohortShape> RwdStore::GetCohortShape(int64_t cohort_id) {
  CohortShape shape;
  RETURN_IF_ERROR(pool_.Read([&](pqxx::work& tx) -> absl::Status {
    pqxx::result r = tx.exec_prepared("rwd_cohort_shape", cohort_id);
    if (r.empty()) return absl::NotFoundError(absl::StrCat("cohorts/", cohort_id, " not found"));
    shape.cohort_id = r[0][0].as<int64_t>();
    shape.protocol_id = r[0][1].as<std::string>();
    shape.covariate_names.clear();
    shape.covariate_numeric.clear();
    for (auto& v : ParseArray(r[0][2])) shape.covariate_names.push_back(v.value_or(""));
    for (auto& v : ParseArray(r[0][3])) shape.covariate_numeric.push_back(v.value_or("f") == "t");
    shape.has_source = r[0][4].as<bool>();
    shape.patients = r[0][5].as<int64_t>();
    return absl::OkStatus();
  }));
  return shape;
}

absl::Status RwdStore::ForEachRow(int64_t cohort_id,
                                  const std::function<void(const CohortRow&)>& fn) {
  constexpr int kBatch = 20000;
  return pool_.Read([&](pqxx::work& tx) -> absl::Status {
    int64_t after = 0;
    CohortRow row;
    while (true) {
      pqxx::result r = tx.exec_prepared("rwd_cohort_rows", cohort_id, after, kBatch);
      for (const auto& f : r) {
        row.line = f[0].as<int64_t>();
        row.arm = f[1].as<std::string>();
        row.index_date = DayOf(f[2]).value_or(absl::CivilDay());
        row.death_date = DayOf(f[3]);
        row.progression_date = DayOf(f[4]);
        row.last_contact_date = DayOf(f[5]);
        row.source = f[6].as<std::string>();
        row.covariates.clear();
        for (auto& v : ParseArray(f[7])) row.covariates.push_back(v.value_or(""));
        fn(row);
        after = row.line;
      }
      if (static_cast<int>(r.size()) < kBatch) return absl::OkStatus();
    }
  });
}

absl::Status RwdStore::RecordAccess(const AccessEntry& access) {
  return pool_.Run([&](pqxx::work& tx) -> absl::Status {
    InsertAccess(tx, access);
    return absl::OkStatus();
  });
}

absl::StatusOr<std::vector<std::pair<int64_t, v1::CohortAccess>>> RwdStore::ListAccess(
    int64_t cohort_id, const std::string& principal_id, const Page& page) {
  std::vector<std::pair<int64_t, v1::CohortAccess>> out;
  RETURN_IF_ERROR(pool_.Read([&](pqxx::work& tx) -> absl::Status {
    out.clear();
    for (const auto& row : tx.exec_prepared("rwd_list_access", cohort_id, principal_id,
                                            AfterId(page), page.limit)) {
      v1::CohortAccess a;
      a.set_cohort(absl::StrCat("cohorts/", row[1].as<int64_t>()));
      a.set_principal_id(row[2].as<std::string>());
      v1::AccessAction action = v1::ACCESS_ACTION_UNSPECIFIED;
      v1::AccessAction_Parse(row[3].as<std::string>(), &action);
      a.set_action(action);
      a.set_method(row[4].as<std::string>());
      if (int64_t analysis = row[5].as<int64_t>(); analysis > 0) {
        a.set_analysis(absl::StrCat("analyses/", analysis));
      }
      SetTime(a.mutable_time(), row[6].as<int64_t>());
      out.emplace_back(row[0].as<int64_t>(), std::move(a));
    }
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<std::optional<v1::Analysis>> RwdStore::FindAnalysis(const std::string& request_id) {
  std::optional<v1::Analysis> out;
  if (request_id.empty()) return out;
  RETURN_IF_ERROR(pool_.Read([&](pqxx::work& tx) -> absl::Status {
    pqxx::result r = tx.exec_prepared("rwd_analysis_by_request", request_id);
    if (r.empty()) return absl::OkStatus();
    ASSIGN_OR_RETURN(v1::Analysis a, AnalysisFromRow(r[0]));
    out = std::move(a);
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<v1::Analysis> RwdStore::CreateAnalysis(int64_t cohort_id,
                                                      const v1::Analysis& analysis,
                                                      const std::string& request_id,
                                                      AccessEntry access) {
  v1::Analysis body = analysis;
  body.clear_name();
  body.clear_created();
  body.clear_result_json();
  body.clear_cohort();
  body.clear_protocol();
  ASSIGN_OR_RETURN(std::string json, ToJson(body));
  std::string protocol_id = analysis.protocol().substr(std::string("protocols/").size());
  v1::Analysis out;
  RETURN_IF_ERROR(pool_.Run([&](pqxx::work& tx) -> absl::Status {
    pqxx::result r = tx.exec_prepared("rwd_insert_analysis", cohort_id, protocol_id,
                                      request_id.empty() ? nullptr : request_id.c_str(), json,
                                      analysis.result_json(), access.principal_id,
                                      Rfc3339(access.at));
    int64_t id = r[0][0].as<int64_t>();
    access.cohort_id = cohort_id;
    access.analysis_id = id;
    InsertAccess(tx, access);
    ASSIGN_OR_RETURN(out, AnalysisFromRow(tx.exec_prepared("rwd_get_analysis", id)[0]));
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<v1::Analysis> RwdStore::GetAnalysis(int64_t analysis_id,
                                                   std::optional<AccessEntry> access) {
  v1::Analysis out;
  RETURN_IF_ERROR(pool_.Run([&](pqxx::work& tx) -> absl::Status {
    pqxx::result r = tx.exec_prepared("rwd_get_analysis", analysis_id);
    if (r.empty()) {
      return absl::NotFoundError(absl::StrCat("analyses/", analysis_id, " not found"));
    }
    ASSIGN_OR_RETURN(out, AnalysisFromRow(r[0]));
    if (access) {
      access->cohort_id = r[0][1].as<int64_t>();
      access->analysis_id = analysis_id;
      InsertAccess(tx, *access);
    }
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<std::vector<v1::Analysis>> RwdStore::ListAnalyses(int64_t cohort_id,
                                                                const std::string& protocol_id,
                                                                const Page& page) {
  std::vector<v1::Analysis> out;
  RETURN_IF_ERROR(pool_.Read([&](pqxx::work& tx) -> absl::Status {
    out.clear();
    for (const auto& row : tx.exec_prepared("rwd_list_analyses", cohort_id, protocol_id,
                                            AfterId(page), page.limit)) {
      ASSIGN_OR_RETURN(v1::Analysis a, AnalysisFromRow(row));
      out.push_back(std::move(a));
    }
    return absl::OkStatus();
  }));
  return out;
}

}  // namespace medkoord::rwd
