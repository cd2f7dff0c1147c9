#pragma once
// The published form of a stored analysis: a Kaplan–Meier plot as SVG (curves
// with 95 % confidence bands and a numbers-at-risk table) and a self-contained
// HTML report. Danish registry rules forbid publishing small counts, so every
// count from 1 to threshold-1 (patients, events, numbers at risk, adverse
// events, and percentages derived from them) is shown as "<threshold". Pure.

#include <string>

#include "medkoord/rwd/v1/rwd.pb.h"
#include "nlohmann/json.hpp"

namespace medkoord::rwd {

// "<5" for 1..4 with threshold 5; the number otherwise.
std::string MaskCount(int64_t count, int threshold);

// The KM plot of the analysis (per group when grouped, else overall).
std::string KaplanMeierSvg(const nlohmann::ordered_json& result, int threshold);

// The whole analysis as one HTML page, the SVG inline.
std::string AnalysisHtml(const v1::Analysis& analysis, const v1::Protocol& protocol,
                         const nlohmann::ordered_json& result, int threshold);

}  // namespace medkoord::rwd
