#pragma once
// The annual report ("Enkeltansøgninger <year>") as a self-contained HTML page
// with inline SVG charts of DOMAIN.md figures 1-7, table 1 and the text
// figures: what the Forum publishes, rendered for a browser. Pure: no I/O.

#include <string>

#include "common/html.h"
#include "medkoord/assessment/v1/assessment.pb.h"

namespace medkoord::gateway {

std::string RenderAnnualReportHtml(const medkoord::assessment::v1::AnnualReport& report);

// A minimal page for errors and the index, with the text escaped.
std::string RenderMessagePage(const std::string& title, const std::string& message);

}  // namespace medkoord::gateway
