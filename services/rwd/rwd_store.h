#pragma once
// All SQL of the RWD service. Patient rows arrive pseudonymised (cohort.h);
// nothing here ever sees a CPR number.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <pqxx/pqxx>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/db/pool.h"
#include "medkoord/rwd/v1/rwd.pb.h"
#include "services/rwd/cohort_row.h"

namespace medkoord::rwd {

namespace v1 = ::medkoord::rwd::v1;

struct Page {
  std::string after;  // keyset: the last id of the previous page, "" for the first
  int limit = 50;
};

// What the access log records.
struct AccessEntry {
  int64_t cohort_id = 0;
  std::string principal_id;
  v1::AccessAction action = v1::ACCESS_ACTION_UNSPECIFIED;
  std::string method;
  int64_t analysis_id = 0;  // 0: none
  absl::Time at;
};

// A cohort's columns as stored, to write it back for an analysis.
struct CohortShape {
  int64_t cohort_id = 0;
  std::string protocol_id;
  std::vector<std::string> covariate_names;
  std::vector<bool> covariate_numeric;
  bool has_source = false;
  int64_t patients = 0;
};

class RwdStore {
 public:
  explicit RwdStore(db::Pool& pool) : pool_(pool) {}

  // Prepares the statements on a new connection (db::PoolOptions::prepare).
  static void Prepare(pqxx::connection& c);

  // ------------------------------------------------------------ protocols
  // Stores `protocol` (without name and created) under `protocol_id`.
  // A repeated `request_id` returns the first protocol; an existing id is
  // ALREADY_EXISTS.
  absl::StatusOr<v1::Protocol> CreateProtocol(const std::string& protocol_id,
                                              const v1::Protocol& protocol,
                                              const std::string& request_id,
                                              const std::string& principal_id, absl::Time now);
  absl::StatusOr<v1::Protocol> GetProtocol(const std::string& protocol_id);
  absl::StatusOr<std::vector<v1::Protocol>> ListProtocols(const Page& page);

  // -------------------------------------------------------------- cohorts
  // The stored response of an earlier upload with this request id.
  absl::StatusOr<std::optional<v1::UploadCohortResponse>> FindUpload(const std::string& request_id);

  // One upload in one transaction on a dedicated connection: rows are copied
  // in per batch; nothing is visible until Commit, and a writer destroyed
  // without Commit rolls everything back.
  class CohortWriter {
   public:
    virtual ~CohortWriter() = default;
    virtual int64_t cohort_id() const = 0;
    virtual absl::Status Insert(const std::vector<CohortRow>& rows) = 0;
    struct Summary {
      int64_t patients = 0;
      int64_t rows_rejected = 0;
      std::vector<std::string> covariate_names;
      std::vector<bool> covariate_numeric;
      bool has_source = false;
      std::string variables_json;  // [{name,type}]
      std::string arms_json;       // [{arm,patients}]
      std::string sha256;
      std::string quality_report_json;
      std::string upload_response;  // serialized v1::UploadCohortResponse
      AccessEntry access;           // the upload, in the same transaction
    };
    virtual absl::Status Commit(const Summary& summary) = 0;
  };
  absl::StatusOr<std::unique_ptr<CohortWriter>> BeginCohort(
      const std::string& protocol_id, const std::string& request_id,
      const std::string& display_name, std::optional<std::string> data_cut_date,
      const std::string& principal_id, absl::Time now);

  // Reads also record `access` (cohort id filled in here), in one transaction.
  absl::StatusOr<v1::Cohort> GetCohort(int64_t cohort_id, std::optional<AccessEntry> access);
  absl::StatusOr<std::vector<v1::Cohort>> ListCohorts(const std::string& protocol_id,
                                                     const Page& page);
  absl::StatusOr<std::string> GetQualityReport(int64_t cohort_id, const AccessEntry& access);
  // Deletes the cohort, its rows and analyses for good; records `access`.
  absl::Status DeleteCohort(int64_t cohort_id, const AccessEntry& access);
  absl::StatusOr<CohortShape> GetCohortShape(int64_t cohort_id);
  // Calls `fn` for every patient row in line order, in batches, within one
  // snapshot.
  absl::Status ForEachRow(int64_t cohort_id, const std::function<void(const CohortRow&)>& fn);

  absl::Status RecordAccess(const AccessEntry& access);
  // Newest first, each with its access id (the page keyset). `cohort_id`
  // 0 and `principal_id` "" mean no filter.
  absl::StatusOr<std::vector<std::pair<int64_t, v1::CohortAccess>>> ListAccess(
      int64_t cohort_id, const std::string& principal_id, const Page& page);

  // ------------------------------------------------------------- analyses
  absl::StatusOr<std::optional<v1::Analysis>> FindAnalysis(const std::string& request_id);
  // Stores the analysis (name and created are set here) and records the
  // ANALYSE access in the same transaction.
  absl::StatusOr<v1::Analysis> CreateAnalysis(int64_t cohort_id, const v1::Analysis& analysis,
                                              const std::string& request_id, AccessEntry access);
  absl::StatusOr<v1::Analysis> GetAnalysis(int64_t analysis_id, std::optional<AccessEntry> access);
  // `cohort_id` 0 and `protocol_id` "" mean no filter.
  absl::StatusOr<std::vector<v1::Analysis>> ListAnalyses(int64_t cohort_id,
                                                        const std::string& protocol_id,
                                                        const Page& page);

 private:
  db::Pool& pool_;
};

}  // namespace medkoord::rwd
