#pragma once
// Lists a server's services through gRPC server reflection (v1alpha, what
// gRPC 1.51's reflection plugin serves). The message types come from the
// descriptors that libgrpc++_reflection registers, so no copy of
// reflection.proto is compiled here (it would clash with that library's).

#include <memory>
#include <string>
#include <vector>

#include <grpcpp/channel.h>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace medkoord {

absl::StatusOr<std::vector<std::string>> ListServicesByReflection(const std::shared_ptr<grpc::Channel>& channel,
                                                                  absl::Duration timeout = absl::Seconds(5));

}  // namespace medkoord
