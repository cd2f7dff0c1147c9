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

absl::StatusOr<Principal> FromEntry(const std::optional<Principal>& principal) {
  if (!principal) return absl::UnauthenticatedError("API key is not valid");
  return *principal;
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
    : Authenticator([store](const std::string& hash) { return store->FindActiveKey(hash); }, std::move(cert_map),
                    clock, cache_ttl) {}

Authenticator::Authenticator(KeyLookup lookup, std::optional<CertMap> cert_map, const Clock* clock,
                             absl::Duration cache_ttl, int lookup_threads)
    : lookup_(std::move(lookup)), cert_map_(std::move(cert_map)), clock_(clock), cache_ttl_(cache_ttl) {
  for (int i = 0; i < std::max(1, lookup_threads); ++i) threads_.emplace_back([this] { LookupLoop(); });
}

Authenticator::~Authenticator() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  for (auto& t : threads_) t.join();
  // Nobody may be left waiting: answer what is queued.
  absl::flat_hash_map<std::string, std::vector<Done>> waiting;
  {
    absl::MutexLock lock(&mu_);
    waiting.swap(waiting_);
  }
  for (auto& [hash, dones] : waiting) {
    for (auto& done : dones) done(absl::UnavailableError("gateway is shutting down"));
  }
}

absl::StatusOr<Principal> Authenticator::ByCertificate(const PeerCertificate& peer) const {
  if (cert_map_ && (!peer.subject.empty() || !peer.common_name.empty())) {
    if (auto p = cert_map_->Find(peer.subject, peer.common_name)) return *p;
    return absl::UnauthenticatedError("client certificate is not mapped to a principal");
  }
  return absl::UnauthenticatedError("no credentials: send `authorization: Bearer <api key>` or a client certificate");
}

absl::StatusOr<Principal> Authenticator::Authenticate(std::string_view api_key, const PeerCertificate& peer) {
  if (api_key.empty()) return ByCertificate(peer);
  const std::string hash = HashApiKey(api_key);
  if (auto cached = Cached(hash)) return *std::move(cached);
  return LookUpAndCache(hash);
}

void Authenticator::AuthenticateAsync(std::string_view api_key, const PeerCertificate& peer, Done done) {
  if (api_key.empty()) {
    done(ByCertificate(peer));
    return;
  }
  std::string hash = HashApiKey(api_key);
  if (auto cached = Cached(hash)) {
    done(*std::move(cached));
    return;
  }
  {
    absl::MutexLock lock(&mu_);
    if (!stopping_) {
      auto [it, first] = waiting_.try_emplace(hash);
      it->second.push_back(std::move(done));
      if (first) queue_.push_back(std::move(hash));  // later misses ride on this lookup
      return;
    }
  }
  done(absl::UnavailableError("gateway is shutting down"));
}

std::optional<absl::StatusOr<Principal>> Authenticator::Cached(const std::string& hash) {
  const absl::Time now = clock_->Now();
  absl::ReaderMutexLock lock(&mu_);
  auto it = cache_.find(hash);
  if (it == cache_.end() || it->second.expires <= now) return std::nullopt;
  return FromEntry(it->second.principal);
}

absl::StatusOr<Principal> Authenticator::LookUpAndCache(const std::string& hash) {
  absl::StatusOr<std::optional<Principal>> found = lookup_(hash);
  if (!found.ok()) return absl::UnavailableError("credentials cannot be checked right now");
  const absl::Time now = clock_->Now();
  absl::MutexLock lock(&mu_);
  if (cache_.size() >= kMaxCacheEntries) cache_.clear();
  cache_[hash] = Entry{*found, now + cache_ttl_};
  return FromEntry(*found);
}

void Authenticator::LookupLoop() {
  while (true) {
    std::string hash;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return stopping_ || !queue_.empty(); };
      mu_.Await(absl::Condition(&ready));
      if (queue_.empty()) return;  // stopping
      hash = std::move(queue_.front());
      queue_.pop_front();
    }
    absl::StatusOr<Principal> answer = LookUpAndCache(hash);
    std::vector<Done> dones;
    {
      absl::MutexLock lock(&mu_);
      auto it = waiting_.find(hash);
      if (it != waiting_.end()) {
        dones = std::move(it->second);
        waiting_.erase(it);
      }
    }
    for (auto& done : dones) done(answer);
  }
}

void Authenticator::Forget() {
  absl::MutexLock lock(&mu_);
  cache_.clear();
}

}  // namespace medkoord::gateway
