#include "services/gateway/api_key.h"

#include <openssl/rand.h>
#include <openssl/sha.h>

#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace medkoord::gateway {
namespace {

std::string RandomBytes(size_t n) {
  std::string out(n, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1) {
    // Without a working CSPRNG no key may be issued at all.
    std::abort();
  }
  return out;
}

// Debian's Abseil has its own string_view, distinct from std::string_view.
absl::string_view A(std::string_view s) { return absl::string_view(s.data(), s.size()); }

std::optional<absl::string_view> AfterScheme(std::string_view raw, absl::string_view scheme) {
  absl::string_view value = absl::StripAsciiWhitespace(A(raw));
  if (value.size() <= scheme.size() || !absl::StartsWithIgnoreCase(value, scheme) || value[scheme.size()] != ' ') {
    return std::nullopt;
  }
  return absl::StripAsciiWhitespace(value.substr(scheme.size() + 1));
}

}  // namespace

std::string GenerateApiKey() { return absl::StrCat(A(kApiKeyPrefix), absl::WebSafeBase64Escape(RandomBytes(32))); }

std::string GenerateKeyId() { return absl::StrCat("k-", absl::BytesToHexString(RandomBytes(6))); }

std::string HashApiKey(std::string_view key) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(key.data()), key.size(), digest);
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(digest), sizeof(digest)));
}

std::string KeyPrefixOf(std::string_view key) { return std::string(key.substr(0, kApiKeyPrefix.size() + 6)); }

std::optional<std::string> BearerToken(std::string_view authorization) {
  auto token = AfterScheme(authorization, "Bearer");
  if (!token || token->empty()) return std::nullopt;
  return std::string(*token);
}

std::optional<std::string> BasicAuthKey(std::string_view authorization) {
  auto encoded = AfterScheme(authorization, "Basic");
  if (!encoded) return std::nullopt;
  std::string decoded;
  if (!absl::Base64Unescape(*encoded, &decoded)) return std::nullopt;
  const size_t colon = decoded.find(':');
  if (colon == std::string::npos) return std::nullopt;
  std::string password = decoded.substr(colon + 1);
  if (password.empty()) password = decoded.substr(0, colon);
  if (password.empty()) return std::nullopt;
  return password;
}

}  // namespace medkoord::gateway
