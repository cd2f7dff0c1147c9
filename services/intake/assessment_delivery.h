#pragma once
// Delivers intake's outbox events to assessment's internal
// ApplyIntakeEvent, signed as the intake service. FAILED_PRECONDITION (a
// withdrawal refused because the case was decided) and INVALID_ARGUMENT are
// final answers: the event is marked delivered instead of blocking every later
// event behind it forever.

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "common/db/outbox.h"
#include "common/principal.h"
#include "common/service_main.h"
#include "medkoord/assessment/v1/assessment.grpc.pb.h"

namespace medkoord::intake {

class AssessmentDelivery {
 public:
  AssessmentDelivery(std::shared_ptr<grpc::Channel> channel, const PrincipalSigner& signer,
                     absl::Duration timeout = absl::Seconds(10));

  absl::Status Deliver(const db::OutboxEvent& event);

 private:
  std::unique_ptr<medkoord::assessment::v1::AssessmentInternal::Stub> stub_;
  const PrincipalSigner& signer_;
  absl::Duration timeout_;
};

// The outbox relay that delivers intake's events to assessment; it keeps
// `delivery` alive.
std::unique_ptr<db::OutboxRelay> MakeAssessmentRelay(db::Pool& pool, std::shared_ptr<AssessmentDelivery> delivery,
                                                     db::OutboxRelayOptions options = {});

}  // namespace medkoord::intake
