#include "common/http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace medkoord {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

std::string Fetch(int port, const std::string& request) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) return "";
  send(fd, request.data(), request.size(), 0);
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0) out.append(buf, static_cast<size_t>(n));
  close(fd);
  return out;
}

TEST(HttpServerTest, RoutesParsesQueryHeadersAndBody) {
  auto server = HttpServer::Start("127.0.0.1:0");
  ASSERT_TRUE(server.ok()) << server.status();
  (*server)->Handle("/echo", [](const HttpRequest& r) {
    HttpResponse resp;
    resp.body = r.method + "|" + r.query.at("year") + "|" + r.headers.at("x-thing") + "|" + r.body;
    return resp;
  });
  const int port = (*server)->port();
  ASSERT_GT(port, 0);
  std::string resp = Fetch(port,
                           "POST /echo?year=2024&q=a%20b HTTP/1.1\r\nHost: x\r\nX-Thing: yes\r\n"
                           "Content-Length: 5\r\n\r\nhello");
  EXPECT_THAT(resp, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(resp, HasSubstr("\r\n\r\nPOST|2024|yes|hello"));
  EXPECT_THAT(Fetch(port, "GET /nope HTTP/1.1\r\n\r\n"), StartsWith("HTTP/1.1 404"));
  EXPECT_THAT(Fetch(port, "garbage\r\n\r\n"), StartsWith("HTTP/1.1 400"));
  EXPECT_THAT(Fetch(port, "POST /echo HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n"), StartsWith("HTTP/1.1 413"));
}

}  // namespace
}  // namespace medkoord
