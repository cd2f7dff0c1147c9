#pragma once
// Opaque List page tokens (AIP-158): base64url of a PageCursor holding the
// keyset of the last item and a hash of the request's filters. A token that
// does not decode, or was made for other filters, is INVALID_ARGUMENT naming
// `page_token`.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace medkoord {

struct PageRequest {
  int page_size = 0;           // clamped to [1, max], 0 -> default
  std::vector<std::string> after;  // keyset to start after; empty: first page
};

// Fingerprint of the filters of a List request (stable across processes).
uint64_t FilterHash(std::string_view canonical_filters);

std::string EncodePageToken(const std::vector<std::string>& keys, uint64_t filter_hash);
absl::StatusOr<std::vector<std::string>> DecodePageToken(std::string_view token, uint64_t filter_hash);

// Validates page_size (negative -> INVALID_ARGUMENT) and the token.
absl::StatusOr<PageRequest> ParsePageRequest(int32_t page_size, std::string_view page_token,
                                             uint64_t filter_hash, int default_size = 50,
                                             int max_size = 1000);

}  // namespace medkoord
