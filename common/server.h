#pragma once
// Server bootstrap shared by every service: gRPC health service (SERVING only
// once the readiness check passes), reflection, keepalive, message limits, an
// access-log + metrics interceptor, a /metrics HTTP listener, and graceful
// shutdown on SIGTERM/SIGINT (stop accepting, let in-flight calls finish
// within the grace period, exit 0).

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/principal.h"

namespace medkoord {

class HttpServer;

struct ServerOptions {
  std::string service_name;           // "intake"; logs and metrics
  std::string listen = "127.0.0.1:0"; // port 0 picks a free port
  std::string metrics_listen;         // "127.0.0.1:9101"; empty: no HTTP listener
  int max_message_bytes = 16 << 20;
  absl::Duration shutdown_grace = absl::Seconds(20);
  int max_threads = 128;              // sync-API worker threads
  // Polled every `readiness_interval`; the health status follows it
  // (SERVING / NOT_SERVING). E.g. a database ping.
  std::function<absl::Status()> readiness;
  absl::Duration readiness_interval = absl::Seconds(1);
  // Verifies the signed principal for the access log's principal field.
  const PrincipalSigner* signer = nullptr;
  // Server credentials; default insecure (domain services listen internally).
  std::shared_ptr<grpc::ServerCredentials> credentials;
  // Called once when graceful shutdown begins: after health turns
  // NOT_SERVING, before the server stops accepting and waits up to
  // `shutdown_grace` for calls in flight. Long-lived streams (live feeds)
  // end themselves here with a status that tells the client to resume
  // elsewhere, instead of holding the shutdown for the whole grace period;
  // a stream that starts after this hook must be refused by the service.
  std::function<void()> on_shutdown;
};

class Server {
 public:
  static absl::StatusOr<std::unique_ptr<Server>> Start(ServerOptions options,
                                                       std::vector<grpc::Service*> services);
  ~Server();

  int port() const { return port_; }
  int metrics_port() const;
  grpc::Server* grpc_server() { return server_.get(); }
  HttpServer* http_server() { return http_.get(); }

  // Blocks until SIGTERM/SIGINT (see InstallSignalHandlers) or Shutdown(),
  // then shuts down gracefully.
  void Wait();
  // Graceful shutdown: NOT_SERVING, `on_shutdown`, stop accepting, in-flight
  // calls get `shutdown_grace` to finish, then are cancelled.
  void Shutdown();

 private:
  Server() = default;
  void ReadinessLoop();

  ServerOptions options_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<HttpServer> http_;
  int port_ = 0;
  struct State;
  std::unique_ptr<State> state_;
};

// Makes SIGTERM and SIGINT request a graceful shutdown of every Server
// waiting in Wait(). Call once from main.
void InstallSignalHandlers();

// The transport settings every medkoord listener uses: message limits,
// keepalive and ping policy. Server::Start applies them; a server built
// elsewhere (the gateway's generic proxy) calls this too.
void ApplyServerDefaults(grpc::ServerBuilder& builder, int max_message_bytes);

// "/medkoord.intake.v1.Intake/GetApplication" from the generated
// `Intake::service_full_name()` and the method's short name.
std::string FullMethodName(const char* service_full_name, std::string_view method);

// The request id of the call (`x-request-id` metadata), or "".
std::string RequestIdOf(const grpc::ServerContext& context);

// Tells the access log which principal the handler has verified for the
// call it is running, so that the log need not verify the signed principal
// a second time (an HMAC per call). Only takes effect when called on the
// thread gRPC runs the handler on, while it runs (sync handlers, and
// callback handlers before they return); otherwise, or when a handler does
// not call it, the access log verifies the principal itself.
void NoteVerifiedPrincipal(std::string_view principal_id);

}  // namespace medkoord
