#pragma once
// Escaping for the HTML pages and SVG charts that services render.

#include <string>
#include <string_view>

namespace medkoord {

// Escapes & < > " ' so that text is safe in element content and in quoted
// attribute values.
std::string HtmlEscape(std::string_view text);

}  // namespace medkoord
