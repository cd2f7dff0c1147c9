#pragma once
// Maps client-certificate subjects (mutual TLS) to principals, from the JSON
// file named by `cert_map_file`:
//
//   {"certificates": [
//     {"subject": "CN=syddanmark-it,O=Region Syddanmark,C=DK",
//      "principal_id": "syddanmark-it", "roles": ["region"], "region": "syddanmark",
//      "display_name": "Region Syddanmark IT"}]}
//
// `subject` is the RFC 2253 form gRPC reports for the peer; an entry of only
// "CN=<name>" matches any certificate with that common name.

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "common/principal.h"

namespace medkoord::gateway {

class CertMap {
 public:
  static absl::StatusOr<CertMap> Parse(std::string_view json);
  static absl::StatusOr<CertMap> Load(const std::string& path);

  std::optional<Principal> Find(std::string_view subject, std::string_view common_name) const;
  size_t size() const { return by_subject_.size(); }

 private:
  std::map<std::string, Principal, std::less<>> by_subject_;
};

// Checks what every principal, however it authenticated, must satisfy: an id,
// known roles, and a region exactly when it has the region role.
absl::Status ValidatePrincipal(const Principal& principal);

}  // namespace medkoord::gateway
