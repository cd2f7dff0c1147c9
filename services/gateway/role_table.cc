#include "services/gateway/role_table.h"

#include <algorithm>
#include <set>

#include <google/protobuf/descriptor_database.h>
#include <google/protobuf/message.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "medkoord/common/v1/annotations.pb.h"

namespace medkoord::gateway {

namespace pb = google::protobuf;

std::string BackendOfPackage(std::string_view package) {
  std::vector<absl::string_view> parts = absl::StrSplit(absl::string_view(package.data(), package.size()), '.');
  if (parts.size() != 3 || parts[0] != "medkoord" || parts[2].size() < 2 || parts[2][0] != 'v') return "";
  if (parts[1] == "common") return "";
  return std::string(parts[1]);
}

absl::StatusOr<RoleTable> RoleTable::FromGeneratedPool() {
  std::vector<std::string> names;
  // The generated database knows every file linked into the binary, while
  // the pool itself only builds files on demand and cannot list them.
  pb::DescriptorPool::internal_generated_database()->FindAllFileNames(&names);
  std::sort(names.begin(), names.end());
  std::vector<const pb::FileDescriptor*> files;
  for (const std::string& name : names) {
    if (!absl::StartsWith(name, "medkoord/")) continue;
    const pb::FileDescriptor* file = pb::DescriptorPool::generated_pool()->FindFileByName(name);
    if (file == nullptr) return absl::InternalError(absl::StrCat("descriptor for ", name, " does not build"));
    files.push_back(file);
  }
  return FromFiles(files);
}

absl::StatusOr<RoleTable> RoleTable::FromFiles(const std::vector<const pb::FileDescriptor*>& files) {
  RoleTable table;
  for (const pb::FileDescriptor* file : files) {
    const std::string backend = BackendOfPackage(file->package());
    if (backend.empty()) continue;
    for (int s = 0; s < file->service_count(); ++s) {
      const pb::ServiceDescriptor* service = file->service(s);
      if (absl::EndsWith(service->name(), "Internal")) continue;
      for (int m = 0; m < service->method_count(); ++m) {
        const pb::MethodDescriptor* method = service->method(m);
        const pb::MethodOptions& options = method->options();
        const int n = options.ExtensionSize(medkoord::common::v1::allowed_roles);
        MethodRoute route;
        for (int i = 0; i < n; ++i) {
          const Role role = options.GetExtension(medkoord::common::v1::allowed_roles, i);
          // The service role is for `...Internal` methods only, whatever a
          // public method claims.
          if (role == medkoord::common::v1::ROLE_SERVICE || role == medkoord::common::v1::ROLE_UNSPECIFIED) {
            continue;
          }
          route.allowed_roles.push_back(role);
        }
        if (route.allowed_roles.empty()) continue;
        route.full_name = absl::StrCat("/", service->full_name(), "/", method->name());
        route.service = service->full_name();
        route.backend = backend;
        route.audit_resource_field = options.GetExtension(medkoord::common::v1::audit_resource_field);
        route.client_streaming = method->client_streaming();
        route.server_streaming = method->server_streaming();
        route.input = method->input_type();
        if (table.index_.contains(route.full_name)) {
          return absl::InternalError(absl::StrCat("method ", route.full_name, " defined twice"));
        }
        table.index_[route.full_name] = table.routes_.size();
        table.routes_.push_back(std::move(route));
      }
    }
  }
  return table;
}

const MethodRoute* RoleTable::Find(std::string_view full_method) const {
  auto it = index_.find(absl::string_view(full_method.data(), full_method.size()));
  return it == index_.end() ? nullptr : &routes_[it->second];
}

bool RoleTable::Allows(const MethodRoute& route, const Principal& principal) const {
  for (Role role : route.allowed_roles) {
    if (HasRole(principal, role)) return true;
  }
  return false;
}

std::vector<std::string> RoleTable::Backends() const {
  std::set<std::string> out;
  for (const auto& r : routes_) out.insert(r.backend);
  return {out.begin(), out.end()};
}

std::string StringFieldByPath(const pb::Message& message, std::string_view path) {
  const pb::Message* current = &message;
  std::vector<absl::string_view> parts = absl::StrSplit(absl::string_view(path.data(), path.size()), '.');
  for (size_t i = 0; i < parts.size(); ++i) {
    const pb::FieldDescriptor* field = current->GetDescriptor()->FindFieldByName(std::string(parts[i]));
    if (field == nullptr || field->is_repeated()) return "";
    const pb::Reflection* reflection = current->GetReflection();
    if (i + 1 == parts.size()) {
      if (field->cpp_type() != pb::FieldDescriptor::CPPTYPE_STRING) return "";
      return reflection->GetString(*current, field);
    }
    if (field->cpp_type() != pb::FieldDescriptor::CPPTYPE_MESSAGE || !reflection->HasField(*current, field)) return "";
    current = &reflection->GetMessage(*current, field);
  }
  return "";
}

}  // namespace medkoord::gateway
