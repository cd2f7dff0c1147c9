#include "services/rwd/analyse/json_out.h"

#include <cmath>
#include <cstdio>

namespace medkoord::analyse {
namespace {

void AppendNumber(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "\"NaN\"";
  } else if (std::isinf(v)) {
    out += v > 0 ? "\"Inf\"" : "\"-Inf\"";
  } else {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.17g", v);
    out += buf;
  }
}

void Dump(const Json& v, std::string& out, int indent, int depth) {
  auto newline = [&](int d) {
    if (indent <= 0) return;
    out += '\n';
    out.append(static_cast<size_t>(d * indent), ' ');
  };
  switch (v.type()) {
    case Json::value_t::null:
      out += "null";
      break;
    case Json::value_t::boolean:
      out += v.get<bool>() ? "true" : "false";
      break;
    case Json::value_t::number_integer:
      out += std::to_string(v.get<int64_t>());
      break;
    case Json::value_t::number_unsigned:
      out += std::to_string(v.get<uint64_t>());
      break;
    case Json::value_t::number_float:
      AppendNumber(out, v.get<double>());
      break;
    case Json::value_t::string:
      out += Json(v.get<std::string>()).dump();
      break;
    case Json::value_t::array: {
      // Arrays of scalars stay on one line: curves have hundreds of points.
      bool scalars = true;
      for (const auto& e : v) scalars = scalars && !e.is_structured();
      out += '[';
      bool first = true;
      for (const auto& e : v) {
        if (!first) out += scalars ? "," : ",";
        if (!scalars) newline(depth + 1);
        Dump(e, out, indent, depth + 1);
        first = false;
      }
      if (!scalars && !v.empty()) newline(depth);
      out += ']';
      break;
    }
    case Json::value_t::object: {
      out += '{';
      bool first = true;
      for (auto it = v.begin(); it != v.end(); ++it) {
        if (!first) out += ',';
        newline(depth + 1);
        out += Json(it.key()).dump();
        out += indent > 0 ? ": " : ":";
        Dump(it.value(), out, indent, depth + 1);
        first = false;
      }
      if (!v.empty()) newline(depth);
      out += '}';
      break;
    }
    default:
      out += "null";
  }
}

}  // namespace

std::string DumpJson(const Json& value, int indent) {
  std::string out;
  Dump(value, out, indent, 0);
  return out;
}

Json NumArray(const std::vector<double>& v) {
  Json a = Json::array();
  for (double x : v) a.push_back(x);
  return a;
}

Json OptArray(const std::vector<std::optional<double>>& v) {
  Json a = Json::array();
  for (const auto& x : v) a.push_back(Opt(x));
  return a;
}

}  // namespace medkoord::analyse
