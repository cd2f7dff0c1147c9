#include "common/principal.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <array>

#include "absl/strings/str_cat.h"

namespace medkoord {
namespace {

constexpr std::array<std::pair<Region, std::string_view>, 5> kRegions = {{
    {medkoord::common::v1::REGION_HOVEDSTADEN, "hovedstaden"},
    {medkoord::common::v1::REGION_MIDTJYLLAND, "midtjylland"},
    {medkoord::common::v1::REGION_SYDDANMARK, "syddanmark"},
    {medkoord::common::v1::REGION_SJAELLAND, "sjaelland"},
    {medkoord::common::v1::REGION_NORDJYLLAND, "nordjylland"},
}};

constexpr std::array<std::pair<Role, std::string_view>, 7> kRoles = {{
    {medkoord::common::v1::ROLE_REGION, "region"},
    {medkoord::common::v1::ROLE_FORUM_MEMBER, "forum_member"},
    {medkoord::common::v1::ROLE_FORUM_SECRETARIAT, "forum_secretariat"},
    {medkoord::common::v1::ROLE_TASK_FORCE, "task_force"},
    {medkoord::common::v1::ROLE_ANALYST, "analyst"},
    {medkoord::common::v1::ROLE_ADMIN, "admin"},
    {medkoord::common::v1::ROLE_SERVICE, "service"},
}};

constexpr size_t kMinKeyBytes = 32;

std::optional<std::string_view> Metadata(const grpc::ServerContextBase& context, const char* key) {
  const auto& md = context.client_metadata();
  auto it = md.find(key);
  if (it == md.end()) return std::nullopt;
  return std::string_view(it->second.data(), it->second.size());
}

}  // namespace

bool HasRole(const Principal& p, Role role) {
  for (int r : p.roles()) {
    if (r == role) return true;
  }
  return false;
}

bool HasAnyRole(const Principal& p, std::initializer_list<Role> roles) {
  for (Role r : roles) {
    if (HasRole(p, r)) return true;
  }
  return false;
}

std::string_view RegionSlug(Region region) {
  for (const auto& [r, slug] : kRegions) {
    if (r == region) return slug;
  }
  return "";
}

std::optional<Region> RegionFromSlug(std::string_view slug) {
  for (const auto& [r, s] : kRegions) {
    if (s == slug) return r;
  }
  return std::nullopt;
}

std::string_view RoleName(Role role) {
  for (const auto& [r, name] : kRoles) {
    if (r == role) return name;
  }
  return "";
}

std::optional<Role> RoleFromName(std::string_view name) {
  for (const auto& [r, n] : kRoles) {
    if (n == name) return r;
  }
  return std::nullopt;
}

absl::StatusOr<PrincipalSigner> PrincipalSigner::Create(std::string key, const Clock* clock) {
  if (key.size() < kMinKeyBytes) {
    return absl::FailedPreconditionError(
        absl::StrCat("principal key must be at least ", kMinKeyBytes, " bytes, got ", key.size()));
  }
  return PrincipalSigner(std::move(key), clock);
}

std::string PrincipalSigner::Mac(std::string_view data) const {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key_.data(), static_cast<int>(key_.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &len);
  return std::string(reinterpret_cast<const char*>(out), len);
}

PrincipalSigner::Signed PrincipalSigner::Sign(const Principal& principal, std::string_view method,
                                              absl::Duration ttl) const {
  medkoord::common::v1::SignedPrincipal sp;
  *sp.mutable_principal() = principal;
  sp.set_method(std::string(method));
  sp.set_expires_unix_ms(absl::ToUnixMillis(clock_->Now() + ttl));
  Signed out;
  out.principal_bin = sp.SerializeAsString();
  out.signature_bin = Mac(out.principal_bin);
  return out;
}

void PrincipalSigner::Attach(grpc::ClientContext& context, const Principal& principal, std::string_view method,
                             absl::Duration ttl) const {
  Signed s = Sign(principal, method, ttl);
  context.AddMetadata(kPrincipalMetadata, s.principal_bin);
  context.AddMetadata(kSignatureMetadata, s.signature_bin);
}

absl::StatusOr<Principal> PrincipalSigner::Verify(std::string_view principal_bin, std::string_view signature_bin,
                                                  std::string_view method) const {
  const std::string expected = Mac(principal_bin);
  if (signature_bin.size() != expected.size() ||
      CRYPTO_memcmp(signature_bin.data(), expected.data(), expected.size()) != 0) {
    return absl::UnauthenticatedError("principal signature is invalid");
  }
  medkoord::common::v1::SignedPrincipal sp;
  if (!sp.ParseFromArray(principal_bin.data(), static_cast<int>(principal_bin.size()))) {
    return absl::UnauthenticatedError("principal does not parse");
  }
  if (sp.method() != method) {
    return absl::UnauthenticatedError(absl::StrCat("principal was signed for another method"));
  }
  if (absl::FromUnixMillis(sp.expires_unix_ms()) < clock_->Now()) {
    return absl::UnauthenticatedError("principal has expired");
  }
  if (sp.principal().id().empty()) return absl::UnauthenticatedError("principal has no id");
  return sp.principal();
}

absl::StatusOr<Principal> PrincipalSigner::Verify(const grpc::ServerContextBase& context,
                                                  std::string_view method) const {
  auto principal = Metadata(context, kPrincipalMetadata);
  auto signature = Metadata(context, kSignatureMetadata);
  if (!principal || !signature) return absl::UnauthenticatedError("no signed principal on the call");
  return Verify(*principal, *signature, method);
}

Principal ServicePrincipal(std::string service_name) {
  Principal p;
  p.set_id(absl::StrCat("service:", service_name));
  p.add_roles(medkoord::common::v1::ROLE_SERVICE);
  p.set_display_name(std::move(service_name));
  return p;
}

}  // namespace medkoord
