#include "services/intake/assessment_delivery.h"

#include <chrono>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/server.h"
#include "common/status.h"

namespace medkoord::intake {

namespace av1 = ::medkoord::assessment::v1;

AssessmentDelivery::AssessmentDelivery(std::shared_ptr<grpc::Channel> channel, const PrincipalSigner& signer,
                                       absl::Duration timeout)
    : stub_(av1::AssessmentInternal::NewStub(std::move(channel))), signer_(signer), timeout_(timeout) {}

absl::Status AssessmentDelivery::Deliver(const db::OutboxEvent& event) {
  av1::ApplyIntakeEventRequest request;
  if (!request.ParseFromString(event.payload)) {
    log::Error("outbox event unreadable; dropped", {{"event_id", event.event_id}, {"topic", event.topic}});
    return absl::OkStatus();
  }
  request.set_event_id(event.event_id);
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + timeout_));
  if (!event.traceparent.empty()) context.AddMetadata("traceparent", event.traceparent);
  signer_.Attach(context, ServicePrincipal("intake"),
                 FullMethodName(av1::AssessmentInternal::service_full_name(), "ApplyIntakeEvent"));
  av1::ApplyIntakeEventResponse response;
  grpc::Status status = stub_->ApplyIntakeEvent(&context, request, &response);
  switch (status.error_code()) {
    case grpc::StatusCode::OK:
      return absl::OkStatus();
    case grpc::StatusCode::FAILED_PRECONDITION:
      log::Info("assessment refused the event (final)",
                {{"event_id", event.event_id}, {"topic", event.topic}, {"reason", status.error_message()}});
      return absl::OkStatus();
    case grpc::StatusCode::INVALID_ARGUMENT:
      log::Error("assessment rejected the event as malformed (final)",
                 {{"event_id", event.event_id}, {"topic", event.topic}, {"reason", status.error_message()}});
      return absl::OkStatus();
    default:
      return FromGrpcStatus(status);
  }
}

std::unique_ptr<db::OutboxRelay> MakeAssessmentRelay(db::Pool& pool, std::shared_ptr<AssessmentDelivery> delivery,
                                                     db::OutboxRelayOptions options) {
  return std::make_unique<db::OutboxRelay>(
      pool, [delivery = std::move(delivery)](const db::OutboxEvent& e) { return delivery->Deliver(e); },
      std::move(options));
}

}  // namespace medkoord::intake
