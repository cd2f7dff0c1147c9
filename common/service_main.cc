#include "common/service_main.h"

#include <atomic>
#include <cstdio>
#include <thread>

#include <grpcpp/support/client_interceptor.h>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/server.h"

namespace medkoord {
namespace {

log::Level ParseLevel(const std::string& s, bool* ok) {
  *ok = true;
  if (s == "debug") return log::Level::kDebug;
  if (s == "info") return log::Level::kInfo;
  if (s == "warning") return log::Level::kWarning;
  if (s == "error") return log::Level::kError;
  *ok = false;
  return log::Level::kInfo;
}

// Adds the calling thread's trace context to an outgoing call that has none.
class TracePropagator final : public grpc::experimental::Interceptor {
 public:
  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    using grpc::experimental::InterceptionHookPoints;
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_INITIAL_METADATA)) {
      const std::string& trace = log::CurrentTraceparent();
      auto* md = methods->GetSendInitialMetadata();
      if (!trace.empty() && md->find("traceparent") == md->end()) md->emplace("traceparent", trace);
    }
    methods->Proceed();
  }
};

class TracePropagatorFactory final : public grpc::experimental::ClientInterceptorFactoryInterface {
 public:
  grpc::experimental::Interceptor* CreateClientInterceptor(grpc::experimental::ClientRpcInfo*) override {
    return new TracePropagator();
  }
};

}  // namespace

grpc::ChannelArguments InternalChannelArguments(int max_message_bytes) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 60 * 1000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 20 * 1000);
  // Fail fast and retry quickly when a peer comes back.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  args.SetMaxReceiveMessageSize(max_message_bytes);
  args.SetMaxSendMessageSize(max_message_bytes);
  return args;
}

std::shared_ptr<grpc::Channel> InternalChannel(const std::string& address, int max_message_bytes) {
  std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(std::make_unique<TracePropagatorFactory>());
  return grpc::experimental::CreateCustomChannelWithInterceptors(
      address, grpc::InsecureChannelCredentials(), InternalChannelArguments(max_message_bytes), std::move(interceptors));
}

db::PoolOptions ReadPoolSettings(Config& config) {
  db::PoolOptions options;
  options.url = config.String("db_url");
  options.size = static_cast<int>(config.Int("db_pool_size", 8));
  options.statement_timeout = config.Duration("db_statement_timeout", absl::Seconds(60));
  return options;
}

int RunService(int argc, char** argv, const ServiceDefinition& def) {
  // Debian's Abseil keeps its debug checks on: every Mutex::Lock would also
  // update a process-wide deadlock graph under a global lock (it showed in
  // the profiles of the request path). Tests keep the check.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  InstallSignalHandlers();
  log::Init(def.name);
  Config config(argc, argv);

  ServerOptions server_options;
  server_options.service_name = def.name;
  server_options.listen = config.String("listen", "127.0.0.1:0");
  server_options.metrics_listen = config.String("metrics_listen", "");
  server_options.shutdown_grace = config.Duration("shutdown_grace", absl::Seconds(20));
  server_options.max_threads = static_cast<int>(config.Int("max_threads", 128));
  server_options.max_message_bytes = static_cast<int>(config.Int("max_message_bytes", 16 << 20));
  const std::string level_name = config.String("log_level", "info");
  db::PoolOptions pool_options = ReadPoolSettings(config);
  pool_options.prepare = def.prepare;
  const std::string principal_key = config.Secret("principal_key");

  bool level_ok = false;
  log::Level level = ParseLevel(level_name, &level_ok);
  log::Init(def.name, level);

  // Built before Finish() so that the service's own settings are checked
  // together with the common ones; the pool connects lazily.
  auto signer = PrincipalSigner::Create(principal_key.empty() ? std::string(32, '\0') : principal_key);
  db::Pool pool(pool_options);
  ServiceContext ctx{config, pool, *signer, *SystemClock()};
  absl::StatusOr<ServiceParts> parts = def.build(ctx);
  absl::Status config_status = config.Finish();
  if (!level_ok) config_status.Update(absl::FailedPreconditionError("config: --log_level must be debug|info|warning|error"));
  if (config_status.ok() && !principal_key.empty()) {
    auto real = PrincipalSigner::Create(principal_key);
    if (!real.ok()) config_status = absl::FailedPreconditionError(absl::StrCat("config: ", real.status().message()));
  }
  if (!config_status.ok()) {
    std::fprintf(stderr, "%s: %s\n", def.name.c_str(), std::string(config_status.message()).c_str());
    return 2;
  }
  if (!parts.ok()) {
    std::fprintf(stderr, "%s: %s\n", def.name.c_str(), std::string(parts.status().message()).c_str());
    return parts.status().code() == absl::StatusCode::kFailedPrecondition ? 2 : 1;
  }

  // Migrations run in the background so the health service answers
  // NOT_SERVING (rather than nothing) while the database is unreachable.
  std::atomic<bool> migrated{false};
  absl::Notification stop_migrating;
  std::thread migrator([&] {
    absl::Duration backoff = absl::Milliseconds(200);
    while (!stop_migrating.HasBeenNotified()) {
      auto applied = db::Migrate(pool, def.migrations);
      if (applied.ok()) {
        log::Info("migrations applied", {{"applied", *applied}, {"known", def.migrations.size()}});
        migrated = true;
        return;
      }
      log::Warn("migrations not applied yet", {{"error", std::string(applied.status().message())}});
      if (applied.status().code() == absl::StatusCode::kFailedPrecondition) return;  // needs an operator
      stop_migrating.WaitForNotificationWithTimeout(backoff);
      backoff = std::min(backoff * 2, absl::Seconds(5));
    }
  });

  server_options.signer = signer.operator->();
  server_options.readiness = [&]() -> absl::Status {
    if (!migrated.load()) return absl::UnavailableError("migrations not applied yet");
    return pool.Ping();
  };
  server_options.on_shutdown = [&parts] {
    for (auto& hook : parts->on_shutdown) hook();
  };
  std::vector<grpc::Service*> services;
  for (auto& s : parts->services) services.push_back(s.get());
  metrics::DefaultRegistry().AddCallbackGauge("medkoord_db_pool_in_use", "Pooled connections in use",
                                              {{"service", def.name}}, [&pool] { return pool.stats().in_use; });
  metrics::DefaultRegistry().AddCallbackGauge("medkoord_db_pool_size", "Pool size", {{"service", def.name}},
                                              [&pool] { return pool.stats().size; });

  auto server = Server::Start(server_options, services);
  if (!server.ok()) {
    log::Error("cannot start", {{"error", std::string(server.status().message())}});
    stop_migrating.Notify();
    migrator.join();
    return 1;
  }
  // Background tasks need the schema; start them once it is there.
  std::thread starter([&] {
    while (!migrated.load() && !stop_migrating.HasBeenNotified()) {
      stop_migrating.WaitForNotificationWithTimeout(absl::Milliseconds(100));
    }
    if (!migrated.load()) return;
    for (auto& task : parts->background) task->Start();
  });

  (*server)->Wait();
  stop_migrating.Notify();
  migrator.join();
  starter.join();
  for (auto& task : parts->background) task->Stop();
  return 0;
}

}  // namespace medkoord
