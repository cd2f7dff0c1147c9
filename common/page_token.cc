#include "common/page_token.h"

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "medkoord/common/v1/page.pb.h"

namespace medkoord {

uint64_t FilterHash(std::string_view canonical_filters) {
  // FNV-1a 64: stable across processes and builds, unlike std::hash.
  uint64_t h = 14695981039346656037ULL;
  for (unsigned char c : canonical_filters) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

std::string EncodePageToken(const std::vector<std::string>& keys, uint64_t filter_hash) {
  medkoord::common::v1::PageCursor cursor;
  for (const auto& k : keys) cursor.add_keys(k);
  cursor.set_filter_hash(filter_hash);
  return absl::WebSafeBase64Escape(cursor.SerializeAsString());
}

absl::StatusOr<std::vector<std::string>> DecodePageToken(std::string_view token, uint64_t filter_hash) {
  constexpr size_t kMaxTokenBytes = 4096;
  if (token.size() > kMaxTokenBytes) return InvalidField("page_token", "is too long");
  std::string raw;
  medkoord::common::v1::PageCursor cursor;
  if (!absl::WebSafeBase64Unescape(absl::string_view(token.data(), token.size()), &raw) || !cursor.ParseFromString(raw) || cursor.keys_size() == 0) {
    return InvalidField("page_token", "is not a token this service issued");
  }
  if (cursor.filter_hash() != filter_hash) {
    return InvalidField("page_token", "was issued for a request with other filters");
  }
  return std::vector<std::string>(cursor.keys().begin(), cursor.keys().end());
}

absl::StatusOr<PageRequest> ParsePageRequest(int32_t page_size, std::string_view page_token, uint64_t filter_hash,
                                             int default_size, int max_size) {
  FieldViolations v;
  if (page_size < 0) v.Add("page_size", "must not be negative");
  PageRequest req;
  req.page_size = page_size == 0 ? default_size : std::min<int>(page_size, max_size);
  if (!page_token.empty()) {
    auto keys = DecodePageToken(page_token, filter_hash);
    if (!keys.ok()) {
      for (auto& [f, d] : FieldViolationsOf(keys.status())) v.Add(f, d);
    } else {
      req.after = *std::move(keys);
    }
  }
  RETURN_IF_ERROR(v.ToStatus());
  return req;
}

}  // namespace medkoord
