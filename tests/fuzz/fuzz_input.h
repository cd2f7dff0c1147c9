#pragma once
// Helpers shared by the fuzz targets: cut one fuzz input into the chunks a
// gRPC client stream would deliver, and a check that aborts (so libFuzzer
// records the input) when a property of the code under test does not hold.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <vector>

namespace medkoord::fuzz {

// Aborts with a message naming the property; libFuzzer saves the input.
#define FUZZ_CHECK(cond)                                                          \
  do {                                                                            \
    if (!(cond)) {                                                                \
      std::fprintf(stderr, "%s:%d: property failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                               \
    }                                                                             \
  } while (0)

// The first byte of the input chooses the chunk size (1..64 bytes, or the
// whole rest when 0), so the fuzzer explores chunk boundaries inside quotes,
// CRLF pairs, multi-byte UTF-8 and the byte-order mark.
struct Chunked {
  size_t chunk_size = 0;  // 0: one chunk
  std::string_view body;
};

inline Chunked SplitControlByte(const uint8_t* data, size_t size) {
  if (size == 0) return {};
  return {static_cast<size_t>(data[0] % 65), std::string_view(reinterpret_cast<const char*>(data) + 1, size - 1)};
}

inline std::vector<std::string_view> Chunks(std::string_view body, size_t chunk_size) {
  std::vector<std::string_view> out;
  if (chunk_size == 0) {
    out.push_back(body);
    return out;
  }
  for (size_t i = 0; i < body.size(); i += chunk_size) out.push_back(body.substr(i, chunk_size));
  return out;
}

}  // namespace medkoord::fuzz
