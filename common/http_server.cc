#include "common/http_server.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/log.h"

namespace medkoord {
namespace {

constexpr size_t kMaxHeaderBytes = 64 * 1024;
constexpr size_t kMaxBodyBytes = 1 << 20;
constexpr int kReadTimeoutMs = 10000;

const char* Reason(int status) {
  switch (status) {
    case 200: return "OK";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 413: return "Payload Too Large";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    default: return "Status";
  }
}

std::string PercentDecode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out.push_back(' ');
    } else if (s[i] == '%' && i + 2 < s.size() && absl::ascii_isxdigit(s[i + 1]) && absl::ascii_isxdigit(s[i + 2])) {
      out.push_back(static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16)));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

bool ReadSome(int fd, std::string& buf) {
  pollfd p{fd, POLLIN, 0};
  if (poll(&p, 1, kReadTimeoutMs) <= 0) return false;
  char tmp[8192];
  ssize_t n = read(fd, tmp, sizeof(tmp));
  if (n <= 0) return false;
  buf.append(tmp, static_cast<size_t>(n));
  return true;
}

void WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) return;
    data.remove_prefix(static_cast<size_t>(n));
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(const std::string& listen, int max_connections) {
  auto colon = listen.rfind(':');
  if (colon == std::string::npos) return absl::InvalidArgumentError(absl::StrCat("bad listen address ", listen));
  std::string host = listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  std::string port = listen.substr(colon + 1);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* res = nullptr;
  if (getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints, &res) != 0 || res == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("cannot resolve listen address ", listen));
  }
  int fd = socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC, res->ai_protocol);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (fd < 0 || bind(fd, res->ai_addr, res->ai_addrlen) != 0 || ::listen(fd, 128) != 0) {
    std::string err = std::strerror(errno);
    freeaddrinfo(res);
    if (fd >= 0) close(fd);
    return absl::UnavailableError(absl::StrCat("cannot listen on ", listen, ": ", err));
  }
  freeaddrinfo(res);
  sockaddr_storage addr{};
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  auto server = std::unique_ptr<HttpServer>(new HttpServer());
  server->listen_fd_ = fd;
  server->max_connections_ = max_connections;
  server->port_ = addr.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port)
                                             : ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
  server->accept_thread_ = std::thread([s = server.get()] { s->AcceptLoop(); });
  return server;
}

HttpServer::~HttpServer() { Stop(); }

void HttpServer::Handle(const std::string& path, Handler handler) { handlers_[path] = std::move(handler); }

void HttpServer::Stop() {
  if (stopping_.exchange(true)) return;
  if (accept_thread_.joinable()) accept_thread_.join();
  if (listen_fd_ >= 0) close(listen_fd_);
  // Connection threads are detached; wait briefly for them to drain.
  for (int i = 0; i < 200 && connections_.load() > 0; ++i) usleep(10000);
}

void HttpServer::AcceptLoop() {
  while (!stopping_.load()) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (poll(&p, 1, 100) <= 0) continue;
    sockaddr_storage addr{};
    socklen_t len = sizeof(addr);
    int fd = accept4(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len, SOCK_CLOEXEC);
    if (fd < 0) continue;
    char host[NI_MAXHOST] = "";
    getnameinfo(reinterpret_cast<sockaddr*>(&addr), len, host, sizeof(host), nullptr, 0, NI_NUMERICHOST);
    if (connections_.load() >= max_connections_) {
      WriteAll(fd, "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
      close(fd);
      continue;
    }
    ++connections_;
    std::thread([this, fd, peer = std::string(host)] {
      Serve(fd, peer);
      close(fd);
      --connections_;
    }).detach();
  }
}

void HttpServer::Serve(int fd, std::string peer) {
  std::string buf;
  size_t header_end;
  while ((header_end = buf.find("\r\n\r\n")) == std::string::npos) {
    if (buf.size() > kMaxHeaderBytes || !ReadSome(fd, buf)) return;
  }
  HttpRequest req;
  req.peer = std::move(peer);
  std::vector<absl::string_view> lines = absl::StrSplit(absl::string_view(buf).substr(0, header_end), "\r\n");
  std::vector<absl::string_view> first = absl::StrSplit(lines[0], ' ');
  HttpResponse resp;
  if (first.size() != 3) {
    resp.status = 400;
  } else {
    req.method = std::string(first[0]);
    std::string_view target(first[1].data(), first[1].size());
    auto q = target.find('?');
    req.path = PercentDecode(target.substr(0, q));
    if (q != std::string_view::npos) {
      for (absl::string_view akv : absl::StrSplit(absl::string_view(target.data(), target.size()).substr(q + 1), '&',
                                                  absl::SkipEmpty())) {
        std::string_view kv(akv.data(), akv.size());
        auto eq = kv.find('=');
        req.query[PercentDecode(kv.substr(0, eq))] = eq == std::string_view::npos ? "" : PercentDecode(kv.substr(eq + 1));
      }
    }
    for (size_t i = 1; i < lines.size(); ++i) {
      auto colon = lines[i].find(':');
      if (colon == std::string_view::npos) continue;
      req.headers[absl::AsciiStrToLower(lines[i].substr(0, colon))] =
          std::string(absl::StripAsciiWhitespace(lines[i].substr(colon + 1)));
    }
    size_t content_length = 0;
    if (auto it = req.headers.find("content-length"); it != req.headers.end()) {
      if (!absl::SimpleAtoi(it->second, &content_length)) content_length = kMaxBodyBytes + 1;
    }
    if (content_length > kMaxBodyBytes) {
      resp.status = 413;
    } else {
      req.body = buf.substr(header_end + 4);
      while (req.body.size() < content_length && ReadSome(fd, req.body)) {
      }
      auto it = handlers_.find(req.path);
      if (it == handlers_.end()) {
        resp.status = 404;
        resp.body = "not found\n";
      } else {
        try {
          resp = it->second(req);
        } catch (const std::exception& e) {
          log::Error("http handler failed", {{"path", req.path}, {"error", e.what()}});
          resp = HttpResponse{500, "text/plain; charset=utf-8", {}, "internal error\n"};
        }
      }
    }
  }
  std::string head = absl::StrCat("HTTP/1.1 ", resp.status, " ", Reason(resp.status), "\r\nContent-Type: ",
                                  resp.content_type, "\r\nContent-Length: ", resp.body.size(),
                                  "\r\nConnection: close\r\n");
  for (const auto& [k, v] : resp.headers) absl::StrAppend(&head, k, ": ", v, "\r\n");
  head += "\r\n";
  WriteAll(fd, head);
  if (req.method != "HEAD") WriteAll(fd, resp.body);
}

}  // namespace medkoord
