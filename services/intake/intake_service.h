#pragma once
// gRPC handlers of medkoord.intake.v1.Intake and IntakeInternal: verify the
// signed principal, check the role and the region scope (a regional caller
// only ever sees and changes its own region's applications), validate, call
// the store, map the result. No SQL here.

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/clock.h"
#include "common/principal.h"
#include "medkoord/intake/v1/intake.grpc.pb.h"
#include "services/intake/intake_store.h"

namespace medkoord::intake {

namespace v1 = ::medkoord::intake::v1;

// SubmitApplication is served with gRPC's callback API: a submission waiting
// for its group commit (IntakeStore::StartSubmitApplication) holds no
// thread; the other methods are synchronous.
class IntakeService final : public v1::Intake::WithCallbackMethod_SubmitApplication<v1::Intake::Service> {
 public:
  IntakeService(IntakeStore& store, const PrincipalSigner& signer, const Clock& clock)
      : store_(store), signer_(signer), clock_(clock) {}

  grpc::ServerUnaryReactor* SubmitApplication(grpc::CallbackServerContext* context,
                                              const v1::SubmitApplicationRequest* request,
                                              v1::Application* response) override;
  grpc::Status GetApplication(grpc::ServerContext* context, const v1::GetApplicationRequest* request,
                              v1::Application* response) override;
  grpc::Status ListApplications(grpc::ServerContext* context, const v1::ListApplicationsRequest* request,
                                v1::ListApplicationsResponse* response) override;
  grpc::Status WithdrawApplication(grpc::ServerContext* context, const v1::WithdrawApplicationRequest* request,
                                   v1::Application* response) override;
  grpc::Status CreateProtocol(grpc::ServerContext* context, const v1::CreateProtocolRequest* request,
                              v1::Protocol* response) override;
  grpc::Status GetProtocol(grpc::ServerContext* context, const v1::GetProtocolRequest* request,
                           v1::Protocol* response) override;
  grpc::Status ListProtocols(grpc::ServerContext* context, const v1::ListProtocolsRequest* request,
                             v1::ListProtocolsResponse* response) override;
  grpc::Status AddProtocolNote(grpc::ServerContext* context, const v1::AddProtocolNoteRequest* request,
                               v1::Protocol* response) override;
  grpc::Status ImportApplications(grpc::ServerContext* context,
                                  grpc::ServerReader<v1::ImportApplicationsRequest>* reader,
                                  v1::ImportApplicationsResponse* response) override;
  grpc::Status ExportApplications(grpc::ServerContext* context, const v1::ExportApplicationsRequest* request,
                                  grpc::ServerWriter<v1::ExportApplicationsResponse>* writer) override;

  // Rows per import batch (one round of statements each).
  static constexpr size_t kImportBatch = 5000;
  // Row errors kept in an import's response.
  static constexpr int kMaxImportErrors = 10000;

 private:
  absl::StatusOr<Principal> Authorize(const grpc::ServerContextBase& context, const char* method,
                                      std::initializer_list<Role> roles) const;

  IntakeStore& store_;
  const PrincipalSigner& signer_;
  const Clock& clock_;
};

class IntakeInternalService final : public v1::IntakeInternal::Service {
 public:
  IntakeInternalService(IntakeStore& store, const PrincipalSigner& signer, const Clock& clock)
      : store_(store), signer_(signer), clock_(clock) {}

  grpc::Status ApplyDecision(grpc::ServerContext* context, const v1::ApplyDecisionRequest* request,
                             v1::ApplyDecisionResponse* response) override;

 private:
  IntakeStore& store_;
  const PrincipalSigner& signer_;
  const Clock& clock_;
};

// Proto <-> domain mapping (exposed for tests).
void ToProto(const ApplicationRecord& record, v1::Application* out);
RawApplication RawFromProto(const v1::Application& application);

// The outbox payloads (medkoord.assessment.v1.ApplyIntakeEventRequest
// without event_id, which the relay sets from the outbox row).
std::string SubmittedEvent(const ApplicationRecord& record);
std::string ImportedEvent(const ApplicationRecord& record);
std::string WithdrawnEvent(const ApplicationRecord& record);

}  // namespace medkoord::intake
