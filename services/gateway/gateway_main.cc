#include "services/gateway/gateway_main.h"

#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "common/config.h"
#include "common/db/migrations.h"
#include "common/log.h"
#include "common/server.h"
#include "common/service_main.h"
#include "services/gateway/gateway.h"

namespace medkoord::gateway {

const std::vector<db::Migration>& Migrations();

namespace {

std::string ReadFileOr(const std::string& path, std::vector<std::string>* problems, const std::string& setting) {
  if (path.empty()) return "";
  std::ifstream in(path);
  std::stringstream ss;
  if (!in || !(ss << in.rdbuf())) {
    problems->push_back(absl::StrCat("--", setting, " names a file that cannot be read: ", path));
    return "";
  }
  return ss.str();
}

// --create_api_key: make a key for a principal, print it, exit.
int Bootstrap(db::Pool& pool, const std::string& principal_id, const std::string& roles, const std::string& region,
              const std::string& display_name) {
  Principal p;
  p.set_id(principal_id);
  p.set_display_name(display_name);
  for (absl::string_view name : absl::StrSplit(roles, ',', absl::SkipEmpty())) {
    auto role = RoleFromName(std::string(name));
    if (!role) {
      std::fprintf(stderr, "gateway: --roles: unknown role '%s'\n", std::string(name).c_str());
      return 2;
    }
    p.add_roles(*role);
  }
  if (!region.empty()) {
    auto r = RegionFromSlug(region);
    if (!r) {
      std::fprintf(stderr, "gateway: --region: unknown region '%s'\n", region.c_str());
      return 2;
    }
    p.set_region(*r);
  }
  absl::StatusOr<int> applied = absl::UnavailableError("not tried");
  absl::Duration backoff = absl::Milliseconds(100);
  for (int attempt = 0; attempt < 20; ++attempt) {
    applied = db::Migrate(pool, Migrations());
    if (applied.ok() || applied.status().code() == absl::StatusCode::kFailedPrecondition) break;
    absl::SleepFor(backoff);
    backoff = std::min(backoff * 2, absl::Seconds(2));
  }
  if (!applied.ok()) {
    std::fprintf(stderr, "gateway: database: %s\n", std::string(applied.status().message()).c_str());
    return 1;
  }
  GatewayStore store(&pool);
  auto issued = IssueApiKey(store, p, "", "bootstrap", *SystemClock());
  if (!issued.ok()) {
    std::fprintf(stderr, "gateway: %s\n", std::string(issued.status().message()).c_str());
    return issued.status().code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
  }
  std::cout << issued->key << std::endl;
  return 0;
}

}  // namespace

int GatewayMain(int argc, char** argv) {
  // Debian's Abseil is built with its debug checks, so every Mutex::Lock
  // also updates a process-wide deadlock graph under a global lock; on the
  // proxy's hot path (cache, rate limiter, audit queue) that showed in the
  // profile. Lock order is checked in the tests' builds, not here.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  BlockShutdownSignals();
  log::Init("gateway");
  Config config(argc, argv);
  GatewayOptions o;
  o.listen = config.String("listen", "127.0.0.1:0");
  o.http_listen = config.String("http_listen", "");
  o.https_listen = config.String("https_listen", "");
  // The common server's settings that apply to the gateway's own listener.
  config.String("metrics_listen", "");
  o.db = ReadPoolSettings(config);
  o.shutdown_grace = config.Duration("shutdown_grace", absl::Seconds(20));
  o.max_message_bytes = static_cast<int>(config.Int("max_message_bytes", 16 << 20));
  const std::string level = config.String("log_level", "info");
  o.rate_limit_per_second = static_cast<double>(config.Int("rate_limit_per_second", 100));
  o.rate_limit_burst = static_cast<double>(config.Int("rate_limit_burst", 200));
  o.proxy.default_deadline = config.Duration("default_deadline", absl::Seconds(30));
  o.proxy.queues = static_cast<int>(config.Int("proxy_queues", 1));
  o.proxy.threads_per_queue = static_cast<int>(config.Int("proxy_threads_per_queue", 1));
  o.proxy.busy_poll = config.Duration("proxy_busy_poll", absl::ZeroDuration());
  o.api_key_cache_ttl = config.Duration("api_key_cache_ttl", absl::Seconds(5));
  const std::string cert_file = config.String("tls_cert_file", "");
  const std::string key_file = config.String("tls_key_file", "");
  const std::string ca_file = config.String("client_ca_file", "");
  const std::string cert_map_file = config.String("cert_map_file", "");
  const std::string create_key = config.String("create_api_key", "");
  const std::string roles = config.String("roles", "");
  const std::string region = config.String("region", "");
  const std::string display_name = config.String("display_name", "");

  auto table = RoleTable::FromGeneratedPool();
  if (table.ok()) {
    for (const std::string& backend : table->Backends()) {
      if (backend == "gateway") continue;
      o.backend_addrs[backend] = config.String(absl::StrCat(backend, "_addr"), "");
    }
  }
  const bool bootstrap = !create_key.empty();
  if (!bootstrap) o.principal_key = config.Secret("principal_key");

  absl::Status status = config.Finish();
  std::vector<std::string> problems;
  if (!status.ok()) problems.emplace_back(status.message());
  if (level == "debug") log::Init("gateway", log::Level::kDebug);
  else if (level == "warning") log::Init("gateway", log::Level::kWarning);
  else if (level == "error") log::Init("gateway", log::Level::kError);
  else if (level != "info") problems.push_back("config: --log_level must be debug|info|warning|error");
  if (!table.ok()) problems.emplace_back(table.status().message());
  o.tls_cert_pem = ReadFileOr(cert_file, &problems, "tls_cert_file");
  o.tls_key_pem = ReadFileOr(key_file, &problems, "tls_key_file");
  o.client_ca_pem = ReadFileOr(ca_file, &problems, "client_ca_file");
  if (!cert_map_file.empty()) {
    auto map = CertMap::Load(cert_map_file);
    if (!map.ok()) {
      problems.emplace_back(map.status().message());
    } else {
      o.cert_map = *std::move(map);
    }
  }
  if (o.proxy.busy_poll < absl::ZeroDuration() || o.proxy.busy_poll > absl::Milliseconds(10)) {
    problems.push_back("config: --proxy_busy_poll must be between 0 (off) and 10ms");
  }
  if (bootstrap && roles.empty()) problems.push_back("config: --roles is required with --create_api_key");
  if (!problems.empty()) {
    for (const auto& p : problems) std::fprintf(stderr, "gateway: %s\n", p.c_str());
    return 2;
  }

  if (bootstrap) {
    db::PoolOptions pool_options = o.db;
    pool_options.size = 1;
    pool_options.prepare = GatewayStore::Prepare;
    db::Pool pool(pool_options);
    return Bootstrap(pool, create_key, roles, region, display_name);
  }

  auto gateway = Gateway::Start(std::move(o));
  if (!gateway.ok()) {
    std::fprintf(stderr, "gateway: %s\n", std::string(gateway.status().message()).c_str());
    return gateway.status().code() == absl::StatusCode::kFailedPrecondition ? 2 : 1;
  }
  (*gateway)->Wait();
  return 0;
}

}  // namespace medkoord::gateway
