#include "echo_service.h"

#include "absl/time/clock.h"
#include "common/server.h"
#include "common/status.h"

namespace medkoord::testing {

grpc::Status EchoService::Echo(grpc::ServerContext* context, const v1::EchoRequest* request,
                               v1::EchoResponse* response) {
  if (signer_ != nullptr) {
    auto principal = signer_->Verify(*context, FullMethodName(v1::Echo::service_full_name(), "Echo"));
    if (!principal.ok()) return ToGrpcStatus(principal.status());
    response->set_principal_id(principal->id());
  }
  if (on_enter_) on_enter_();
  if (request->delay_ms() > 0) absl::SleepFor(absl::Milliseconds(request->delay_ms()));
  response->set_text(request->text());
  return grpc::Status::OK;
}

}  // namespace medkoord::testing
