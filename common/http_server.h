#pragma once
// A small HTTP/1.1 server for /metrics, /healthz and the gateway's pages.
// One thread per connection, bounded; not for bulk traffic.

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"

namespace medkoord {

struct HttpRequest {
  std::string method;
  std::string path;                           // without the query
  std::map<std::string, std::string> query;   // decoded
  std::map<std::string, std::string> headers; // lower-case names
  std::string body;
  std::string peer;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::map<std::string, std::string> headers;
  std::string body;
};

class HttpServer {
 public:
  using Handler = std::function<HttpResponse(const HttpRequest&)>;

  // Binds "host:port" (port 0 picks one) and starts serving.
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(const std::string& listen, int max_connections = 64);
  ~HttpServer();

  // Exact path match; unknown paths are 404. Register before traffic.
  void Handle(const std::string& path, Handler handler);
  int port() const { return port_; }
  void Stop();

 private:
  HttpServer() = default;
  void AcceptLoop();
  void Serve(int fd, std::string peer);

  int listen_fd_ = -1;
  int port_ = 0;
  int max_connections_ = 64;
  std::atomic<int> connections_{0};
  std::atomic<bool> stopping_{false};
  std::map<std::string, Handler> handlers_;
  std::thread accept_thread_;
};

}  // namespace medkoord
