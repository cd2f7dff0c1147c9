#include "services/gateway/cert_map.h"

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "nlohmann/json.hpp"

namespace medkoord::gateway {

absl::Status ValidatePrincipal(const Principal& p) {
  FieldViolations v;
  if (p.id().empty()) v.Add("principal_id", "is required");
  if (p.roles().empty()) v.Add("roles", "at least one role is required");
  for (int i = 0; i < p.roles_size(); ++i) {
    const Role role = static_cast<Role>(p.roles(i));
    if (role == medkoord::common::v1::ROLE_UNSPECIFIED || RoleName(role).empty()) {
      v.Add(absl::StrCat("roles[", i, "]"), "is not a role");
    }
  }
  const bool regional = HasRole(p, medkoord::common::v1::ROLE_REGION);
  if (regional && p.region() == medkoord::common::v1::REGION_UNSPECIFIED) {
    v.Add("region", "is required with the region role");
  }
  if (!regional && p.region() != medkoord::common::v1::REGION_UNSPECIFIED) {
    v.Add("region", "is only for principals with the region role");
  }
  return v.ToStatus();
}

absl::StatusOr<CertMap> CertMap::Parse(std::string_view text) {
  nlohmann::json doc = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object() || !doc.contains("certificates") || !doc["certificates"].is_array()) {
    return absl::InvalidArgumentError("cert map: expected {\"certificates\": [...]}");
  }
  CertMap map;
  FieldViolations v;
  int i = 0;
  for (const auto& entry : doc["certificates"]) {
    const std::string at = absl::StrCat("certificates[", i++, "]");
    if (!entry.is_object()) {
      v.Add(at, "must be an object");
      continue;
    }
    const std::string subject = entry.value("subject", "");
    if (subject.empty()) v.Add(at + ".subject", "is required");
    Principal p;
    p.set_id(entry.value("principal_id", ""));
    p.set_display_name(entry.value("display_name", ""));
    if (entry.contains("roles") && entry["roles"].is_array()) {
      for (const auto& r : entry["roles"]) {
        auto role = r.is_string() ? RoleFromName(r.get<std::string>()) : std::nullopt;
        if (!role) {
          v.Add(at + ".roles", absl::StrCat("unknown role ", r.dump()));
          continue;
        }
        p.add_roles(*role);
      }
    }
    if (entry.contains("region")) {
      auto region = entry["region"].is_string() ? RegionFromSlug(entry["region"].get<std::string>()) : std::nullopt;
      if (!region) {
        v.Add(at + ".region", "is not a region slug");
      } else {
        p.set_region(*region);
      }
    }
    if (absl::Status s = ValidatePrincipal(p); !s.ok()) {
      for (const auto& [field, why] : FieldViolationsOf(s)) v.Add(absl::StrCat(at, ".", field), why);
    }
    if (!subject.empty() && !map.by_subject_.emplace(subject, p).second) {
      v.Add(at + ".subject", "appears twice");
    }
  }
  RETURN_IF_ERROR(v.ToStatus());
  return map;
}

absl::StatusOr<CertMap> CertMap::Load(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::FailedPreconditionError(absl::StrCat("cannot read cert map file ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  auto map = Parse(ss.str());
  if (!map.ok()) return absl::FailedPreconditionError(absl::StrCat(path, ": ", map.status().message()));
  return map;
}

std::optional<Principal> CertMap::Find(std::string_view subject, std::string_view common_name) const {
  if (auto it = by_subject_.find(subject); !subject.empty() && it != by_subject_.end()) return it->second;
  if (!common_name.empty()) {
    if (auto it = by_subject_.find("CN=" + std::string(common_name)); it != by_subject_.end()) return it->second;
  }
  return std::nullopt;
}

}  // namespace medkoord::gateway
