#pragma once
// TLS for the gateway's HTTP side (report pages, /healthz, /metrics), so a
// browser reaches the pages over HTTPS with the gateway's own certificate.
//
// common/http_server.h speaks plain HTTP on raw sockets and has no TLS hook,
// so the gateway terminates TLS here and relays each connection to its plain
// HTTP listener on loopback. With a client CA configured, a client
// certificate is requested and, when presented, must verify; its subject is
// then handed to the pages in a header that carries a secret only this
// process knows (kRelayCertHeader), so a person's browser certificate works
// like an API key, and nobody can claim a certificate by sending the header.
// One thread per connection, bounded, like the HTTP server behind it: for
// people and probes, not bulk traffic.

#include <openssl/ssl.h>

#include <atomic>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include "absl/status/statusor.h"

namespace medkoord::gateway {

// "<token>.<base64url subject>.<base64url common name>"
inline constexpr char kRelayCertHeader[] = "x-medkoord-relay-cert";

// Rewrites the request heads of one HTTP/1.1 connection on their way to the
// backend: any kRelayCertHeader the client sent is dropped, and
// `header_line` ("name: value\r\n", may be empty) is added to each request.
// Bodies (Content-Length) pass through untouched.
class RequestRewriter {
 public:
  explicit RequestRewriter(std::string header_line) : header_line_(std::move(header_line)) {}
  // Appends what to send to the backend for the next bytes from the client.
  // False when the request cannot be relayed (head too large, chunked body).
  bool Feed(std::string_view in, std::string* out);

 private:
  bool RewriteHead(std::string* out);
  std::string header_line_;
  std::string head_;
  size_t body_left_ = 0;
};

struct HttpsRelayOptions {
  std::string listen;        // "host:port"; port 0 picks one
  int backend_port = 0;      // the plain HTTP listener on 127.0.0.1
  std::string cert_pem;      // server certificate chain
  std::string key_pem;       // its private key
  std::string client_ca_pem; // optional: request and verify client certificates
  int max_connections = 64;
  // Secret for kRelayCertHeader; empty: client certificates are not passed on.
  std::string relay_token;
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
