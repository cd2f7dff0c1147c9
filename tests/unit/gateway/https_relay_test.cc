#include "services/gateway/https_relay.h"

#include <gtest/gtest.h>

namespace medkoord::gateway {
namespace {

TEST(RequestRewriterTest, AddsTheHeaderToEveryRequestAndDropsForgedOnes) {
  RequestRewriter r("x-medkoord-relay-cert: t.s.c\r\n");
  std::string out;
  // Two pipelined requests, split at awkward places, one with a body and a
  // forged header in odd case.
  const std::string in =
      "POST /a HTTP/1.1\r\nHost: h\r\nX-Medkoord-Relay-Cert: forged\r\nContent-Length: 5\r\n\r\nhello"
      "GET /b HTTP/1.1\r\nHost: h\r\n\r\n";
  for (size_t i = 0; i < in.size(); i += 7) ASSERT_TRUE(r.Feed(in.substr(i, 7), &out));
  EXPECT_EQ(out,
            "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nx-medkoord-relay-cert: t.s.c\r\n\r\nhello"
            "GET /b HTTP/1.1\r\nHost: h\r\nx-medkoord-relay-cert: t.s.c\r\n\r\n");
}

TEST(RequestRewriterTest, WithoutACertificateOnlyStripsAndRefusesWhatItCannotFrame) {
  RequestRewriter r("");
  std::string out;
  ASSERT_TRUE(r.Feed("GET / HTTP/1.1\r\nx-medkoord-relay-cert: forged\r\n\r\n", &out));
  EXPECT_EQ(out, "GET / HTTP/1.1\r\n\r\n");
  RequestRewriter chunked("");
  EXPECT_FALSE(chunked.Feed("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", &out));
  RequestRewriter huge("");
  EXPECT_FALSE(huge.Feed("GET / HTTP/1.1\r\nX: " + std::string(70000, 'a'), &out));
}

}  // namespace
}  // namespace medkoord::gateway
