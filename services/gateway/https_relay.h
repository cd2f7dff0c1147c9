#pragma once
// TLS for the gateway's HTTP side (report pages, /healthz, /metrics), so a
// browser reaches the pages over HTTPS with the gateway's own certificate.
//
// common/http_server.h speaks plain HTTP on raw sockets and has no TLS hook,
// so the gateway terminates TLS here and relays each connection's bytes to
// its plain HTTP listener on loopback. With a client CA configured, a client
// certificate is requested and, when presented, must verify; the pages still
// authenticate by API key (HTTP Basic). One thread per connection, bounded,
// like the HTTP server behind it: for people and probes, not bulk traffic.

#include <openssl/ssl.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"

namespace medkoord::gateway {

struct HttpsRelayOptions {
  std::string listen;        // "host:port"; port 0 picks one
  int backend_port = 0;      // the plain HTTP listener on 127.0.0.1
  std::string cert_pem;      // server certificate chain
  std::string key_pem;       // its private key
  std::string client_ca_pem; // optional: request and verify client certificates
  int max_connections = 64;
};

class HttpsRelay {
 public:
  static absl::StatusOr<std::unique_ptr<HttpsRelay>> Start(HttpsRelayOptions options);
  ~HttpsRelay();

  int port() const { return port_; }
  void Stop();

 private:
  HttpsRelay() = default;
  void AcceptLoop();
  void Relay(int client_fd);

  HttpsRelayOptions options_;
  SSL_CTX* ctx_ = nullptr;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<int> connections_{0};
  std::atomic<bool> stopping_{false};
  std::thread accept_thread_;
};

}  // namespace medkoord::gateway
