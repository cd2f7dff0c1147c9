#include "services/gateway/authenticator.h"

#include "services/gateway/api_key.h"

namespace medkoord::gateway {
namespace {

constexpr size_t kMaxCacheEntries = 100000;

std::string First(const grpc::AuthContext& auth, const char* property) {
  auto values = auth.FindPropertyValues(property);
  if (values.empty()) return "";
  return std::string(values.front().data(), values.front().size());
}

}  // namespace

PeerCertificate PeerCertificateOf(const grpc::AuthContext& auth) {
  PeerCertificate out;
  if (!auth.IsPeerAuthenticated()) return out;
  out.subject = First(auth, "x509_subject");
  out.common_name = First(auth, "x509_common_name");
  return out;
}

Authenticator::Authenticator(GatewayStore* store, std::optional<CertMap> cert_map, const Clock* clock,
                             absl::Duration cache_ttl)
    : store_(store), cert_map_(std::move(cert_map)), clock_(clock), cache_ttl_(cache_ttl) {}

absl::StatusOr<Principal> Authenticator::Authenticate(std::string_view api_key, const PeerCertificate& peer) {
  if (!api_key.empty()) return ByKey(api_key);
  if (cert_map_ && (!peer.subject.empty() || !peer.common_name.empty())) {
    if (auto p = cert_map_->Find(peer.subject, peer.common_name)) return *p;
    return absl::UnauthenticatedError("client certificate is not mapped to a principal");
  }
  return absl::UnauthenticatedError("no credentials: send `authorization: Bearer <api key>` or a client certificate");
}

absl::StatusOr<Principal> Authenticator::ByKey(std::string_view api_key) {
  const std::string hash = HashApiKey(api_key);
  const absl::Time now = clock_->Now();
  {
    absl::ReaderMutexLock lock(&mu_);
    auto it = cache_.find(hash);
    if (it != cache_.end() && it->second.expires > now) {
      if (!it->second.principal) return absl::UnauthenticatedError("API key is not valid");
      return *it->second.principal;
    }
  }
  absl::StatusOr<std::optional<Principal>> found = store_->FindActiveKey(hash);
  if (!found.ok()) return absl::UnavailableError("credentials cannot be checked right now");
  {
    absl::MutexLock lock(&mu_);
    if (cache_.size() >= kMaxCacheEntries) cache_.clear();
    cache_[hash] = Entry{*found, now + cache_ttl_};
  }
  if (!*found) return absl::UnauthenticatedError("API key is not valid");
  return **found;
}

void Authenticator::Forget() {
  absl::MutexLock lock(&mu_);
  cache_.clear();
}

}  // namespace medkoord::gateway
