#include "services/gateway/report_page.h"

#include <algorithm>
#include <map>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace medkoord::gateway {
namespace {

using medkoord::assessment::v1::AnnualReport;
using medkoord::assessment::v1::NamedCount;
using medkoord::assessment::v1::ReportSection;

// Colour-blind-safe palette (Okabe-Ito).
constexpr const char* kPalette[] = {"#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442"};

const std::map<std::string, std::string>& Labels() {
  static const auto* labels = new std::map<std::string, std::string>{
      {"recommended", "Anbefalet"},
      {"not_recommended", "Ikke anbefalet"},
      {"not_concluded", "Ikke afsluttet"},
      {"open", "Åben"},
      {"yes", "Ja"},
      {"no", "Nej"},
      {"not_assessed", "Ikke vurderet af Medicinrådet"},
      {"under_assessment", "Under vurdering i Medicinrådet"},
      {"rejected", "Tidligere afvist af Medicinrådet"},
      {"recommended_outside_criteria", "Anbefalet, patienten uden for kriterierne"},
      {"on_label", "On-label"},
      {"off_label", "Off-label"},
      {"unknown", "Ukendt"},
      {"hovedstaden", "Region Hovedstaden"},
      {"midtjylland", "Region Midtjylland"},
      {"syddanmark", "Region Syddanmark"},
      {"sjaelland", "Region Sjælland"},
      {"nordjylland", "Region Nordjylland"},
  };
  return *labels;
}

std::string Label(const std::string& key) {
  auto it = Labels().find(key);
  return it == Labels().end() ? key : it->second;
}

std::string Pct(double p) { return absl::StrFormat("%.0f %%", p); }

// Vertical bars, one per year.
std::string YearBars(const std::string& id, const ReportSection& section) {
  const int n = section.per_year_size();
  if (n == 0) return "<p>Ingen data.</p>";
  int max = 1;
  for (const auto& y : section.per_year()) max = std::max(max, y.count());
  const int w = 640, h = 260, left = 40, bottom = 30, top = 20;
  const double slot = static_cast<double>(w - left - 10) / n;
  std::string svg = absl::StrFormat(
      "<svg id=\"%s\" role=\"img\" viewBox=\"0 0 %d %d\" width=\"%d\" height=\"%d\" "
      "xmlns=\"http://www.w3.org/2000/svg\">",
      id, w, h, w, h);
  absl::StrAppendFormat(&svg, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#444\"/>", left, h - bottom,
                        w - 10, h - bottom);
  for (int i = 0; i < n; ++i) {
    const auto& y = section.per_year(i);
    const double bh = static_cast<double>(h - bottom - top) * y.count() / max;
    const double x = left + i * slot + slot * 0.15;
    absl::StrAppendFormat(&svg,
                          "<rect class=\"bar\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\">"
                          "<title>%d: %d</title></rect>",
                          x, h - bottom - bh, slot * 0.7, bh, kPalette[0], y.year(), y.count());
    absl::StrAppendFormat(&svg, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" text-anchor=\"middle\">%d</text>",
                          x + slot * 0.35, h - bottom - bh - 4, y.count());
    absl::StrAppendFormat(&svg, "<text x=\"%.1f\" y=\"%d\" font-size=\"11\" text-anchor=\"middle\">%d</text>",
                          x + slot * 0.35, h - bottom + 16, y.year());
  }
  svg += "</svg>";
  return svg;
}

// One line per region over the years.
std::string RegionLines(const std::string& id, const AnnualReport& report) {
  std::vector<int> years;
  int max = 1;
  for (const auto& r : report.regions()) {
    for (const auto& y : r.section().per_year()) {
      if (std::find(years.begin(), years.end(), y.year()) == years.end()) years.push_back(y.year());
      max = std::max(max, y.count());
    }
  }
  if (years.empty()) return "<p>Ingen data.</p>";
  std::sort(years.begin(), years.end());
  const int w = 640, h = 300, left = 40, bottom = 30, top = 20, legend = 150;
  const double span = years.size() > 1 ? static_cast<double>(w - left - legend - 10) / (years.size() - 1) : 0;
  auto xy = [&](int year, int count) {
    const size_t i = std::find(years.begin(), years.end(), year) - years.begin();
    return std::make_pair(left + i * span, h - bottom - static_cast<double>(h - bottom - top) * count / max);
  };
  std::string svg = absl::StrFormat(
      "<svg id=\"%s\" role=\"img\" viewBox=\"0 0 %d %d\" width=\"%d\" height=\"%d\" "
      "xmlns=\"http://www.w3.org/2000/svg\">",
      id, w, h, w, h);
  absl::StrAppendFormat(&svg, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#444\"/>", left, h - bottom,
                        w - legend, h - bottom);
  for (size_t i = 0; i < years.size(); ++i) {
    absl::StrAppendFormat(&svg, "<text x=\"%.1f\" y=\"%d\" font-size=\"11\" text-anchor=\"middle\">%d</text>",
                          left + i * span, h - bottom + 16, years[i]);
  }
  int ri = 0;
  for (const auto& r : report.regions()) {
    const char* colour = kPalette[ri % 7];
    std::string points;
    for (const auto& y : r.section().per_year()) {
      auto [x, yy] = xy(y.year(), y.count());
      absl::StrAppendFormat(&points, "%.1f,%.1f ", x, yy);
    }
    absl::StrAppendFormat(&svg,
                          "<polyline class=\"series\" fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"%s\">"
                          "<title>%s</title></polyline>",
                          colour, points, HtmlEscape(Label(r.slug())));
    absl::StrAppendFormat(&svg, "<rect x=\"%d\" y=\"%d\" width=\"12\" height=\"12\" fill=\"%s\"/>", w - legend + 10,
                          top + ri * 20, colour);
    absl::StrAppendFormat(&svg, "<text x=\"%d\" y=\"%d\" font-size=\"12\">%s</text>", w - legend + 28,
                          top + ri * 20 + 11, HtmlEscape(Label(r.slug())));
    ++ri;
  }
  svg += "</svg>";
  return svg;
}

// Horizontal bars of a breakdown, with count and percent.
std::string Breakdown(const std::string& id, const google::protobuf::RepeatedPtrField<NamedCount>& counts) {
  if (counts.empty()) return "<p>Ingen data.</p>";
  int max = 1;
  for (const auto& c : counts) max = std::max(max, c.count());
  const int row = 28, w = 640, label_w = 300, h = row * counts.size() + 10;
  std::string svg = absl::StrFormat(
      "<svg id=\"%s\" role=\"img\" viewBox=\"0 0 %d %d\" width=\"%d\" height=\"%d\" "
      "xmlns=\"http://www.w3.org/2000/svg\">",
      id, w, h, w, h);
  int i = 0;
  for (const auto& c : counts) {
    const double bw = static_cast<double>(w - label_w - 110) * c.count() / max;
    const int y = 5 + i * row;
    absl::StrAppendFormat(&svg, "<text x=\"0\" y=\"%d\" font-size=\"12\">%s</text>", y + 16,
                          HtmlEscape(Label(c.name())));
    absl::StrAppendFormat(&svg,
                          "<rect class=\"bar\" x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"20\" fill=\"%s\">"
                          "<title>%s: %d</title></rect>",
                          label_w, y, bw, kPalette[i % 7], HtmlEscape(Label(c.name())), c.count());
    absl::StrAppendFormat(&svg, "<text x=\"%.1f\" y=\"%d\" font-size=\"12\">%d (%s)</text>", label_w + bw + 6,
                          y + 15, c.count(), Pct(c.percent()));
    ++i;
  }
  svg += "</svg>";
  return svg;
}

std::string Figure(int number, const std::string& title, const std::string& chart) {
  return absl::StrCat("<figure id=\"figure-", number, "\"><figcaption>Figur ", number, ". ", HtmlEscape(title),
                      "</figcaption>", chart, "</figure>\n");
}

std::string CountList(const google::protobuf::RepeatedPtrField<NamedCount>& counts) {
  std::string out = "<ol>";
  for (const auto& c : counts) {
    absl::StrAppend(&out, "<li>", HtmlEscape(c.name()), ": ", c.count(), " (", Pct(c.percent()), ")</li>");
  }
  return out + "</ol>";
}

constexpr char kStyle[] =
    "body{font-family:system-ui,sans-serif;max-width:760px;margin:2em auto;color:#222}"
    "figure{margin:2em 0}figcaption{font-weight:600;margin-bottom:.5em}"
    "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}"
    "td.n{text-align:right}.source{color:#555;font-size:.9em}";

}  // namespace

std::string RenderMessagePage(const std::string& title, const std::string& message) {
  return absl::StrCat("<!doctype html><html lang=\"da\"><head><meta charset=\"utf-8\"><title>", HtmlEscape(title),
                      "</title><style>", kStyle, "</style></head><body><h1>", HtmlEscape(title), "</h1><p>",
                      HtmlEscape(message), "</p></body></html>\n");
}

std::string RenderAnnualReportHtml(const AnnualReport& report) {
  const ReportSection& n = report.national();
  std::string html = absl::StrCat(
      "<!doctype html><html lang=\"da\"><head><meta charset=\"utf-8\"><title>Enkeltansøgninger ", report.year(),
      "</title><style>", kStyle, "</style></head><body>\n<h1>Enkeltansøgninger ", report.year(), "</h1>\n");
  if (report.has_data_source_date()) {
    const auto& d = report.data_source_date();
    absl::StrAppend(&html, "<p class=\"source\" id=\"data-source\">Datakilde: FODA, data udtrukket d. ", d.day(), "/",
                    d.month(), "-", d.year(), "</p>\n");
  }
  absl::StrAppend(&html, "<p id=\"total\">I ", report.year(), " blev der registreret <strong>", n.total(),
                  "</strong> enkeltansøgninger.</p>\n");
  absl::StrAppend(&html, Figure(1, "Antal enkeltansøgninger pr. år", YearBars("chart-1", n)));
  absl::StrAppend(&html, Figure(2, "Antal enkeltansøgninger pr. år fordelt på regioner", RegionLines("chart-2", report)));
  absl::StrAppend(&html, Figure(3, "Udfald af enkeltansøgningerne", Breakdown("chart-3", n.outcome())));
  absl::StrAppend(&html, Figure(4, "Andel med kræft som hovedindikation", Breakdown("chart-4", n.cancer())));
  if (!n.top_indications().empty()) {
    absl::StrAppend(&html, "<h2>Hyppigste indikationer</h2>", CountList(n.top_indications()));
  }
  if (!n.top_non_cancer_indications().empty()) {
    absl::StrAppend(&html, "<h2>Hyppigste indikationer uden for kræft</h2>", CountList(n.top_non_cancer_indications()));
  }
  absl::StrAppend(&html, "<h2 id=\"table-1\">Tabel 1. De fem hyppigste lægemidler</h2><table><tr><th>Lægemiddel</th>"
                         "<th>Antal</th><th>Andel</th></tr>");
  for (const auto& d : n.top_drugs()) {
    absl::StrAppend(&html, "<tr><td>", HtmlEscape(d.name()), "</td><td class=\"n\">", d.count(), "</td><td class=\"n\">",
                    Pct(d.percent()), "</td></tr>");
  }
  absl::StrAppend(&html, "</table>\n");
  absl::StrAppend(&html, Figure(5, "Markedsført i Danmark ved ansøgning", Breakdown("chart-5", n.marketed_dk())));
  absl::StrAppend(&html, Figure(6, "Medicinrådets status ved ansøgning", Breakdown("chart-6", n.medicinraadet_status())));
  absl::StrAppend(&html, Figure(7, "EMA-status ved ansøgning", Breakdown("chart-7", n.ema_status())));
  if (!n.region().empty()) {
    absl::StrAppend(&html, "<h2>Fordeling på regioner</h2>", Breakdown("chart-regions", n.region()));
  }
  absl::StrAppend(&html, "</body></html>\n");
  return html;
}

}  // namespace medkoord::gateway
