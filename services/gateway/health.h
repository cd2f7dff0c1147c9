#pragma once
// grpc.health.v1.Health/Check on the gateway's listener, answered by the
// proxy's own threads. gRPC's default health service is a callback service,
// and any callback service makes gRPC 1.51 start "nexting" threads that poll
// the same sockets as the proxy's completion-queue threads: every event one
// of them picked up was handed over to a proxy thread, a wake-up more per
// call. (Watch is answered UNIMPLEMENTED, which gRPC's client-side health
// checking reads as "no health checking"; probes and the suite use Check,
// and /healthz says the same over HTTP.)

#include <atomic>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace medkoord::gateway {

class HealthService {
 public:
  static constexpr std::string_view kCheck = "/grpc.health.v1.Health/Check";
  static constexpr std::string_view kWatch = "/grpc.health.v1.Health/Watch";

  void SetServing(bool serving) { serving_.store(serving); }
  bool serving() const { return serving_.load(); }

  // The serialized HealthCheckResponse to a serialized HealthCheckRequest:
  // SERVING / NOT_SERVING for the service "" (the whole gateway), NOT_FOUND
  // for any named one, INVALID_ARGUMENT if the request does not parse.
  absl::StatusOr<std::string> Check(std::string_view request) const;

 private:
  std::atomic<bool> serving_{false};
};

}  // namespace medkoord::gateway
