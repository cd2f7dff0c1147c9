#include "services/gateway/signature_cache.h"

#include "absl/strings/str_cat.h"

namespace medkoord::gateway {
namespace {

// Bounds memory with many principals; a cleared cache only costs re-signing.
constexpr size_t kMaxEntries = 20000;

}  // namespace

SignatureCache::SignatureCache(const PrincipalSigner* signer, const Clock* clock, absl::Duration ttl)
    : signer_(signer), clock_(clock), ttl_(ttl) {}

PrincipalSigner::Signed SignatureCache::Get(const Principal& principal, std::string_view method) {
  std::string key = principal.SerializeAsString();
  key.push_back('\n');
  key.append(method);
  const absl::Time now = clock_->Now();
  {
    absl::ReaderMutexLock lock(&mu_);
    auto it = entries_.find(key);
    if (it != entries_.end() && now < it->second.refresh_at) return it->second.signed_principal;
  }
  PrincipalSigner::Signed fresh = signer_->Sign(principal, method, ttl_);
  absl::MutexLock lock(&mu_);
  if (entries_.size() >= kMaxEntries) entries_.clear();
  entries_[std::move(key)] = Entry{fresh, now + ttl_ / 2};
  return fresh;
}

}  // namespace medkoord::gateway
