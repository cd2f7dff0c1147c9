#include "common/server.h"

#include <pthread.h>
#include <signal.h>

#include <array>
#include <atomic>
#include <thread>

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/resource_quota.h>
#include <grpcpp/support/server_interceptor.h>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "common/http_server.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/status.h"

namespace medkoord {
namespace {

absl::Notification& ShutdownSignal() {
  static absl::Notification* n = new absl::Notification();
  return *n;
}

std::string FindMetadata(std::multimap<grpc::string_ref, grpc::string_ref>* md, std::string_view key) {
  if (md == nullptr) return "";
  auto it = md->find(grpc::string_ref(key.data(), key.size()));
  if (it == md->end()) return "";
  return std::string(it->second.data(), it->second.size());
}

// The access-log principal field of the call whose handler runs on this
// thread (see NoteVerifiedPrincipal), set while the interceptor hands the
// call on.
thread_local std::string* current_call_principal = nullptr;

// Sets current_call_principal while gRPC runs the handler inside Proceed().
class ScopedCallPrincipal {
 public:
  explicit ScopedCallPrincipal(std::string* slot) : previous_(current_call_principal) { current_call_principal = slot; }
  ~ScopedCallPrincipal() { current_call_principal = previous_; }
  ScopedCallPrincipal(const ScopedCallPrincipal&) = delete;
  ScopedCallPrincipal& operator=(const ScopedCallPrincipal&) = delete;

 private:
  std::string* previous_;
};

// The call metrics of one method, looked up in the registry once per method
// rather than once per call (building the label maps and taking the
// registry's lock for every call showed in the profiles).
class MethodMetrics {
 public:
  MethodMetrics(std::string service, std::string method)
      : service_(std::move(service)),
        method_(std::move(method)),
        latency_(metrics::DefaultRegistry().GetHistogram("medkoord_grpc_server_handling_seconds", "RPC latency",
                                                         {{"service", service_}, {"method", method_}})) {}

  void Observe(int code, double seconds) {
    latency_.Observe(seconds);
    const size_t i = code >= 0 && static_cast<size_t>(code) < kCodes ? static_cast<size_t>(code) : kCodes;
    metrics::Counter* counter = handled_[i].load(std::memory_order_acquire);
    if (counter == nullptr) {
      // The registry returns the same counter to every thread that gets here.
      counter = &metrics::DefaultRegistry().GetCounter(
          "medkoord_grpc_server_handled_total", "RPCs completed, by method and status code",
          {{"service", service_}, {"method", method_}, {"code", StatusCodeName(code)}});
      handled_[i].store(counter, std::memory_order_release);
    }
    counter->Inc();
  }
  const std::string& method() const { return method_; }

 private:
  static constexpr size_t kCodes = 17;  // grpc::StatusCode OK .. UNAUTHENTICATED
  const std::string service_;
  const std::string method_;
  metrics::Histogram& latency_;
  std::array<std::atomic<metrics::Counter*>, kCodes + 1> handled_{};  // last: any other code
};

class MethodMetricsCache {
 public:
  explicit MethodMetricsCache(std::string service) : service_(std::move(service)) {}
  MethodMetrics& For(const char* method) {
    {
      absl::ReaderMutexLock lock(&mu_);
      if (auto it = methods_.find(method); it != methods_.end()) return *it->second;
    }
    absl::MutexLock lock(&mu_);
    auto& slot = methods_[method];
    if (!slot) slot = std::make_unique<MethodMetrics>(service_, method);
    return *slot;
  }

 private:
  const std::string service_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::unique_ptr<MethodMetrics>> methods_ ABSL_GUARDED_BY(mu_);
};

// One access-log line and the call metrics per RPC. Never logs bodies.
class AccessLogInterceptor final : public grpc::experimental::Interceptor {
 public:
  AccessLogInterceptor(grpc::experimental::ServerRpcInfo* info, const ServerOptions* options, MethodMetrics& metrics)
      : method_(metrics.method()),
        options_(options),
        metrics_(metrics),
        context_(info->server_context()),
        // A stream may outlive its signed principal (60 s): verified at
        // its start. A unary call only if its handler does not name it.
        verify_at_start_(info->type() != grpc::experimental::ServerRpcInfo::Type::UNARY),
        start_(absl::Now()) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    using grpc::experimental::InterceptionHookPoints;
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_INITIAL_METADATA)) {
      auto* md = methods->GetRecvInitialMetadata();
      request_id_ = FindMetadata(md, "x-request-id");
      traceparent_ = FindMetadata(md, "traceparent");
      if (verify_at_start_ && options_->signer != nullptr) {
        verified_ = true;
        auto principal = options_->signer->Verify(FindMetadata(md, kPrincipalMetadata),
                                                  FindMetadata(md, kSignatureMetadata), method_);
        if (principal.ok()) principal_id_ = principal->id();
      }
    }
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      // Unless the handler said whom it verified (NoteVerifiedPrincipal).
      if (principal_id_.empty() && !verified_ && options_->signer != nullptr && context_ != nullptr) {
        auto principal = options_->signer->Verify(*context_, method_);
        if (principal.ok()) principal_id_ = principal->id();
      }
      grpc::Status status = methods->GetSendStatus();
      const double seconds = absl::ToDoubleSeconds(absl::Now() - start_);
      const int code_number = static_cast<int>(status.error_code());
      metrics_.Observe(code_number, seconds);
      log::RpcLine(method_, StatusCodeName(code_number), seconds * 1000.0, request_id_, principal_id_, traceparent_);
    }
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_INITIAL_METADATA) ||
        methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_MESSAGE)) {
      // gRPC runs the (synchronous) handler from inside the last
      // interceptor's Proceed() on this thread, so the call's trace context
      // set here is on every log line the handler writes and on every outbox
      // row it enqueues (log::CurrentTraceparent).
      log::ScopedTrace trace(traceparent_);
      ScopedCallPrincipal principal(&principal_id_);
      methods->Proceed();
      return;
    }
    methods->Proceed();
  }

 private:
  const std::string& method_;  // owned by the cache
  const ServerOptions* options_;
  MethodMetrics& metrics_;
  grpc::ServerContextBase* context_;
  const bool verify_at_start_;
  bool verified_ = false;
  absl::Time start_;
  std::string request_id_;
  std::string traceparent_;
  std::string principal_id_;
};

class AccessLogInterceptorFactory final : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit AccessLogInterceptorFactory(const ServerOptions* options)
      : options_(options), metrics_(options->service_name) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(grpc::experimental::ServerRpcInfo* info) override {
    return new AccessLogInterceptor(info, options_, metrics_.For(info->method()));
  }

 private:
  const ServerOptions* options_;
  MethodMetricsCache metrics_;
};

}  // namespace

struct Server::State {
  std::thread readiness_thread;
  absl::Notification stop;
  std::atomic<bool> serving{false};
  std::atomic<bool> shut_down{false};
};

absl::StatusOr<std::unique_ptr<Server>> Server::Start(ServerOptions options, std::vector<grpc::Service*> services) {
  auto server = std::unique_ptr<Server>(new Server());
  server->options_ = std::move(options);
  server->state_ = std::make_unique<State>();
  const ServerOptions& opts = server->options_;

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  auto creds = opts.credentials ? opts.credentials : grpc::InsecureServerCredentials();
  builder.AddListeningPort(opts.listen, creds, &server->port_);
  for (grpc::Service* s : services) builder.RegisterService(s);
  ApplyServerDefaults(builder, opts.max_message_bytes);
  grpc::ResourceQuota quota(opts.service_name);
  quota.SetMaxThreads(opts.max_threads);
  builder.SetResourceQuota(quota);
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(std::make_unique<AccessLogInterceptorFactory>(&server->options_));
  builder.experimental().SetInterceptorCreators(std::move(interceptors));

  server->server_ = builder.BuildAndStart();
  if (!server->server_ || server->port_ == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", opts.listen));
  }
  server->server_->GetHealthCheckService()->SetServingStatus(false);

  if (!opts.metrics_listen.empty()) {
    auto http = HttpServer::Start(opts.metrics_listen);
    if (!http.ok()) return http.status();
    server->http_ = *std::move(http);
    server->http_->Handle("/metrics", [](const HttpRequest&) {
      return HttpResponse{200, "text/plain; version=0.0.4; charset=utf-8", {}, metrics::DefaultRegistry().Render()};
    });
    State* state = server->state_.get();
    server->http_->Handle("/healthz", [state](const HttpRequest&) {
      const bool ok = state->serving.load();
      return HttpResponse{ok ? 200 : 503, "text/plain; charset=utf-8", {}, ok ? "SERVING\n" : "NOT_SERVING\n"};
    });
  }
  metrics::DefaultRegistry().AddCallbackGauge("medkoord_serving", "1 while the health status is SERVING",
                                              {{"service", opts.service_name}},
                                              [state = server->state_.get()] { return state->serving ? 1.0 : 0.0; });

  server->state_->readiness_thread = std::thread([s = server.get()] { s->ReadinessLoop(); });
  log::Info("listening", {{"grpc_port", server->port_}, {"metrics_port", server->metrics_port()}});
  return server;
}

Server::~Server() { Shutdown(); }

int Server::metrics_port() const { return http_ ? http_->port() : 0; }

void Server::ReadinessLoop() {
  bool last = false;
  bool first = true;
  do {
    absl::Status ready = options_.readiness ? options_.readiness() : absl::OkStatus();
    const bool now = ready.ok();
    if (state_->stop.HasBeenNotified()) break;
    if (first || now != last) {
      server_->GetHealthCheckService()->SetServingStatus(now);
      state_->serving = now;
      if (now) {
        log::Info("health: SERVING");
      } else {
        log::Warn("health: NOT_SERVING", {{"reason", std::string(ready.message())}});
      }
      last = now;
      first = false;
    }
  } while (!state_->stop.WaitForNotificationWithTimeout(options_.readiness_interval));
}

void Server::Wait() {
  while (!state_->shut_down.load() && !ShutdownSignal().WaitForNotificationWithTimeout(absl::Milliseconds(200))) {
  }
  Shutdown();
}

void Server::Shutdown() {
  if (!state_ || state_->shut_down.exchange(true)) return;
  log::Info("shutting down", {{"grace_ms", absl::ToInt64Milliseconds(options_.shutdown_grace)}});
  state_->stop.Notify();
  if (state_->readiness_thread.joinable()) state_->readiness_thread.join();
  state_->serving = false;
  if (server_) {
    server_->GetHealthCheckService()->SetServingStatus(false);
    if (options_.on_shutdown) options_.on_shutdown();
    // Stops accepting at once; in-flight calls get the grace period.
    server_->Shutdown(absl::ToChronoTime(absl::Now() + options_.shutdown_grace));
    server_->Wait();
  }
  if (http_) http_->Stop();
  log::Info("stopped");
}

void ApplyServerDefaults(grpc::ServerBuilder& builder, int max_message_bytes) {
  builder.SetMaxReceiveMessageSize(max_message_bytes);
  builder.SetMaxSendMessageSize(max_message_bytes);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 60 * 1000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 20 * 1000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10 * 1000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
}

void InstallSignalHandlers() {
  static std::once_flag once;
  std::call_once(once, [] {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    // Block in this thread before any other is created, so every thread
    // inherits the mask and only the waiter below sees the signals.
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    std::thread([set] {
      int sig = 0;
      sigwait(&set, &sig);
      log::Info("signal received", {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}});
      ShutdownSignal().Notify();
    }).detach();
  });
}

std::string FullMethodName(const char* service_full_name, std::string_view method) {
  std::string out = "/";
  out += service_full_name;
  out += "/";
  out += method;
  return out;
}

void NoteVerifiedPrincipal(std::string_view principal_id) {
  if (current_call_principal != nullptr) current_call_principal->assign(principal_id);
}

std::string RequestIdOf(const grpc::ServerContext& context) {
  auto it = context.client_metadata().find("x-request-id");
  if (it == context.client_metadata().end()) return "";
  return std::string(it->second.data(), it->second.size());
}

}  // namespace medkoord
