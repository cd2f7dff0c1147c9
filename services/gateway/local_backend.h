#pragma once
// A backend that runs inside the gateway process (GatewayAdmin): the proxy
// hands it admitted unary calls instead of forwarding them over gRPC.

#include <functional>
#include <string>
#include <string_view>

#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/status.h>

#include "common/principal.h"

namespace medkoord::gateway {

class LocalBackend {
 public:
  // The status and, when OK, the serialized response.
  using Done = std::function<void(grpc::Status, std::string)>;
  virtual ~LocalBackend() = default;
  // The backend name its routes carry ("gateway").
  virtual std::string_view name() const = 0;
  // Runs the call off the caller's thread (the proxy's threads must not
  // block) and then `done`, on some other thread.
  virtual void CallAsync(const std::string& method, const Principal& caller, const grpc::ByteBuffer& request,
                         Done done) = 0;
};

}  // namespace medkoord::gateway
