#pragma once
// Signed principals for the backend, reused: a principal's signature for a
// method is valid for `ttl`, so the gateway signs each (principal, method)
// once and reuses it until half the lifetime is gone. The backend thus always
// receives one with at least ttl/2 left, and the gateway does one HMAC per
// principal and method every ttl/2 instead of one per call.

#include <string>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/principal.h"

namespace medkoord::gateway {

class SignatureCache {
 public:
  SignatureCache(const PrincipalSigner* signer, const Clock* clock, absl::Duration ttl);

  PrincipalSigner::Signed Get(const Principal& principal, std::string_view method);

 private:
  struct Entry {
    PrincipalSigner::Signed signed_principal;
    absl::Time refresh_at;
  };
  const PrincipalSigner* signer_;
  const Clock* clock_;
  const absl::Duration ttl_;
  absl::Mutex mu_;
  // Keyed by the serialized principal and the method: two keys with the same
  // principal id but different roles never share a signature.
  absl::flat_hash_map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
};

}  // namespace medkoord::gateway
