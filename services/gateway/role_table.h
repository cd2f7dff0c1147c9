#pragma once
// The gateway's routing and role table, built at start-up from the protobuf
// descriptors the binary is linked with: every public method of every
// `medkoord.<svc>.v1` service, with the roles its `allowed_roles` option
// lists. A new method therefore needs no gateway code; `...Internal`
// services and methods without roles are never exposed.

#include <string>
#include <string_view>
#include <vector>

#include <google/protobuf/descriptor.h>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "common/principal.h"

namespace medkoord::gateway {

struct MethodRoute {
  std::string full_name;  // "/medkoord.intake.v1.Intake/GetApplication"
  std::string service;    // "medkoord.intake.v1.Intake"
  std::string backend;    // "intake": the <svc> of the package, names the <svc>_addr setting
  std::vector<Role> allowed_roles;
  // Dotted path of the request field naming the resource, for the audit log.
  // Empty: "name", else "parent", when the request has them.
  std::string audit_resource_field;
  bool client_streaming = false;
  bool server_streaming = false;
  const google::protobuf::Descriptor* input = nullptr;
};

class RoleTable {
 public:
  // Every file under `medkoord/` in the generated pool.
  static absl::StatusOr<RoleTable> FromGeneratedPool();
  // The services of `files` (already in `pool`); for tests.
  static absl::StatusOr<RoleTable> FromFiles(const std::vector<const google::protobuf::FileDescriptor*>& files);

  // nullptr for unknown, internal and role-less methods alike, so a caller
  // learns nothing about what is hidden.
  const MethodRoute* Find(std::string_view full_method) const;
  bool Allows(const MethodRoute& route, const Principal& principal) const;

  const std::vector<MethodRoute>& routes() const { return routes_; }
  // Distinct backends, sorted.
  std::vector<std::string> Backends() const;

 private:
  std::vector<MethodRoute> routes_;
  absl::flat_hash_map<std::string, size_t> index_;
};

// "medkoord.intake.v1" -> "intake"; "" for packages outside medkoord.<svc>.v<N>.
std::string BackendOfPackage(std::string_view package);

// The value of a dotted field path ("application.name") of a string field,
// or "" if any part is missing or not a message / string.
std::string StringFieldByPath(const google::protobuf::Message& message, std::string_view path);

}  // namespace medkoord::gateway
