#pragma once
// The signed principal (ARCHITECTURE.md, "Identity and authorisation").
// The gateway authenticates a caller, signs {principal, method, expiry} with
// the shared key and sends it as metadata; every service verifies it before
// doing anything and enforces its data-dependent rules (region scoping) itself.

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <grpcpp/client_context.h>
#include <grpcpp/server_context.h>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "medkoord/common/v1/common.pb.h"
#include "medkoord/common/v1/principal.pb.h"

namespace medkoord {

inline constexpr char kPrincipalMetadata[] = "x-medkoord-principal-bin";
inline constexpr char kSignatureMetadata[] = "x-medkoord-signature-bin";

using Principal = medkoord::common::v1::Principal;
using Role = medkoord::common::v1::Role;
using Region = medkoord::common::v1::Region;

bool HasRole(const Principal& p, Role role);
bool HasAnyRole(const Principal& p, std::initializer_list<Role> roles);

// Region slugs as used in resource names and the export format.
std::string_view RegionSlug(Region region);                // REGION_SYDDANMARK -> "syddanmark"
std::optional<Region> RegionFromSlug(std::string_view slug);
std::string_view RoleName(Role role);                      // ROLE_TASK_FORCE -> "task_force"
std::optional<Role> RoleFromName(std::string_view name);

// Signs and verifies principals with HMAC-SHA256 under a shared key.
class PrincipalSigner {
 public:
  // `key` must be at least 32 bytes.
  static absl::StatusOr<PrincipalSigner> Create(std::string key, const Clock* clock = SystemClock());

  // Metadata values for calling `method` as `principal`, valid for `ttl`.
  struct Signed {
    std::string principal_bin;  // serialized SignedPrincipal
    std::string signature_bin;  // 32-byte HMAC
  };
  Signed Sign(const Principal& principal, std::string_view method, absl::Duration ttl) const;

  // Attaches a signed principal to an outgoing call.
  void Attach(grpc::ClientContext& context, const Principal& principal, std::string_view method,
              absl::Duration ttl = absl::Seconds(60)) const;

  // UNAUTHENTICATED unless the metadata carry a principal signed with our key,
  // for exactly `method`, not expired.
  absl::StatusOr<Principal> Verify(std::string_view principal_bin, std::string_view signature_bin,
                                   std::string_view method) const;
  // The call's metadata; `method` is the full method name the handler serves
  // (FullMethodName in common/server.h). Works for sync and callback contexts.
  absl::StatusOr<Principal> Verify(const grpc::ServerContextBase& context, std::string_view method) const;

 private:
  PrincipalSigner(std::string key, const Clock* clock) : key_(std::move(key)), clock_(clock) {}
  std::string Mac(std::string_view data) const;

  std::string key_;
  const Clock* clock_;
};

// The principal a service uses when it calls another service's `...Internal`
// methods (outbox deliveries).
Principal ServicePrincipal(std::string service_name);

}  // namespace medkoord
