#include "services/gateway/gateway.h"

#include <pthread.h>
#include <signal.h>

#include <grpcpp/ext/health_check_service_server_builder_option.h>
#include <grpcpp/security/server_credentials.h>

#include "absl/strings/str_cat.h"
#include "common/db/migrations.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/server.h"
#include "common/service_main.h"
#include "common/status.h"
#include "services/gateway/api_key.h"
#include "services/gateway/server_reflection.h"

namespace medkoord::gateway {

// Defined by medkoord_embed_migrations from migrations/*.sql.
const std::vector<db::Migration>& Migrations();

namespace {

std::shared_ptr<grpc::ServerCredentials> ListenerCredentials(const GatewayOptions& o) {
  if (o.tls_cert_pem.empty()) return grpc::InsecureServerCredentials();
  grpc::SslServerCredentialsOptions ssl(o.client_ca_pem.empty()
                                            ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                                            // A certificate is optional (API keys work without),
                                            // but one that is presented must verify.
                                            : GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY);
  ssl.pem_root_certs = o.client_ca_pem;
  ssl.pem_key_cert_pairs.push_back({o.tls_key_pem, o.tls_cert_pem});
  return grpc::SslServerCredentials(ssl);
}

// The proxy's channel to a backend: the transport settings of common's
// InternalChannel (keepalive, fail fast, quick reconnect), but without its
// client interceptor. That interceptor copies the thread's trace context into
// calls that have none; the proxy sets traceparent on every call itself, and
// an interceptor puts every batch of every call through gRPC's interception
// machinery (allocations and indirect calls on the hot path).
std::shared_ptr<grpc::Channel> BackendChannel(const std::string& address, int max_message_bytes) {
  return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(),
                                   InternalChannelArguments(max_message_bytes));
}

sigset_t ShutdownSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  return set;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Gateway>> Gateway::Start(GatewayOptions options) {
  auto gw = std::unique_ptr<Gateway>(new Gateway());
  gw->options_ = std::move(options);
  const GatewayOptions& o = gw->options_;
  if (!o.tls_cert_pem.empty() && o.tls_key_pem.empty()) {
    return absl::FailedPreconditionError("config: tls_key_file is required with tls_cert_file");
  }
  if (!o.https_listen.empty() && o.tls_cert_pem.empty()) {
    return absl::FailedPreconditionError("config: https_listen needs tls_cert_file and tls_key_file");
  }
  if (!o.client_ca_pem.empty() && o.tls_cert_pem.empty()) {
    return absl::FailedPreconditionError("config: client_ca_file needs tls_cert_file and tls_key_file");
  }
  ASSIGN_OR_RETURN(gw->roles_, RoleTable::FromGeneratedPool());
  ASSIGN_OR_RETURN(PrincipalSigner signer, PrincipalSigner::Create(o.principal_key, o.clock));
  gw->signer_ = std::make_unique<PrincipalSigner>(std::move(signer));

  db::PoolOptions pool_options = o.db;
  pool_options.prepare = GatewayStore::Prepare;
  gw->pool_ = std::make_unique<db::Pool>(pool_options);
  gw->store_ = std::make_unique<GatewayStore>(gw->pool_.get());
  gw->authenticator_ = std::make_unique<Authenticator>(gw->store_.get(), o.cert_map, o.clock, o.api_key_cache_ttl);
  gw->rate_limiter_ = std::make_unique<RateLimiter>(o.rate_limit_per_second, o.rate_limit_burst, o.clock);
  gw->audit_ = std::make_unique<AuditLog>(gw->store_.get(), o.audit);

  // GatewayAdmin: a backend inside this process (see admin_service.h).
  Gateway* raw = gw.get();
  gw->admin_service_ = std::make_unique<AdminService>(gw->store_.get(), gw->authenticator_.get(), o.clock);

  std::map<std::string, std::shared_ptr<grpc::Channel>> channels;
  for (const std::string& backend : gw->roles_.Backends()) {
    if (backend == gw->admin_service_->name()) continue;
    auto it = o.backend_addrs.find(backend);
    if (it == o.backend_addrs.end() || it->second.empty()) {
      log::Warn("no address for backend; its methods answer UNAVAILABLE", {{"backend", backend}});
      continue;
    }
    channels[backend] = BackendChannel(it->second, o.max_message_bytes);
  }
  std::shared_ptr<grpc::Channel> assessment = channels.count("assessment") ? channels["assessment"] : nullptr;

  ProxyDeps deps{&gw->roles_,         gw->authenticator_.get(), gw->rate_limiter_.get(), gw->audit_.get(),
                 gw->signer_.get(),   o.clock,                  gw->admin_service_.get()};
  gw->proxy_ = std::make_unique<Proxy>(deps, std::move(channels), o.proxy);

  // Only the proxy, which also answers health Check and reflection: gRPC's
  // own health service (callback) and reflection plugin (sync) are left
  // out, as either kind of service brings threads that poll the proxy's
  // sockets (health.h, server_reflection.h).
  grpc::ServerBuilder builder;
  builder.SetOption(std::make_unique<grpc::HealthCheckServiceServerBuilderOption>(nullptr));
  builder.AddListeningPort(o.listen, ListenerCredentials(o), &gw->port_);
  gw->proxy_->RegisterOn(builder);
  builder.SetOption(std::make_unique<WithoutSyncPlugins>());
  ApplyServerDefaults(builder, o.max_message_bytes);
  gw->server_ = builder.BuildAndStart();
  if (!gw->server_ || gw->port_ == 0) return absl::UnavailableError(absl::StrCat("cannot listen on ", o.listen));
  gw->proxy_->Start();
  // As every service has it (common/server.cc), for the NOT_SERVING alerts.
  metrics::DefaultRegistry().AddCallbackGauge("medkoord_serving", "1 while the health status is SERVING",
                                              {{"service", "gateway"}},
                                              [serving = gw->serving_] { return serving->load() ? 1.0 : 0.0; });

  if (!o.http_listen.empty() || !o.https_listen.empty()) {
    gw->pages_ = std::make_unique<HttpPages>(deps, assessment, [raw] { return raw->ready(); });
    auto http = HttpServer::Start(o.http_listen.empty() ? "127.0.0.1:0" : o.http_listen);
    if (!http.ok()) return http.status();
    gw->http_ = *std::move(http);
    gw->pages_->Register(*gw->http_);
  }
  if (!o.https_listen.empty()) {
    // Client certificates reach the pages only with the cert map to read them.
    std::string relay_token = o.cert_map && !o.client_ca_pem.empty() ? GenerateApiKey() : "";
    gw->pages_->TrustRelay(relay_token);
    ASSIGN_OR_RETURN(gw->https_, HttpsRelay::Start({.listen = o.https_listen,
                                                    .backend_port = gw->http_->port(),
                                                    .cert_pem = o.tls_cert_pem,
                                                    .key_pem = o.tls_key_pem,
                                                    .client_ca_pem = o.client_ca_pem,
                                                    .relay_token = std::move(relay_token)}));
  }
  gw->watcher_ = std::thread([raw] { raw->Watch(); });
  log::Info("gateway listening", {{"grpc_port", gw->port_},
                                  {"http_port", gw->http_port()},
                                  {"https_port", gw->https_port()},
                                  {"tls", !o.tls_cert_pem.empty()},
                                  {"mtls", !o.client_ca_pem.empty()},
                                  {"methods", gw->roles_.routes().size()}});
  return gw;
}

// Applies migrations (retrying while the database is unreachable), then
// follows the database's health for the health service and /healthz.
void Gateway::Watch() {
  absl::Duration backoff = absl::Milliseconds(100);
  while (!migrated_.load() && !stop_.HasBeenNotified()) {
    auto applied = db::Migrate(*pool_, Migrations());
    if (applied.ok()) {
      log::Info("migrations applied", {{"applied", *applied}});
      migrated_ = true;
      audit_->Start();
      break;
    }
    log::Warn("migrations not applied yet", {{"error", std::string(applied.status().message())}});
    if (applied.status().code() == absl::StatusCode::kFailedPrecondition) return;
    stop_.WaitForNotificationWithTimeout(backoff);
    backoff = std::min(backoff * 2, absl::Seconds(5));
  }
  bool last = false;
  bool first = true;
  do {
    const bool now = migrated_.load() && pool_->Ping().ok();
    if (stop_.HasBeenNotified()) break;
    if (first || now != last) {
      ready_ = now;
      proxy_->health().SetServing(now);
      serving_->store(now);
      log::Info(now ? "health: SERVING" : "health: NOT_SERVING");
      last = now;
      first = false;
    }
  } while (!stop_.WaitForNotificationWithTimeout(absl::Seconds(1)));
}

bool Gateway::WaitUntilReady(absl::Duration timeout) const {
  const absl::Time until = absl::Now() + timeout;
  while (!ready_.load()) {
    if (absl::Now() > until) return false;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return true;
}

void BlockShutdownSignals() {
  sigset_t set = ShutdownSignals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

void Gateway::Wait() {
  sigset_t set = ShutdownSignals();
  int sig = 0;
  sigwait(&set, &sig);
  log::Info("signal received", {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}});
  Shutdown();
}

void Gateway::Shutdown() {
  if (shut_down_.exchange(true)) return;
  stop_.Notify();
  if (watcher_.joinable()) watcher_.join();
  ready_ = false;
  if (server_) {
    proxy_->health().Shutdown();  // health watches end
    serving_->store(false);
    server_->Shutdown(absl::ToChronoTime(absl::Now() + options_.shutdown_grace));
    server_->Wait();
  }
  if (proxy_) proxy_->Stop();
  if (https_) https_->Stop();
  if (http_) http_->Stop();
  if (audit_) audit_->Stop();
  log::Info("gateway stopped");
}

Gateway::~Gateway() { Shutdown(); }

}  // namespace medkoord::gateway
