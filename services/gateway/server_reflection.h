#pragma once
// gRPC server reflection (grpc.reflection.v1alpha and v1, which share their
// messages) on the gateway's listener, served by the proxy's own threads: gRPC
// 1.51's reflection plugin is a synchronous service, and one sync method on a
// server makes gRPC start sync-server threads that poll the same sockets as
// the proxy's threads (19 % of the gateway's CPU samples in session 2's
// profile). So the plugin is left out (WithoutSyncPlugins) and the proxy's
// generic service answers the reflection stream with Answer().
//
// It lists what a client can call through the gateway (the public services,
// health, reflection) and resolves symbols and files in the descriptor pool
// the binary is linked with, as the plugin did. Like the plugin and health,
// it needs no credentials: it describes the public contract, calls nothing.
//
// The messages are read and written on the wire directly (field numbers of
// reflection.proto below): libgrpc++_reflection ships no headers for its
// generated types, and compiling a second reflection.proto would clash with
// its descriptors.

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <google/protobuf/descriptor.h>
#include <grpcpp/impl/server_builder_option.h>
#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/status.h>

#include "absl/status/statusor.h"

namespace medkoord::gateway {

class ServerReflection {
 public:
  // `services`: the names list_services answers (reflection's own added).
  explicit ServerReflection(std::vector<std::string> services,
                            const google::protobuf::DescriptorPool* pool =
                                google::protobuf::DescriptorPool::generated_pool());

  // True for ".../ServerReflection/ServerReflectionInfo" of v1alpha and v1.
  static bool Serves(std::string_view full_method);

  // The serialized ServerReflectionResponse to one serialized
  // ServerReflectionRequest; INVALID_ARGUMENT if the request does not parse.
  // Lookups that find nothing are answered (error_response NOT_FOUND), as
  // the protocol says, not failed.
  absl::StatusOr<std::string> Answer(std::string_view request) const;

  const std::vector<std::string>& services() const { return services_; }

 private:
  std::vector<std::string> services_;
  const google::protobuf::DescriptorPool* pool_;
};

// A ServerBuilder option that drops every builder plugin adding synchronous
// methods (in gRPC 1.51: the reflection plugin, which its library registers
// for every ServerBuilder at load time), so a callback-only server stays
// callback-only and gRPC starts no sync polling threads for it.
class WithoutSyncPlugins final : public grpc::ServerBuilderOption {
 public:
  void UpdateArguments(grpc::ChannelArguments*) override {}
  void UpdatePlugins(std::vector<std::unique_ptr<grpc::ServerBuilderPlugin>>* plugins) override;
};

// The bytes of a ByteBuffer, flattened.
std::string BytesOf(const grpc::ByteBuffer& buffer);

}  // namespace medkoord::gateway
