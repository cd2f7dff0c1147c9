#pragma once
// What every domain service's main() does, once: read the common settings,
// build the service, connect to its database, apply migrations, serve with
// health/reflection/metrics, run background tasks (outbox relay, listeners),
// and shut down gracefully. A service's main.cc only wires:
//
//   int main(int argc, char** argv) {
//     return medkoord::RunService(argc, argv, {
//         .name = "intake",
//         .migrations = medkoord::intake::Migrations(),
//         .prepare = medkoord::intake::IntakeStore::Prepare,
//         .build = [](medkoord::ServiceContext& ctx) -> absl::StatusOr<medkoord::ServiceParts> {
//           ... read service settings from ctx.config, build store + service ...
//         }});
//   }
//
// Common settings (flag / environment):
//   --listen           MEDKOORD_LISTEN            gRPC address, default 127.0.0.1:0
//   --metrics_listen   MEDKOORD_METRICS_LISTEN    /metrics address, default: none
//   --db_url           MEDKOORD_DB_URL            required, libpq URI
//   --db_pool_size     MEDKOORD_DB_POOL_SIZE      default 8        } ReadPoolSettings, also
//   --db_statement_timeout MEDKOORD_DB_STATEMENT_TIMEOUT  60s; 0s: none } the gateway's
//   --principal_key_file / MEDKOORD_PRINCIPAL_KEY(_FILE)  shared HMAC key, required
//   --shutdown_grace   MEDKOORD_SHUTDOWN_GRACE    default 20s
//   --log_level        MEDKOORD_LOG_LEVEL         debug|info|warning|error

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>
#include <grpcpp/impl/codegen/service_type.h>
#include <pqxx/pqxx>

#include "absl/status/statusor.h"
#include "common/background_task.h"
#include "common/clock.h"
#include "common/config.h"
#include "common/db/migrations.h"
#include "common/db/pool.h"
#include "common/principal.h"

namespace medkoord {

struct ServiceContext {
  Config& config;
  db::Pool& pool;
  const PrincipalSigner& signer;
  const Clock& clock;
};

struct ServiceParts {
  std::vector<std::unique_ptr<grpc::Service>> services;
  std::vector<std::unique_ptr<BackgroundTask>> background;
  // Anything else that must live as long as the server (stores, clients).
  std::vector<std::shared_ptr<void>> keep_alive;
  // Run when graceful shutdown begins (ServerOptions::on_shutdown), in order:
  // e.g. end open live-feed streams with a resumable status.
  std::vector<std::function<void()>> on_shutdown;
};

struct ServiceDefinition {
  std::string name;
  const std::vector<db::Migration>& migrations;
  std::function<void(pqxx::connection&)> prepare;
  std::function<absl::StatusOr<ServiceParts>(ServiceContext&)> build;
};

// The database settings of every process (services and gateway):
// --db_url (required), --db_pool_size (8), --db_statement_timeout (60s;
// 0s: none). Problems are reported by Config::Finish().
db::PoolOptions ReadPoolSettings(Config& config);

// Returns the process exit code: 0 after a graceful shutdown, 2 for bad
// configuration (one line on stderr naming the setting), 1 otherwise.
int RunService(int argc, char** argv, const ServiceDefinition& definition);

// Creates an insecure channel to an internal service address ("host:port").
// Fails calls at once while the peer is down (UNAVAILABLE) and reconnects
// quickly when it is back; message limits as the servers'. Every call made
// on it carries the calling thread's trace context (log::ScopedTrace: the
// handler's call, or the outbox event being delivered) as `traceparent`
// metadata, unless the caller set one itself.
std::shared_ptr<grpc::Channel> InternalChannel(const std::string& address, int max_message_bytes = 16 << 20);

// The channel settings InternalChannel uses (keepalive, quick reconnects,
// message limits), for a caller that builds its own channel: the gateway's
// proxy sets traceparent on every call itself and takes them without the
// trace interceptor.
grpc::ChannelArguments InternalChannelArguments(int max_message_bytes = 16 << 20);

}  // namespace medkoord
