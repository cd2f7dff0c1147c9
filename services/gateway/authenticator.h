#pragma once
// Who is calling: an API key (looked up by its hash, cached briefly so that a
// busy client does not cost a database round trip per call) or a client
// certificate mapped by the cert map.
//
// Revocation is prompt: this replica drops its cache at once (Forget, called
// by the admin service), every other replica within `cache_ttl` (default
// 5 s), since a cached answer is never used past its ttl.
//
// The proxy runs on its completion-queue threads, which must not block; a cache
// miss there is looked up on the authenticator's own lookup threads
// (AuthenticateAsync), and concurrent misses for one key share one lookup.

#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <grpcpp/security/auth_context.h>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/principal.h"
#include "services/gateway/cert_map.h"
#include "services/gateway/gateway_store.h"

namespace medkoord::gateway {

// The subject and common name of the verified client certificate, if any.
struct PeerCertificate {
  std::string subject;
  std::string common_name;
};
PeerCertificate PeerCertificateOf(const grpc::AuthContext& auth);

class Authenticator {
 public:
  // The active key with this hash: its principal, nullopt if there is none
  // (unknown or revoked), an error if it cannot be checked.
  using KeyLookup = std::function<absl::StatusOr<std::optional<Principal>>(const std::string& key_hash)>;
  using Done = std::function<void(absl::StatusOr<Principal>)>;

  Authenticator(GatewayStore* store, std::optional<CertMap> cert_map, const Clock* clock,
                absl::Duration cache_ttl = absl::Seconds(5));
  Authenticator(KeyLookup lookup, std::optional<CertMap> cert_map, const Clock* clock,
                absl::Duration cache_ttl = absl::Seconds(5), int lookup_threads = 2);
  ~Authenticator();

  // `api_key` empty: authenticate by certificate. A key that is given but
  // unknown or revoked is UNAUTHENTICATED, whatever the certificate says.
  // UNAVAILABLE when the key cannot be checked (database down). Blocks on a
  // cache miss: for threads that may block (HTTP pages, admin).
  absl::StatusOr<Principal> Authenticate(std::string_view api_key, const PeerCertificate& peer);

  // The same answer, never blocking: `done` runs at once on this thread when
  // the answer is known (cache hit, certificate, no credentials), else on a
  // lookup thread after the database has answered.
  void AuthenticateAsync(std::string_view api_key, const PeerCertificate& peer, Done done);

  // Drops cached keys, e.g. after a revocation.
  void Forget();

 private:
  struct Entry {
    std::optional<Principal> principal;
    absl::Time expires;
  };
  // The cached answer for a key hash, if fresh.
  std::optional<absl::StatusOr<Principal>> Cached(const std::string& hash);
  absl::StatusOr<Principal> LookUpAndCache(const std::string& hash);
  absl::StatusOr<Principal> ByCertificate(const PeerCertificate& peer) const;
  void LookupLoop();

  KeyLookup lookup_;
  std::optional<CertMap> cert_map_;
  const Clock* clock_;
  const absl::Duration cache_ttl_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, Entry> cache_ ABSL_GUARDED_BY(mu_);
  // Misses waiting for a lookup thread: hash -> callers waiting for it.
  absl::flat_hash_map<std::string, std::vector<Done>> waiting_ ABSL_GUARDED_BY(mu_);
  std::deque<std::string> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace medkoord::gateway
