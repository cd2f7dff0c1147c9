#pragma once
// The Echo test service: verifies the signed principal like every real
// handler, optionally sleeps, and echoes.

#include <functional>

#include "common/principal.h"
#include "medkoord/testing/v1/testing.grpc.pb.h"

namespace medkoord::testing {

class EchoService final : public medkoord::testing::v1::Echo::Service {
 public:
  // `on_enter` runs when a call reaches the handler (tests wait on it instead
  // of sleeping).
  explicit EchoService(const PrincipalSigner* signer, std::function<void()> on_enter = nullptr)
      : signer_(signer), on_enter_(std::move(on_enter)) {}
  grpc::Status Echo(grpc::ServerContext* context, const v1::EchoRequest* request,
                    v1::EchoResponse* response) override;

 private:
  const PrincipalSigner* signer_;
  std::function<void()> on_enter_;
};

}  // namespace medkoord::testing
