#pragma once
// The generic proxy: one callback reactor per call, for every method in the
// role table, unary and streaming alike, over raw ByteBuffers. Per call it
// authenticates the caller, applies the rate limit and the role table, signs
// the principal for the backend, forwards deadline (or a default), metadata,
// cancellation, messages in both directions with flow control, and the
// backend's metadata and status (details included), and hands one audit
// record to the audit log. Nothing here knows any method by name, except
// server reflection, which it answers itself (server_reflection.h).

#include <array>
#include <atomic>
#include <map>
#include <memory>
#include <string>

#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include "absl/time/time.h"
#include "common/clock.h"
#include "common/metrics.h"
#include "common/principal.h"
#include "services/gateway/audit_log.h"
#include "services/gateway/audit_resource.h"
#include "services/gateway/authenticator.h"
#include "services/gateway/rate_limiter.h"
#include "services/gateway/role_table.h"
#include "services/gateway/server_reflection.h"
#include "services/gateway/signature_cache.h"

namespace medkoord::gateway {

struct ProxyOptions {
  // Applied when the caller sets no deadline, so that no call can hang forever.
  absl::Duration default_deadline = absl::Seconds(30);
  // Lifetime of the signed principal sent to the backend (checked at call start).
  absl::Duration principal_ttl = absl::Seconds(60);
};

// Everything a call needs, owned by main and outliving the server.
struct ProxyDeps {
  const RoleTable* roles = nullptr;
  Authenticator* authenticator = nullptr;
  RateLimiter* rate_limiter = nullptr;
  AuditLog* audit = nullptr;
  const PrincipalSigner* signer = nullptr;
  const Clock* clock = nullptr;
};

class Proxy final : public grpc::CallbackGenericService {
 public:
  // `backends`: backend name ("intake") -> channel. A route whose backend has
  // no channel answers UNAVAILABLE.
  Proxy(ProxyDeps deps, std::map<std::string, std::shared_ptr<grpc::Channel>> backends, ProxyOptions options = {});

  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext* context) override;

  const ProxyDeps& deps() const { return deps_; }
  // Counts a finished call; `route` null for unknown methods.
  void Observe(const MethodRoute* route, int code, double seconds) const;
  const ProxyOptions& options() const { return options_; }
  grpc::GenericStub* StubFor(const std::string& backend) const;
  SignatureCache& signatures() const { return signatures_; }
  const ServerReflection& reflection() const { return reflection_; }

  // What a call on a route needs beyond the route, made once per route: the
  // registry's lookup (label maps and its mutex) is too slow for every call,
  // and so is resolving the audit field by name.
  struct RouteState {
    std::string method;
    metrics::Histogram* latency = nullptr;
    std::array<std::atomic<metrics::Counter*>, 17> calls{};
    ResourceFieldReader resource;
  };
  // nullptr for an unknown route.
  const RouteState* StateFor(const MethodRoute* route) const;

 private:
  ProxyDeps deps_;
  ProxyOptions options_;
  mutable SignatureCache signatures_;
  ServerReflection reflection_;
  std::map<std::string, std::unique_ptr<grpc::GenericStub>> stubs_;
  std::map<const MethodRoute*, std::unique_ptr<RouteState>> routes_;
};

// The key of `authorization: Bearer <key>` in gRPC metadata, or "".
std::string ApiKeyFromMetadata(const std::multimap<grpc::string_ref, grpc::string_ref>& metadata);

// The `traceparent` sent to the backend: the caller's if it is a valid W3C
// trace context, else a new one (its trace id the request id when that is
// 32 hex characters).
std::string TraceparentFor(std::string_view incoming, std::string_view request_id);

// A fresh request id (32 hex characters).
std::string NewRequestId();

}  // namespace medkoord::gateway
