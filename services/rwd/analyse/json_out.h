#pragma once
// JSON text in the convention of the survival reference files: numbers with
// %.17g (so they read back as the same doubles), NA as null, NaN as "NaN",
// infinities as "Inf" / "-Inf".

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace medkoord::analyse {

using Json = nlohmann::ordered_json;

std::string DumpJson(const Json& value, int indent = 1);

// A number (NaN and infinities kept; they print as strings).
inline Json Num(double v) { return Json(v); }
inline Json Opt(const std::optional<double>& v) { return v ? Json(*v) : Json(nullptr); }
Json NumArray(const std::vector<double>& v);
Json OptArray(const std::vector<std::optional<double>>& v);

}  // namespace medkoord::analyse
