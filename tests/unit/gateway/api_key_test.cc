#include "services/gateway/api_key.h"

#include <set>

#include <gtest/gtest.h>

#include "absl/strings/escaping.h"

namespace medkoord::gateway {
namespace {

TEST(ApiKeyTest, KeysAreLongRandomAndPrefixed) {
  std::set<std::string> seen;
  for (int i = 0; i < 100; ++i) {
    const std::string key = GenerateApiKey();
    EXPECT_EQ(key.rfind("mk_", 0), 0u);
    EXPECT_EQ(key.size(), 3u + 43u);  // 256 bits in base64url
    EXPECT_TRUE(seen.insert(key).second);
  }
}

TEST(ApiKeyTest, HashIsSha256Hex) {
  // SHA-256("abc"), FIPS 180-2 appendix B.1.
  EXPECT_EQ(HashApiKey("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  const std::string key = GenerateApiKey();
  EXPECT_EQ(HashApiKey(key), HashApiKey(key));
  EXPECT_NE(HashApiKey(key), HashApiKey(key + "x"));
  EXPECT_EQ(HashApiKey(key).find(key), std::string::npos);
}

TEST(ApiKeyTest, KeyPrefixIsShort) {
  EXPECT_EQ(KeyPrefixOf("mk_abcdefghijk"), "mk_abcdef");
}

TEST(ApiKeyTest, BearerToken) {
  EXPECT_EQ(BearerToken("Bearer mk_x"), "mk_x");
  EXPECT_EQ(BearerToken("bearer   mk_x  "), "mk_x");
  EXPECT_EQ(BearerToken("Basic abc"), std::nullopt);
  EXPECT_EQ(BearerToken("Bearer"), std::nullopt);
  EXPECT_EQ(BearerToken("Bearer "), std::nullopt);
  EXPECT_EQ(BearerToken(""), std::nullopt);
}

TEST(ApiKeyTest, BasicAuthTakesThePassword) {
  EXPECT_EQ(BasicAuthKey("Basic " + absl::Base64Escape("anyone:mk_secret")), "mk_secret");
  // curl -u KEY: sends the key as the user name.
  EXPECT_EQ(BasicAuthKey("Basic " + absl::Base64Escape("mk_secret:")), "mk_secret");
  EXPECT_EQ(BasicAuthKey("Basic " + absl::Base64Escape(":")), std::nullopt);
  EXPECT_EQ(BasicAuthKey("Basic !!!"), std::nullopt);
  EXPECT_EQ(BasicAuthKey("Bearer mk_secret"), std::nullopt);
}

}  // namespace
}  // namespace medkoord::gateway
