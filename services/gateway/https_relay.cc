#include "services/gateway/https_relay.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/log.h"

namespace medkoord::gateway {
namespace {

std::string OpenSslError() {
  const unsigned long e = ERR_get_error();
  if (e == 0) return "unknown TLS error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof(buf));
  return buf;
}

// Loads PEM text (a chain, or CA certificates) into the context.
absl::Status UsePem(SSL_CTX* ctx, const HttpsRelayOptions& o) {
  std::unique_ptr<BIO, decltype(&BIO_free)> certs(BIO_new_mem_buf(o.cert_pem.data(), static_cast<int>(o.cert_pem.size())),
                                                  &BIO_free);
  X509* leaf = PEM_read_bio_X509(certs.get(), nullptr, nullptr, nullptr);
  if (leaf == nullptr || SSL_CTX_use_certificate(ctx, leaf) != 1) {
    X509_free(leaf);
    return absl::FailedPreconditionError(absl::StrCat("config: tls_cert_file: ", OpenSslError()));
  }
  X509_free(leaf);
  while (X509* extra = PEM_read_bio_X509(certs.get(), nullptr, nullptr, nullptr)) {
    if (SSL_CTX_add0_chain_cert(ctx, extra) != 1) X509_free(extra);
  }
  ERR_clear_error();
  std::unique_ptr<BIO, decltype(&BIO_free)> key(BIO_new_mem_buf(o.key_pem.data(), static_cast<int>(o.key_pem.size())),
                                                &BIO_free);
  EVP_PKEY* pkey = PEM_read_bio_PrivateKey(key.get(), nullptr, nullptr, nullptr);
  const bool key_ok = pkey != nullptr && SSL_CTX_use_PrivateKey(ctx, pkey) == 1 && SSL_CTX_check_private_key(ctx) == 1;
  EVP_PKEY_free(pkey);
  if (!key_ok) return absl::FailedPreconditionError(absl::StrCat("config: tls_key_file: ", OpenSslError()));
  if (!o.client_ca_pem.empty()) {
    X509_STORE* store = SSL_CTX_get_cert_store(ctx);
    std::unique_ptr<BIO, decltype(&BIO_free)> cas(
        BIO_new_mem_buf(o.client_ca_pem.data(), static_cast<int>(o.client_ca_pem.size())), &BIO_free);
    int added = 0;
    while (X509* ca = PEM_read_bio_X509(cas.get(), nullptr, nullptr, nullptr)) {
      if (X509_STORE_add_cert(store, ca) == 1) ++added;
      X509_free(ca);
    }
    ERR_clear_error();
    if (added == 0) return absl::FailedPreconditionError("config: client_ca_file holds no certificate");
    // As on the gRPC listener: a certificate is optional (API keys work
    // without one), but one that is presented must verify.
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  }
  return absl::OkStatus();
}

int ConnectLoopback(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

bool WriteAll(int fd, const char* data, size_t n) {
  while (n > 0) {
    const ssize_t w = send(fd, data, n, MSG_NOSIGNAL);
    if (w <= 0) return false;
    data += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

// RFC 2253 form, as gRPC reports x509_subject (so one cert map serves both).
std::string SubjectOf(X509* cert) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), &BIO_free);
  X509_NAME_print_ex(bio.get(), X509_get_subject_name(cert), 0, XN_FLAG_RFC2253);
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

std::string CommonNameOf(X509* cert) {
  char cn[256] = "";
  if (X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof(cn)) < 0) return "";
  return cn;
}

constexpr size_t kMaxHead = 64 << 10;

}  // namespace

bool RequestRewriter::Feed(std::string_view in, std::string* out) {
  size_t i = 0;
  while (i < in.size()) {
    if (body_left_ > 0) {
      const size_t take = std::min(body_left_, in.size() - i);
      out->append(in.substr(i, take));
      body_left_ -= take;
      i += take;
      continue;
    }
    const size_t end = in.find("\n", i);
    const size_t take = end == std::string_view::npos ? in.size() - i : end + 1 - i;
    head_.append(in.substr(i, take));
    i += take;
    if (head_.size() > kMaxHead) return false;
    if (head_.size() >= 4 && head_.compare(head_.size() - 4, 4, "\r\n\r\n") == 0) {
      if (!RewriteHead(out)) return false;
    } else if (head_ == "\r\n") {
      head_.clear();  // a stray empty line between requests
    }
  }
  return true;
}

bool RequestRewriter::RewriteHead(std::string* out) {
  std::vector<absl::string_view> lines = absl::StrSplit(absl::string_view(head_), "\r\n");
  std::string rewritten;
  for (size_t n = 0; n < lines.size(); ++n) {
    const absl::string_view line = lines[n];
    if (line.empty()) continue;
    if (n > 0) {
      const size_t colon = line.find(':');
      const std::string name = absl::AsciiStrToLower(std::string(line.substr(0, colon)));
      const std::string value(absl::StripAsciiWhitespace(colon == absl::string_view::npos ? "" : line.substr(colon + 1)));
      if (name == kRelayCertHeader) continue;
      if (name == "transfer-encoding") return false;
      if (name == "content-length" && !absl::SimpleAtoi(value, &body_left_)) return false;
    }
    absl::StrAppend(&rewritten, line, "\r\n");
  }
  absl::StrAppend(out, rewritten, header_line_, "\r\n");
  head_.clear();
  return true;
}

absl::StatusOr<std::unique_ptr<HttpsRelay>> HttpsRelay::Start(HttpsRelayOptions options) {
  auto relay = std::unique_ptr<HttpsRelay>(new HttpsRelay());
  relay->options_ = std::move(options);
  const HttpsRelayOptions& o = relay->options_;
  relay->ctx_ = SSL_CTX_new(TLS_server_method());
  if (relay->ctx_ == nullptr) return absl::InternalError(OpenSslError());
  SSL_CTX_set_min_proto_version(relay->ctx_, TLS1_2_VERSION);
  if (absl::Status s = UsePem(relay->ctx_, o); !s.ok()) return s;

  const size_t colon = o.listen.rfind(':');
  int port = 0;
  if (colon == std::string::npos || !absl::SimpleAtoi(o.listen.substr(colon + 1), &port)) {
    return absl::FailedPreconditionError(absl::StrCat("config: https_listen must be host:port, not ", o.listen));
  }
  const std::string host = o.listen.substr(0, colon);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  if (getaddrinfo(host.empty() ? nullptr : host.c_str(), std::to_string(port).c_str(), &hints, &res) != 0 ||
      res == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat("config: https_listen: cannot resolve ", host));
  }
  int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  const bool bound = fd >= 0 && bind(fd, res->ai_addr, res->ai_addrlen) == 0 && listen(fd, 64) == 0;
  freeaddrinfo(res);
  if (!bound) {
    if (fd >= 0) close(fd);
    return absl::UnavailableError(absl::StrCat("cannot listen on ", o.listen));
  }
  sockaddr_storage addr{};
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  relay->port_ = ntohs(addr.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port
                                                  : reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
  relay->listen_fd_ = fd;
  relay->accept_thread_ = std::thread([r = relay.get()] { r->AcceptLoop(); });
  return relay;
}

void HttpsRelay::AcceptLoop() {
  while (!stopping_.load()) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (poll(&p, 1, 100) <= 0) continue;
    const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    if (connections_.load() >= options_.max_connections) {
      close(fd);
      continue;
    }
    ++connections_;
    std::thread([this, fd] {
      Relay(fd);
      close(fd);
      --connections_;
    }).detach();
  }
}

void HttpsRelay::Relay(int client_fd) {
  // A slow or silent client must not hold a thread forever.
  timeval timeout{30, 0};
  setsockopt(client_fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  std::unique_ptr<SSL, decltype(&SSL_free)> ssl(SSL_new(ctx_), &SSL_free);
  SSL_set_fd(ssl.get(), client_fd);
  if (SSL_accept(ssl.get()) != 1) {
    log::Debug("https handshake failed", {{"error", OpenSslError()}});
    return;
  }
  std::string cert_header;
  if (!options_.relay_token.empty()) {
    X509* cert = SSL_get1_peer_certificate(ssl.get());
    if (cert != nullptr && SSL_get_verify_result(ssl.get()) == X509_V_OK) {
      cert_header = absl::StrCat(kRelayCertHeader, ": ", options_.relay_token, ".",
                                 absl::WebSafeBase64Escape(SubjectOf(cert)), ".",
                                 absl::WebSafeBase64Escape(CommonNameOf(cert)), "\r\n");
    }
    X509_free(cert);
  }
  RequestRewriter rewriter(std::move(cert_header));
  const int backend = ConnectLoopback(options_.backend_port);
  if (backend < 0) return;
  char buf[16384];
  bool open = true;
  while (open && !stopping_.load()) {
    // Decrypted bytes OpenSSL already holds do not show up in poll().
    if (SSL_pending(ssl.get()) == 0) {
      pollfd fds[2] = {{client_fd, POLLIN, 0}, {backend, POLLIN, 0}};
      const int ready = poll(fds, 2, 200);
      if (ready < 0) break;
      if (ready == 0) continue;
      if (fds[1].revents & (POLLIN | POLLHUP | POLLERR)) {
        const ssize_t n = recv(backend, buf, sizeof(buf), 0);
        if (n <= 0 || SSL_write(ssl.get(), buf, static_cast<int>(n)) <= 0) break;
      }
      if (!(fds[0].revents & (POLLIN | POLLHUP | POLLERR))) continue;
    }
    const int n = SSL_read(ssl.get(), buf, sizeof(buf));
    if (n <= 0) {
      const int err = SSL_get_error(ssl.get(), n);
      open = err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE;
      continue;
    }
    std::string forward;
    open = rewriter.Feed(std::string_view(buf, static_cast<size_t>(n)), &forward) &&
           WriteAll(backend, forward.data(), forward.size());
  }
  SSL_shutdown(ssl.get());
  close(backend);
}

void HttpsRelay::Stop() {
  if (stopping_.exchange(true)) return;
  if (accept_thread_.joinable()) accept_thread_.join();
  if (listen_fd_ >= 0) close(listen_fd_);
  listen_fd_ = -1;
  // Connection threads notice `stopping_` within one poll interval unless
  // blocked on a half-sent TLS record; wait a little for them.
  const absl::Time until = absl::Now() + absl::Seconds(3);
  while (connections_.load() > 0 && absl::Now() < until) absl::SleepFor(absl::Milliseconds(10));
}

HttpsRelay::~HttpsRelay() {
  Stop();
  // A connection thread still running uses the context; then it is left.
  if (connections_.load() == 0 && ctx_ != nullptr) SSL_CTX_free(ctx_);
}

}  // namespace medkoord::gateway
