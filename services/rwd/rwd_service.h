#pragma once
// gRPC handlers of medkoord.rwd.v1.Rwd: verify the signed principal, check
// the role, validate, call the domain code (cohort.h, analysis.h, report.h,
// the analysis library) and the store, record who touched which cohort, map
// the result. No SQL and no statistics here.

#include <string>

#include "absl/status/statusor.h"
#include "common/clock.h"
#include "common/principal.h"
#include "common/service_main.h"
#include "medkoord/rwd/v1/rwd.grpc.pb.h"
#include "services/rwd/cohort.h"
#include "services/rwd/rwd_store.h"

namespace medkoord::rwd {

struct RwdOptions {
  // Counts from 1 to small_count_mask-1 are masked in published outputs.
  int small_count_mask = 5;
  UploadLimits upload;
};

class RwdService final : public v1::Rwd::Service {
 public:
  RwdService(RwdStore& store, const PrincipalSigner& signer, const Clock& clock,
             Pseudonymiser pseudonymiser, RwdOptions options)
      : store_(store),
        signer_(signer),
        clock_(clock),
        pseudonymiser_(std::move(pseudonymiser)),
        options_(options) {}

  grpc::Status CreateProtocol(grpc::ServerContext* context, const v1::CreateProtocolRequest* request,
                              v1::Protocol* response) override;
  grpc::Status GetProtocol(grpc::ServerContext* context, const v1::GetProtocolRequest* request,
                           v1::Protocol* response) override;
  grpc::Status ListProtocols(grpc::ServerContext* context, const v1::ListProtocolsRequest* request,
                             v1::ListProtocolsResponse* response) override;
  grpc::Status UploadCohort(grpc::ServerContext* context,
                            grpc::ServerReader<v1::UploadCohortRequest>* reader,
                            v1::UploadCohortResponse* response) override;
  grpc::Status GetCohort(grpc::ServerContext* context, const v1::GetCohortRequest* request,
                         v1::Cohort* response) override;
  grpc::Status ListCohorts(grpc::ServerContext* context, const v1::ListCohortsRequest* request,
                           v1::ListCohortsResponse* response) override;
  grpc::Status DeleteCohort(grpc::ServerContext* context, const v1::DeleteCohortRequest* request,
                            google::protobuf::Empty* response) override;
  grpc::Status GetDataQualityReport(grpc::ServerContext* context,
                                    const v1::GetDataQualityReportRequest* request,
                                    v1::DataQualityReport* response) override;
  grpc::Status ListCohortAccess(grpc::ServerContext* context,
                                const v1::ListCohortAccessRequest* request,
                                v1::ListCohortAccessResponse* response) override;
  grpc::Status RunAnalysis(grpc::ServerContext* context, const v1::RunAnalysisRequest* request,
                           v1::Analysis* response) override;
  grpc::Status GetAnalysis(grpc::ServerContext* context, const v1::GetAnalysisRequest* request,
                           v1::Analysis* response) override;
  grpc::Status ListAnalyses(grpc::ServerContext* context, const v1::ListAnalysesRequest* request,
                            v1::ListAnalysesResponse* response) override;
  grpc::Status GetAnalysisReport(grpc::ServerContext* context,
                                 const v1::GetAnalysisReportRequest* request,
                                 v1::AnalysisReport* response) override;

 private:
  absl::StatusOr<Principal> Authorize(grpc::ServerContext& context, const char* method,
                                      std::initializer_list<Role> roles) const;
  AccessEntry Access(const Principal& p, const char* method, v1::AccessAction action) const;
  absl::Status Upload(grpc::ServerContext& context, const Principal& principal,
                      grpc::ServerReader<v1::UploadCohortRequest>& reader,
                      v1::UploadCohortResponse& response);
  absl::Status Replay(v1::UploadCohortResponse prior, v1::UploadCohortResponse& response);
  absl::StatusOr<v1::Analysis> Analyse(const Principal& principal,
                                       const v1::RunAnalysisRequest& request);

  RwdStore& store_;
  const PrincipalSigner& signer_;
  const Clock& clock_;
  Pseudonymiser pseudonymiser_;
  RwdOptions options_;
};

// Reads the RWD settings (`pseudonym_key` secret, at least 32 bytes;
// `small_count_mask`, default 5) and builds the store and the service.
absl::StatusOr<ServiceParts> BuildRwdService(ServiceContext& ctx);

// Validation of a protocol (every bad field at once, paths under `protocol.`).
absl::Status ValidateProtocol(const std::string& protocol_id, const v1::Protocol& protocol);

// "cohorts/17" -> 17; nullopt when malformed.
std::optional<int64_t> ParseId(const std::string& name, std::string_view collection);

}  // namespace medkoord::rwd
