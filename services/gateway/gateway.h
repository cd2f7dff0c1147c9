#pragma once
// The gateway process's parts, started together: its database (API keys,
// audit log), the role table from the linked descriptors, the proxy on the
// public listener (TLS / mTLS), GatewayAdmin as the proxy's local backend,
// and the HTTP side. Used by main and, in-process, by tests.

#include <atomic>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/db/pool.h"
#include "common/http_server.h"
#include "common/principal.h"
#include "common/server.h"
#include "services/gateway/admin_service.h"
#include "services/gateway/audit_log.h"
#include "services/gateway/authenticator.h"
#include "services/gateway/cert_map.h"
#include "services/gateway/gateway_store.h"
#include "services/gateway/http_pages.h"
#include "services/gateway/https_relay.h"
#include "services/gateway/proxy.h"
#include "services/gateway/rate_limiter.h"
#include "services/gateway/role_table.h"

namespace medkoord::gateway {

struct GatewayOptions {
  std::string listen = "127.0.0.1:0";
  std::string http_listen;  // empty: no plain HTTP side
  // HTTPS for the same pages with the listener's certificate (needs
  // tls_cert_pem); the plain HTTP side then also runs, on loopback if
  // http_listen is empty.
  std::string https_listen;
  db::PoolOptions db;  // its `prepare` is the gateway store's
  std::string principal_key;
  // backend ("intake") -> "host:port"; a backend without one answers UNAVAILABLE.
  std::map<std::string, std::string> backend_addrs;
  // PEM contents. With cert + key the listener is TLS; with a client CA too,
  // client certificates are requested and verified (API keys still work).
  std::string tls_cert_pem;
  std::string tls_key_pem;
  std::string client_ca_pem;
  std::optional<CertMap> cert_map;
  double rate_limit_per_second = 100;
  double rate_limit_burst = 200;
  int max_message_bytes = 16 << 20;
  absl::Duration api_key_cache_ttl = absl::Seconds(5);
  absl::Duration shutdown_grace = absl::Seconds(20);
  ProxyOptions proxy;
  AuditLogOptions audit;
  const Clock* clock = SystemClock();
};

// Blocks SIGTERM and SIGINT in the calling thread, so that every thread
// started afterwards inherits the mask and Gateway::Wait receives them.
// (common's InstallSignalHandlers serves Server::Wait; the gateway runs no
// common Server, as that one brings sync reflection with it.)
void BlockShutdownSignals();

class Gateway {
 public:
  static absl::StatusOr<std::unique_ptr<Gateway>> Start(GatewayOptions options);
  ~Gateway();

  int port() const { return port_; }
  int http_port() const { return http_ ? http_->port() : 0; }
  int https_port() const { return https_ ? https_->port() : 0; }
  // True once migrations are applied and the database answers.
  bool ready() const { return ready_.load(); }
  bool WaitUntilReady(absl::Duration timeout) const;

  GatewayStore& store() { return *store_; }
  AuditLog& audit() { return *audit_; }
  const RoleTable& roles() const { return roles_; }

  // Until SIGTERM / SIGINT, then Shutdown(). Needs BlockShutdownSignals()
  // at the start of main, before any thread exists.
  void Wait();
  void Shutdown();

 private:
  Gateway() = default;
  void Watch();

  GatewayOptions options_;
  RoleTable roles_;
  std::unique_ptr<db::Pool> pool_;
  std::unique_ptr<GatewayStore> store_;
  std::unique_ptr<Authenticator> authenticator_;
  std::unique_ptr<RateLimiter> rate_limiter_;
  std::unique_ptr<AuditLog> audit_;
  std::unique_ptr<PrincipalSigner> signer_;
  std::unique_ptr<AdminService> admin_service_;
  std::unique_ptr<Proxy> proxy_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<HttpPages> pages_;
  std::unique_ptr<HttpServer> http_;
  std::unique_ptr<HttpsRelay> https_;
  int port_ = 0;
  std::atomic<bool> ready_{false};
  // What the health service says, for the medkoord_serving gauge (shared
  // with the metrics registry, which outlives this object).
  std::shared_ptr<std::atomic<bool>> serving_ = std::make_shared<std::atomic<bool>>(false);
  std::atomic<bool> migrated_{false};
  std::atomic<bool> shut_down_{false};
  absl::Notification stop_;
  std::thread watcher_;
};

}  // namespace medkoord::gateway
