#pragma once
// String building for the domain code. Debian 12's Abseil has its own
// absl::string_view (not std::string_view), so absl::StrCat does not take the
// std::string_view this code (and common/csv) uses; these helpers do.

#include <string>
#include <string_view>
#include <type_traits>

namespace medkoord::intake {

template <typename T>
void AppendPart(std::string& out, const T& part) {
  if constexpr (std::is_integral_v<T>) {
    out += std::to_string(part);
  } else {
    out.append(std::string_view(part));
  }
}

template <typename... T>
std::string Cat(const T&... parts) {
  std::string out;
  (AppendPart(out, parts), ...);
  return out;
}

template <typename Container>
std::string Join(const Container& parts, std::string_view separator) {
  std::string out;
  for (const auto& part : parts) {
    if (!out.empty()) out.append(separator);
    out.append(std::string_view(part));
  }
  return out;
}

}  // namespace medkoord::intake
