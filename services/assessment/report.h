#pragma once
// The Forum's national annual report ("Enkeltansøgninger <year>", DOMAIN.md
// section 2): pure code over pre-aggregated counts. The store aggregates the
// stored cases with GROUP BY (so a report over a million cases never moves a
// million rows into the process) and this code turns the counts into the
// figures, tables and percentages, nationally and per region, and renders
// them as JSON and CSV. Tests feed it counts made from plain case lists.

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"

namespace medkoord::assessment {

// Dimension values. The numbers equal the proto enums' numbers (region,
// Medicinrådet and EMA status, outcome), so the store can keep them as
// smallint columns; 0 of ReportOutcome means "open at as_of".
inline constexpr int kRegionCount = 5;
inline constexpr std::array<std::string_view, kRegionCount> kRegionSlugs = {
    "hovedstaden", "midtjylland", "syddanmark", "sjaelland", "nordjylland"};
inline constexpr std::array<std::string_view, 4> kReportOutcomeKeys = {
    "open", "recommended", "not_recommended", "not_concluded"};
inline constexpr std::array<std::string_view, 4> kMedicinraadetKeys = {
    "not_assessed", "under_assessment", "rejected", "recommended_outside_criteria"};
inline constexpr std::array<std::string_view, 3> kEmaKeys = {"on_label", "off_label", "unknown"};

// The slug of a region number 1..5, "" otherwise.
std::string_view RegionSlugOf(int region);
// The number 1..N of a key in one of the lists above, nullopt if unknown.
std::optional<int> RegionFromSlugKey(std::string_view slug);
std::optional<int> MedicinraadetFromKey(std::string_view key);
std::optional<int> EmaFromKey(std::string_view key);
// "recommended" -> 1 ... "not_concluded" -> 3 ("" and "open" -> 0).
std::optional<int> OutcomeFromKey(std::string_view key);

// Cases of the report year sharing every categorical dimension.
struct CategoryCell {
  int region = 0;       // 1..5
  int outcome = 0;      // outcome known at as_of: 0 open, 1..3 as Outcome
  bool cancer = false;
  bool marketed_dk = false;
  int medicinraadet = 0;  // 1..4
  int ema = 0;            // 1..3
  int64_t count = 0;
};

// Cases of the report year per region and name (drug or indication).
struct NameCell {
  int region = 0;
  std::string name;
  int64_t count = 0;
};

// Cases per region and submission year, for every year up to the report year.
struct YearCell {
  int region = 0;
  int year = 0;
  int64_t count = 0;
};

struct ReportInput {
  int year = 0;
  absl::Time as_of;
  std::vector<CategoryCell> categories;
  std::vector<NameCell> drugs;
  std::vector<NameCell> indications;
  std::vector<NameCell> non_cancer_indications;
  std::vector<YearCell> years;
};

// One plain case as the report sees it, for building a ReportInput without a
// database (tests, small tools). `known_at`: when its outcome became known.
struct ReportCase {
  int region = 0;
  absl::CivilDay submitted_on;
  std::string drug_name;
  std::string indication;
  bool cancer = false;
  bool marketed_dk = false;
  int medicinraadet = 0;
  int ema = 0;
  int outcome = 0;  // 0: open
  absl::Time known_at = absl::InfinitePast();
};

// The same aggregation the store does in SQL: cases submitted in `year` and
// not after as_of's Danish date; outcomes known after `as_of` count as open;
// per-year counts for every year up to `year`.
ReportInput AggregateCases(const std::vector<ReportCase>& cases, int year, absl::Time as_of);

struct Count {
  std::string name;
  int64_t count = 0;
  double percent = 0;  // of the section's total, rounded to one decimal
};

struct ReportSection {
  int64_t total = 0;
  std::vector<std::pair<int, int64_t>> per_year;  // (year, count), first data year .. report year
  std::vector<Count> outcome;                     // recommended, not_recommended, not_concluded, open
  std::vector<Count> cancer;                      // yes, no
  std::vector<Count> marketed_dk;                 // yes, no
  std::vector<Count> medicinraadet_status;        // kMedicinraadetKeys order
  std::vector<Count> ema_status;                  // kEmaKeys order
  std::vector<Count> region;                      // national only, kRegionSlugs order
  std::vector<Count> top_drugs;                   // count desc, then name asc
  std::vector<Count> top_indications;
  std::vector<Count> top_non_cancer_indications;
};

struct AnnualReport {
  int year = 0;
  absl::Time as_of;
  absl::CivilDay data_source_date;  // as_of's date in Europe/Copenhagen
  ReportSection national;
  std::array<ReportSection, kRegionCount> regions;  // kRegionSlugs order
};

// INVALID_ARGUMENT for a cell with an out-of-range dimension (a corrupt row
// must not silently vanish from the totals).
absl::StatusOr<AnnualReport> BuildAnnualReport(const ReportInput& input, int top_n = 5);

// The JSON of issue 4: {"year", "as_of", "data_source_date", "total",
// "per_year", "outcome", "cancer", "marketed_dk", "medicinraadet_status",
// "ema_status", "region", "top_drugs", "top_indications",
// "top_non_cancer_indications", "percent", "regions": {slug: {...}}}.
std::string RenderReportJson(const AnnualReport& report);

// One figure per line: `scope,figure,key,count,percent` (RFC 4180), scope
// "national" or a region slug; the first lines carry year, as_of and the
// data-source date in the key column.
std::string RenderReportCsv(const AnnualReport& report);

// 68.576... -> 68.6; 0 when total is 0.
double Percent(int64_t count, int64_t total);

}  // namespace medkoord::assessment
