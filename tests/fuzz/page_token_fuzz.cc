// Fuzzes the List page-token decoder (common/page_token.h), which decodes a
// client-supplied string: no crash, INVALID_ARGUMENT for anything it does
// not accept, and every encoded keyset decodes back to itself (and only for
// the filter hash it was made for). Reuses the UTF-8 check of common/csv.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "common/csv/reader.h"
#include "common/page_token.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  uint64_t hash = 0;
  if (size >= 8) std::memcpy(&hash, data, 8);

  auto decoded = medkoord::DecodePageToken(text, hash);
  if (!decoded.ok()) FUZZ_CHECK(decoded.status().code() == absl::StatusCode::kInvalidArgument);
  auto request = medkoord::ParsePageRequest(size > 0 ? static_cast<int8_t>(data[0]) * 20 : 0, text, hash);
  if (request.ok()) {
    FUZZ_CHECK(request->page_size >= 1 && request->page_size <= 1000);
  } else {
    FUZZ_CHECK(request.status().code() == absl::StatusCode::kInvalidArgument);
  }

  // Keys from the input, split at NUL bytes: encode, then decode.
  std::vector<std::string> keys;
  std::string_view rest = text;
  while (!rest.empty()) {
    size_t nul = rest.find('\0');
    keys.emplace_back(rest.substr(0, nul));
    if (nul == std::string_view::npos) break;
    rest.remove_prefix(nul + 1);
  }
  // Keys are database text (valid UTF-8, as proto3 strings must be); a
  // cursor needs at least one key.
  if (keys.empty()) return 0;
  for (const std::string& k : keys) {
    if (!medkoord::csv::IsValidUtf8(k)) return 0;
  }
  const std::string token = medkoord::EncodePageToken(keys, hash);
  // Tokens longer than the decoder's limit are refused by design.
  if (token.size() > 4096) return 0;
  auto back = medkoord::DecodePageToken(token, hash);
  FUZZ_CHECK(back.ok());
  FUZZ_CHECK(*back == keys);
  FUZZ_CHECK(!medkoord::DecodePageToken(token, hash ^ 1).ok());
  FUZZ_CHECK(medkoord::FilterHash(text) == medkoord::FilterHash(std::string(text)));
  return 0;
}
