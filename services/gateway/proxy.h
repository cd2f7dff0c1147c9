#pragma once
// The generic proxy: one state machine per call, for every method in the
// role table, unary and streaming alike, over raw ByteBuffers. Per call it
// authenticates the caller, applies the rate limit and the role table, signs
// the principal for the backend, forwards deadline (or a default), metadata,
// cancellation, messages in both directions with flow control, and the
// backend's metadata and status (details included), and hands one audit
// record to the audit log. Nothing here knows any method by name, except
// server reflection and health, which it answers itself (server_reflection.h,
// health.h).

#include <array>
#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/metrics.h"
#include "common/principal.h"
#include "services/gateway/audit_log.h"
#include "services/gateway/audit_resource.h"
#include "services/gateway/authenticator.h"
#include "services/gateway/health.h"
#include "services/gateway/local_backend.h"
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
  // Completion queues and threads per queue (0: one per core). A thread
  // that polls an event handles it itself; with a second thread on the
  // queue, the two hand the polling over to each other at every event (a
  // wake-up each), and an event for another queue's thread costs one too.
  // On the 2-core bench machine one queue with one thread was best at
  // concurrency 1 and 16 (docs/BENCHMARKS.md, "Gateway"); the thread never
  // blocks (key lookups and GatewayAdmin run on their own threads).
  int queues = 1;
  int threads_per_queue = 1;
  // Busy polling: after handling an event, a proxy thread keeps polling its
  // queue without sleeping for this long, as long as at most
  // kBusyPollMaxInFlight calls are in flight. Zero (the default) turns it off.
  // On a virtual machine a thread that sleeps in epoll_wait costs a wake-up of
  // an idle vCPU when the next event comes (tens of microseconds, twice per
  // proxied call); polling through the short wait for the backend's answer
  // and for a closed-loop caller's next request removes both, at the price of
  // up to one core while traffic is light. With many calls in flight events
  // come back to back anyway and polling would only take CPU from whatever
  // shares the node, so it stops there. Meant for a gateway with a core of
  // its own (docs/OPERATIONS.md, docs/BENCHMARKS.md "Gateway").
  absl::Duration busy_poll = absl::ZeroDuration();
};

// Busy polling pauses above this many calls in flight (ProxyOptions::busy_poll).
inline constexpr int kBusyPollMaxInFlight = 4;

// Everything a call needs, owned by main and outliving the server.
struct ProxyDeps {
  const RoleTable* roles = nullptr;
  Authenticator* authenticator = nullptr;
  RateLimiter* rate_limiter = nullptr;
  AuditLog* audit = nullptr;
  const PrincipalSigner* signer = nullptr;
  const Clock* clock = nullptr;
  // Served in this process (GatewayAdmin); its routes are not forwarded.
  LocalBackend* local = nullptr;
};

// Served with gRPC's completion-queue API: the thread that takes an event
// from a queue also handles it, and the backend calls complete on the same
// queues. (The callback API hands every reaction to gRPC's executor: one more
// thread wake-up per reaction, and a wake-up costs tens of microseconds on
// two shared cores.)
class Proxy final {
 public:
  // `backends`: backend name ("intake") -> channel. A route whose backend has
  // no channel answers UNAVAILABLE.
  Proxy(ProxyDeps deps, std::map<std::string, std::shared_ptr<grpc::Channel>> backends, ProxyOptions options = {});
  ~Proxy();

  // Before the server is built: the generic service and the completion
  // queues (options().queues).
  void RegisterOn(grpc::ServerBuilder& builder);
  // After the server has started: serves calls.
  void Start();
  // After the server's Shutdown returned: lets the last calls end, then
  // shuts the queues down and joins their threads.
  void Stop();

  grpc::AsyncGenericService* service() { return &service_; }
  void CallStarted();
  void CallEnded();

  const ProxyDeps& deps() const { return deps_; }
  // Counts a finished call; `route` null for unknown methods.
  void Observe(const MethodRoute* route, int code, double seconds) const;
  const ProxyOptions& options() const { return options_; }
  grpc::GenericStub* StubFor(const std::string& backend) const;
  SignatureCache& signatures() const { return signatures_; }
  const ServerReflection& reflection() const { return reflection_; }
  HealthService& health() { return health_; }

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
  HealthService health_;
  static constexpr int kRequestsPerQueue = 16;
  grpc::AsyncGenericService service_;
  std::vector<std::unique_ptr<grpc::ServerCompletionQueue>> cqs_;
  std::vector<std::thread> threads_;
  std::atomic<bool> stopped_{false};
  absl::Mutex live_mu_;
  int live_ ABSL_GUARDED_BY(live_mu_) = 0;  // calls started and not yet deleted
  std::atomic<int> in_flight_{0};           // live_, read without the lock by busy polling

  // One proxy thread: takes events off `cq` and handles them until the queue
  // is shut down, polling without sleeping as options_.busy_poll says.
  void Serve(grpc::ServerCompletionQueue* cq);
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

// The status the caller gets for a backend call that ended with `status`.
// UNAVAILABLE without a message names the backend. CANCELLED that the caller
// did not ask for becomes UNAVAILABLE: gRPC ends a call with CANCELLED when its
// server shuts down before a handler took it (grpc/grpc#41785), i.e. during
// every rolling restart, and a caller retries UNAVAILABLE but not CANCELLED.
grpc::Status StatusForCaller(const grpc::Status& status, std::string_view backend, bool cancelled_by_caller);

}  // namespace medkoord::gateway
