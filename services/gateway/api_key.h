#pragma once
// API keys: 256 random bits, shown to the admin once, stored only as their
// SHA-256. A plain (unsalted, fast) hash is enough here because the key has
// full entropy: there is nothing to guess, unlike a password.

#include <optional>
#include <string>
#include <string_view>

namespace medkoord::gateway {

inline constexpr std::string_view kApiKeyPrefix = "mk_";

// "mk_" + 43 base64url characters of 32 bytes from the OS's CSPRNG.
std::string GenerateApiKey();
// A short random identifier for the key's resource name ("k-3f2a9c01d4e5").
std::string GenerateKeyId();

// Lower-case hex SHA-256 of the key.
std::string HashApiKey(std::string_view key);

// The first characters of a key, kept to let people recognise it in lists.
std::string KeyPrefixOf(std::string_view key);

// The key from an `authorization` value "Bearer <key>" (scheme case-insensitive).
std::optional<std::string> BearerToken(std::string_view authorization);
// The password from an HTTP "Basic base64(user:password)" value; the key is the
// password, the user name is ignored. A bare key as user with no password is
// accepted too, as curl -u KEY: sends it that way round.
std::optional<std::string> BasicAuthKey(std::string_view authorization);

}  // namespace medkoord::gateway
