#include "services/rwd/report.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/html.h"
#include "services/rwd/analysis.h"

namespace medkoord::rwd {
namespace {

using OJson = nlohmann::ordered_json;

std::string Fixed(const OJson& v, int digits = 2) {
  if (!v.is_number()) return "NA";
  return absl::StrFormat("%.*f", digits, v.get<double>());
}

std::string FixedOpt(std::optional<double> v, int digits = 2) {
  return v ? absl::StrFormat("%.*f", digits, *v) : "NA";
}

std::string MonthsOf(const OJson& days) {
  if (!days.is_number()) return "NA";
  return absl::StrFormat("%.1f", days.get<double>() / kDaysPerMonth);
}

std::string PValue(const OJson& p) {
  if (!p.is_number()) return "NA";
  double v = p.get<double>();
  return v < 0.0001 ? "&lt;0.0001" : absl::StrFormat("%.4f", v);
}

int64_t Count(const OJson& v) { return v.is_number() ? v.get<int64_t>() : 0; }

// A masked count's percentage would give the count away.
std::string MaskedPercent(int64_t count, const OJson& percent, int threshold) {
  if (count > 0 && count < threshold) return "masked";
  return absl::StrCat(Fixed(percent, 1), " %");
}

const OJson* Curves(const OJson& result) {
  if (!result.contains("km")) return nullptr;
  const OJson& km = result["km"];
  if (km.contains("by_group")) return &km["by_group"]["curves"];
  if (km.contains("overall")) return &km["overall"]["curves"];
  return nullptr;
}

// Patients still at risk at `t`: the number at risk at the first time >= t.
int64_t AtRisk(const OJson& curve, double t) {
  const OJson& time = curve["time"];
  const OJson& n_risk = curve["n_risk"];
  for (size_t i = 0; i < time.size(); ++i) {
    if (time[i].get<double>() >= t) return static_cast<int64_t>(n_risk[i].get<double>());
  }
  return 0;
}

constexpr const char* kColours[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e",
                                    "#8c564b"};

}  // namespace

std::string MaskCount(int64_t count, int threshold) {
  if (count > 0 && count < threshold) return absl::StrCat("&lt;", threshold);
  return absl::StrCat(count);
}

std::string KaplanMeierSvg(const OJson& result, int threshold) {
  const OJson* curves = Curves(result);
  // The left margin holds the arm labels of the numbers-at-risk table.
  const double width = 760, plot_h = 360, left = 150, top = 20, right = 20;
  const double plot_w = width - left - right;
  int n_curves = curves ? static_cast<int>(curves->size()) : 0;
  const double table_h = 30 + 18.0 * n_curves;
  const double height = top + plot_h + 40 + table_h;

  double max_days = 0;
  if (curves) {
    for (const auto& [label, c] : curves->items()) {
      for (const auto& t : c["time"]) max_days = std::max(max_days, t.get<double>());
    }
  }
  double max_months = std::max(1.0, std::ceil(max_days / kDaysPerMonth / 6.0) * 6.0);
  auto x = [&](double days) { return left + plot_w * (days / kDaysPerMonth) / max_months; };
  auto y = [&](double s) { return top + plot_h * (1.0 - s); };

  std::string svg = absl::StrFormat(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
      "viewBox=\"0 0 %.0f %.0f\" font-family=\"sans-serif\" font-size=\"11\">\n",
      width, height, width, height);
  absl::StrAppend(&svg, "<title>Kaplan-Meier estimate with 95 % confidence bands</title>\n");
  // Axes and grid.
  absl::StrAppendFormat(&svg,
                        "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" "
                        "stroke=\"#444\"/>\n",
                        left, top, plot_w, plot_h);
  for (int i = 0; i <= 10; i += 2) {
    double s = i / 10.0;
    absl::StrAppendFormat(&svg,
                          "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>"
                          "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%.1f</text>\n",
                          left, left + plot_w, y(s), y(s), left - 6, y(s) + 4, s);
  }
  std::vector<double> ticks;
  for (double m = 0; m <= max_months + 1e-9; m += 6) ticks.push_back(m);
  for (double m : ticks) {
    double px = left + plot_w * m / max_months;
    absl::StrAppendFormat(&svg,
                          "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%.0f</text>\n", px,
                          top + plot_h + 14, m);
  }
  absl::StrAppendFormat(&svg, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">months</text>\n",
                        left + plot_w / 2, top + plot_h + 30);

  // Curves: a step function from (0, 1), and its confidence band.
  int k = 0;
  double table_top = top + plot_h + 50;
  absl::StrAppendFormat(&svg, "<text x=\"4\" y=\"%.1f\" font-weight=\"bold\">Number at risk</text>\n",
                        table_top);
  if (curves) {
    for (const auto& [label, c] : curves->items()) {
      const char* colour = kColours[k % 6];
      const OJson& time = c["time"];
      const OJson& surv = c["surv"];
      const OJson& lower = c["lower"];
      const OJson& upper = c["upper"];
      std::string line = absl::StrFormat("M%.2f,%.2f", x(0), y(1));
      std::string band_upper = absl::StrFormat("M%.2f,%.2f", x(0), y(1));
      std::string band_lower;
      double prev_s = 1, prev_lo = 1, prev_hi = 1;
      std::vector<std::pair<double, double>> lows = {{0, 1}};
      for (size_t i = 0; i < time.size(); ++i) {
        double t = time[i].get<double>();
        double s = surv[i].get<double>();
        double lo = lower[i].is_number() ? lower[i].get<double>() : prev_lo;
        double hi = upper[i].is_number() ? upper[i].get<double>() : prev_hi;
        absl::StrAppendFormat(&line, " L%.2f,%.2f L%.2f,%.2f", x(t), y(prev_s), x(t), y(s));
        absl::StrAppendFormat(&band_upper, " L%.2f,%.2f L%.2f,%.2f", x(t), y(prev_hi), x(t), y(hi));
        lows.push_back({t, prev_lo});
        lows.push_back({t, lo});
        prev_s = s;
        prev_lo = lo;
        prev_hi = hi;
      }
      double end = time.empty() ? 0 : time.back().get<double>();
      absl::StrAppendFormat(&line, " L%.2f,%.2f", x(end), y(prev_s));
      for (auto it = lows.rbegin(); it != lows.rend(); ++it) {
        absl::StrAppendFormat(&band_lower, " L%.2f,%.2f", x(it->first), y(it->second));
      }
      absl::StrAppendFormat(&svg,
                            "<path d=\"%s%s Z\" fill=\"%s\" fill-opacity=\"0.15\" stroke=\"none\"/>\n"
                            "<path d=\"%s\" fill=\"none\" stroke=\"%s\" stroke-width=\"1.8\"/>\n",
                            band_upper, band_lower, colour, line, colour);
      // Legend and the numbers-at-risk row, masked below the threshold.
      absl::StrAppendFormat(&svg,
                            "<rect x=\"%.1f\" y=\"%.1f\" width=\"12\" height=\"3\" fill=\"%s\"/>"
                            "<text x=\"%.1f\" y=\"%.1f\">%s</text>\n",
                            left + plot_w - 200, top + 14 + 16.0 * k, colour, left + plot_w - 184,
                            top + 18 + 16.0 * k, HtmlEscape(label));
      double row_y = table_top + 18 + 18.0 * k;
      absl::StrAppendFormat(&svg, "<text x=\"4\" y=\"%.1f\" fill=\"%s\">%s</text>\n", row_y, colour,
                            HtmlEscape(label.substr(label.find('=') == std::string::npos
                                                    ? 0
                                                    : label.find('=') + 1)));
      for (double m : ticks) {
        double px = left + plot_w * m / max_months;
        absl::StrAppendFormat(&svg, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n",
                              px, row_y, MaskCount(AtRisk(c, m * kDaysPerMonth), threshold));
      }
      ++k;
    }
  }
  svg += "</svg>\n";
  return svg;
}

std::string AnalysisHtml(const v1::Analysis& analysis, const v1::Protocol& protocol,
                         const OJson& result, int threshold) {
  std::string h;
  absl::StrAppend(&h, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">",
                  "<title>", HtmlEscape(protocol.title()), "</title><style>",
                  "body{font-family:sans-serif;max-width:60em;margin:2em auto}",
                  "table{border-collapse:collapse;margin:1em 0}",
                  "td,th{border:1px solid #bbb;padding:.25em .6em;text-align:right}",
                  "th:first-child,td:first-child{text-align:left}</style></head><body>\n");
  absl::StrAppend(&h, "<h1>", HtmlEscape(protocol.title()), "</h1>\n<p>",
                  HtmlEscape(analysis.name()), " of ", HtmlEscape(analysis.cohort()), ", endpoint ",
                  HtmlEscape(v1::Endpoint_Name(analysis.spec().endpoint())),
                  ". Times in months (days / 30.4375). Counts from 1 to ", threshold - 1,
                  " are shown as &lt;", threshold, ".</p>\n");
  absl::StrAppend(&h, "<p>Medicine: ", HtmlEscape(protocol.regimen()), "<br>Population: ",
                  HtmlEscape(protocol.population()), "</p>\n");

  // Kaplan–Meier summary per arm.
  if (const OJson* curves = Curves(result)) {
    absl::StrAppend(&h, "<h2>Kaplan–Meier</h2>\n", KaplanMeierSvg(result, threshold),
                    "<table><tr><th>group</th><th>patients</th><th>events</th>",
                    "<th>median (95 % CI)</th><th>restricted mean</th></tr>\n");
    for (const auto& [label, c] : curves->items()) {
      absl::StrAppend(&h, "<tr><td>", HtmlEscape(label), "</td><td>",
                      MaskCount(Count(c["records"]), threshold), "</td><td>",
                      MaskCount(Count(c["events"]), threshold), "</td><td>",
                      MonthsOf(c["median"]), " (", MonthsOf(c["median_lcl"]), "–",
                      MonthsOf(c["median_ucl"]), ")</td><td>", MonthsOf(c["rmean"]),
                      "</td></tr>\n");
    }
    absl::StrAppend(&h, "</table>\n");
  }
  for (const char* test : {"survdiff", "survdiff_rho1"}) {
    if (!result.contains(test)) continue;
    const OJson& s = result[test];
    absl::StrAppend(&h, "<p>", test[8] ? "Peto–Peto" : "Log-rank", " test: χ² = ",
                    Fixed(s["chisq"], 3), ", df = ", Fixed(s["df"], 0), ", p = ", PValue(s["p"]),
                    "</p>\n");
  }
  // Cox models.
  if (result.contains("coxph")) {
    for (const auto& [model, fits] : result["coxph"].items()) {
      if (!fits.contains("efron")) continue;
      const OJson& fit = fits["efron"];
      absl::StrAppend(&h, "<h2>Cox model (", HtmlEscape(model), ", Efron ties)</h2>\n<p>n = ",
                      MaskCount(Count(fit["n"]), threshold), ", events = ",
                      MaskCount(Count(fit["nevent"]), threshold),
                      "</p><table><tr><th>term</th><th>HR</th><th>95 % CI</th><th>p</th>"
                      "<th>robust 95 % CI</th></tr>\n");
      if (fit.contains("terms")) {
        for (const auto& [term, t] : fit["terms"].items()) {
          absl::StrAppend(&h, "<tr><td>", HtmlEscape(term), "</td><td>", Fixed(t["hr"]), "</td><td>",
                          Fixed(t["hr_lower"]), "–", Fixed(t["hr_upper"]), "</td><td>",
                          PValue(t["p"]), "</td><td>", Fixed(t["robust_hr_lower"]), "–",
                          Fixed(t["robust_hr_upper"]), "</td></tr>\n");
        }
      }
      absl::StrAppend(&h, "</table>\n");
    }
  }
  // Confounding control.
  if (result.contains("weighted")) {
    const OJson& w = result["weighted"];
    absl::StrAppend(&h, "<h2>Inverse probability of treatment weighting</h2>\n<p>",
                    HtmlEscape(w.value("method", "")), "; propensity model ",
                    HtmlEscape(w.value("ps_formula", "")), "</p>\n");
    if (w.contains("coxph") && w["coxph"].contains("efron")) {
      const OJson& e = w["coxph"]["efron"];
      absl::StrAppend(&h, "<p>Weighted Cox HR ", Fixed(e["hr"]), " (robust 95 % CI ",
                      Fixed(e["robust_hr_lower"]), "–", Fixed(e["robust_hr_upper"]), ")</p>\n");
    }
    if (w.contains("balance")) {
      absl::StrAppend(&h, "<table><tr><th>covariate</th><th>SMD before</th><th>SMD after</th>"
                          "<th>imbalanced after (&gt; 0.1)</th></tr>\n");
      for (const auto& b : w["balance"]) {
        absl::StrAppend(&h, "<tr><td>", HtmlEscape(b.value("term", "")), "</td><td>",
                        Fixed(b["smd_before"], 3), "</td><td>", Fixed(b["smd_after"], 3),
                        "</td><td>", b.value("imbalanced_after", false) ? "yes" : "no",
                        "</td></tr>\n");
      }
      absl::StrAppend(&h, "</table>\n");
    }
  }
  // Safety.
  if (result.contains("safety") && result["safety"].contains("by_group")) {
    absl::StrAppend(&h, "<h2>Adverse events by worst grade</h2>\n<table><tr><th>group</th>"
                        "<th>patients</th>");
    for (int g = 0; g <= 5; ++g) absl::StrAppend(&h, "<th>grade ", g, "</th>");
    absl::StrAppend(&h, "<th>grade ≥ 3</th></tr>\n");
    for (const auto& [arm, a] : result["safety"]["by_group"].items()) {
      absl::StrAppend(&h, "<tr><td>", HtmlEscape(arm), "</td><td>", MaskCount(Count(a["n"]), threshold),
                      "</td>");
      for (size_t g = 0; g < a["count_by_grade"].size(); ++g) {
        int64_t n = Count(a["count_by_grade"][g]);
        absl::StrAppend(&h, "<td>", MaskCount(n, threshold), " (",
                        MaskedPercent(n, a["percent_by_grade"][g], threshold), ")</td>");
      }
      int64_t g3 = Count(a["grade3_plus"]);
      absl::StrAppend(&h, "<td>", MaskCount(g3, threshold), " (",
                      MaskedPercent(g3, a["grade3_plus_percent"], threshold), ")</td></tr>\n");
    }
    absl::StrAppend(&h, "</table>\n");
  }
  // The trial benchmark, side by side.
  if (analysis.benchmarks_size() > 0) {
    absl::StrAppend(&h, "<h2>Compared with the trial</h2>\n<table><tr><th>benchmark</th>"
                        "<th>trial HR (95 % CI)</th><th>RWD model</th><th>RWD HR (95 % CI)</th>"
                        "<th>intervals overlap</th><th>trial medians</th><th>RWD medians</th></tr>\n");
    for (const auto& c : analysis.benchmarks()) {
      const auto& b = c.benchmark();
      auto opt = [](bool has, double v) { return has ? std::optional<double>(v) : std::nullopt; };
      absl::StrAppend(
          &h, "<tr><td>", HtmlEscape(b.trial()), ", ", HtmlEscape(b.population()), ", ",
          HtmlEscape(b.data_cut()), " (", HtmlEscape(b.source()), ")</td><td>",
          FixedOpt(opt(b.has_hazard_ratio(), b.hazard_ratio())), " (",
          FixedOpt(opt(b.has_hr_lower(), b.hr_lower())), "–",
          FixedOpt(opt(b.has_hr_upper(), b.hr_upper())), ")</td><td>", HtmlEscape(c.rwd_model()),
          "</td><td>", FixedOpt(opt(c.has_rwd_hazard_ratio(), c.rwd_hazard_ratio())), " (",
          FixedOpt(opt(c.has_rwd_hr_lower(), c.rwd_hr_lower())), "–",
          FixedOpt(opt(c.has_rwd_hr_upper(), c.rwd_hr_upper())), ")</td><td>",
          c.intervals_overlap() ? "yes" : "no", "</td><td>",
          FixedOpt(opt(b.has_intervention_median_months(), b.intervention_median_months()), 1),
          " vs ",
          FixedOpt(opt(b.has_comparator_median_months(), b.comparator_median_months()), 1),
          "</td><td>",
          FixedOpt(opt(c.has_rwd_intervention_median_months(), c.rwd_intervention_median_months()),
                   1),
          " vs ",
          FixedOpt(opt(c.has_rwd_comparator_median_months(), c.rwd_comparator_median_months()), 1),
          "</td></tr>\n");
    }
    absl::StrAppend(&h, "</table>\n");
  }
  absl::StrAppend(&h, "</body></html>\n");
  return h;
}

}  // namespace medkoord::rwd
