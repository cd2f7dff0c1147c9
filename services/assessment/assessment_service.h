#pragma once
// gRPC handlers of the assessment service: verify the signed principal,
// validate, apply the rules of case_rules.h, call the store, map the result.
// WatchDecisions uses the callback API so that many watchers hold no thread.

#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "common/clock.h"
#include "common/db/outbox.h"
#include "common/principal.h"
#include "medkoord/assessment/v1/assessment.grpc.pb.h"
#include "medkoord/intake/v1/intake.grpc.pb.h"
#include "services/assessment/assessment_store.h"
#include "services/assessment/decision_feed.h"

namespace medkoord::assessment {

namespace v1 = ::medkoord::assessment::v1;

// Topic of the outbox rows that carry decisions to intake.
inline constexpr char kDecisionTopic[] = "assessment.decision.recorded";

// CaseRecord -> the public resource.
v1::Case ToProto(const CaseRecord& c);

// Service to service: intake's submission, import and withdrawal events.
class AssessmentInternalService final : public v1::AssessmentInternal::Service {
 public:
  AssessmentInternalService(AssessmentStore& store, const PrincipalSigner& signer, const Clock& clock)
      : store_(store), signer_(signer), clock_(clock) {}

  grpc::Status ApplyIntakeEvent(grpc::ServerContext* context, const v1::ApplyIntakeEventRequest* request,
                                v1::ApplyIntakeEventResponse* response) override;

 private:
  AssessmentStore& store_;
  const PrincipalSigner& signer_;
  const Clock& clock_;
};

class AssessmentService final
    : public v1::Assessment::WithCallbackMethod_WatchDecisions<v1::Assessment::Service> {
 public:
  AssessmentService(AssessmentStore& store, DecisionFeed& feed, const PrincipalSigner& signer,
                    const Clock& clock)
      : store_(store), feed_(feed), signer_(signer), clock_(clock) {}

  grpc::Status GetCase(grpc::ServerContext* context, const v1::GetCaseRequest* request,
                       v1::Case* response) override;
  grpc::Status ListCases(grpc::ServerContext* context, const v1::ListCasesRequest* request,
                         v1::ListCasesResponse* response) override;
  grpc::Status AssignCase(grpc::ServerContext* context, const v1::AssignCaseRequest* request,
                          v1::Case* response) override;
  grpc::Status RecordDecision(grpc::ServerContext* context, const v1::RecordDecisionRequest* request,
                              v1::Case* response) override;
  grpc::Status GetCaseHistory(grpc::ServerContext* context, const v1::GetCaseHistoryRequest* request,
                              v1::GetCaseHistoryResponse* response) override;
  grpc::Status FindPrecedents(grpc::ServerContext* context, const v1::FindPrecedentsRequest* request,
                              v1::FindPrecedentsResponse* response) override;
  grpc::Status GetAnnualReport(grpc::ServerContext* context, const v1::GetAnnualReportRequest* request,
                               v1::GetAnnualReportResponse* response) override;
  grpc::ServerWriteReactor<v1::DecisionEvent>* WatchDecisions(
      grpc::CallbackServerContext* context, const v1::WatchDecisionsRequest* request) override;

 private:
  absl::StatusOr<Principal> Authenticate(const grpc::ServerContextBase& context, const char* method) const;

  AssessmentStore& store_;
  DecisionFeed& feed_;
  const PrincipalSigner& signer_;
  const Clock& clock_;
};

// Delivers outbox rows (decisions) to intake's IntakeInternal.ApplyDecision,
// signed as the "assessment" service principal. The event id of the outbox
// row is the idempotency key intake sees. The relay delivers in order, so
// an answer that will never change (intake has no such application, the
// event is malformed or refused) is returned as db::OutboxRefused: settled
// with its reason instead of holding up every later decision; outages and
// other errors are retried.
class IntakeDecisionDelivery {
 public:
  IntakeDecisionDelivery(std::shared_ptr<grpc::Channel> channel, const PrincipalSigner& signer,
                         absl::Duration timeout = absl::Seconds(10));
  absl::Status operator()(const db::OutboxEvent& event) const;

 private:
  std::unique_ptr<::medkoord::intake::v1::IntakeInternal::Stub> stub_;
  const PrincipalSigner& signer_;
  absl::Duration timeout_;
};

}  // namespace medkoord::assessment
