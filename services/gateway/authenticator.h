#pragma once
// Who is calling: an API key (looked up by its hash, cached briefly so that a
// busy client does not cost a database round trip per call) or a client
// certificate mapped by the cert map. Revocation reaches every replica within
// the cache lifetime, and this replica at once (Forget).

#include <optional>
#include <string>
#include <string_view>

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
  Authenticator(GatewayStore* store, std::optional<CertMap> cert_map, const Clock* clock,
                absl::Duration cache_ttl = absl::Seconds(5));

  // `api_key` empty: authenticate by certificate. A key that is given but
  // unknown or revoked is UNAUTHENTICATED, whatever the certificate says.
  // UNAVAILABLE when the key cannot be checked (database down).
  absl::StatusOr<Principal> Authenticate(std::string_view api_key, const PeerCertificate& peer);

  // Drops cached keys, e.g. after a revocation.
  void Forget();

 private:
  struct Entry {
    std::optional<Principal> principal;
    absl::Time expires;
  };
  absl::StatusOr<Principal> ByKey(std::string_view api_key);

  GatewayStore* store_;
  std::optional<CertMap> cert_map_;
  const Clock* clock_;
  const absl::Duration cache_ttl_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, Entry> cache_ ABSL_GUARDED_BY(mu_);
};

}  // namespace medkoord::gateway
