#include "services/assessment/report.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/clock.h"
#include "common/csv/reader.h"
#include "nlohmann/json.hpp"

namespace medkoord::assessment {
namespace {

template <size_t N>
std::optional<int> IndexOf(const std::array<std::string_view, N>& keys, std::string_view key) {
  for (size_t i = 0; i < N; ++i) {
    if (keys[i] == key) return static_cast<int>(i);
  }
  return std::nullopt;
}

// Per-section accumulators while summing cells.
struct Accumulator {
  int64_t total = 0;
  std::array<int64_t, 4> outcome{};        // index = outcome number (0 open)
  std::array<int64_t, 2> cancer{};         // yes, no
  std::array<int64_t, 2> marketed{};       // yes, no
  std::array<int64_t, 4> medicinraadet{};  // index = number - 1
  std::array<int64_t, 3> ema{};
  std::array<int64_t, kRegionCount> region{};
  std::map<int, int64_t> years;
  absl::flat_hash_map<std::string, int64_t> drugs;
  absl::flat_hash_map<std::string, int64_t> indications;
  absl::flat_hash_map<std::string, int64_t> non_cancer;
};

std::vector<Count> Ranked(const absl::flat_hash_map<std::string, int64_t>& counts, int64_t total,
                          int top_n) {
  std::vector<Count> out;
  out.reserve(counts.size());
  for (const auto& [name, count] : counts) {
    if (count > 0) out.push_back({name, count, Percent(count, total)});
  }
  auto order = [](const Count& a, const Count& b) {
    if (a.count != b.count) return a.count > b.count;
    return a.name < b.name;
  };
  if (static_cast<int>(out.size()) > top_n) {
    std::partial_sort(out.begin(), out.begin() + top_n, out.end(), order);
    out.resize(top_n);
  } else {
    std::sort(out.begin(), out.end(), order);
  }
  return out;
}

ReportSection Finish(const Accumulator& acc, int first_year, int year, bool with_regions,
                     int top_n) {
  ReportSection s;
  s.total = acc.total;
  for (int y = first_year; y <= year; ++y) {
    auto it = acc.years.find(y);
    s.per_year.emplace_back(y, it == acc.years.end() ? 0 : it->second);
  }
  auto add = [&](std::vector<Count>& out, std::string_view key, int64_t count) {
    out.push_back({std::string(key), count, Percent(count, acc.total)});
  };
  // Outcome order of the report: the decided ones first, then open.
  for (int o : {1, 2, 3, 0}) add(s.outcome, kReportOutcomeKeys[o], acc.outcome[o]);
  add(s.cancer, "yes", acc.cancer[0]);
  add(s.cancer, "no", acc.cancer[1]);
  add(s.marketed_dk, "yes", acc.marketed[0]);
  add(s.marketed_dk, "no", acc.marketed[1]);
  for (size_t i = 0; i < kMedicinraadetKeys.size(); ++i) {
    add(s.medicinraadet_status, kMedicinraadetKeys[i], acc.medicinraadet[i]);
  }
  for (size_t i = 0; i < kEmaKeys.size(); ++i) add(s.ema_status, kEmaKeys[i], acc.ema[i]);
  if (with_regions) {
    for (int r = 0; r < kRegionCount; ++r) add(s.region, kRegionSlugs[r], acc.region[r]);
  }
  s.top_drugs = Ranked(acc.drugs, acc.total, top_n);
  s.top_indications = Ranked(acc.indications, acc.total, top_n);
  s.top_non_cancer_indications = Ranked(acc.non_cancer, acc.total, top_n);
  return s;
}

nlohmann::ordered_json CountsObject(const std::vector<Count>& counts, bool percent) {
  nlohmann::ordered_json o = nlohmann::ordered_json::object();
  for (const Count& c : counts) {
    if (percent) {
      o[c.name] = c.percent;
    } else {
      o[c.name] = c.count;
    }
  }
  return o;
}

nlohmann::ordered_json RankedArray(const std::vector<Count>& counts, bool percent) {
  nlohmann::ordered_json a = nlohmann::ordered_json::array();
  for (const Count& c : counts) {
    if (percent) {
      a.push_back(nlohmann::ordered_json::array({c.name, c.percent}));
    } else {
      a.push_back(nlohmann::ordered_json::array({c.name, c.count}));
    }
  }
  return a;
}

nlohmann::ordered_json SectionJson(const ReportSection& s, bool national) {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  j["total"] = s.total;
  nlohmann::ordered_json per_year = nlohmann::ordered_json::array();
  for (const auto& [y, n] : s.per_year) per_year.push_back(nlohmann::ordered_json::array({y, n}));
  j["per_year"] = per_year;
  j["outcome"] = CountsObject(s.outcome, false);
  j["cancer"] = CountsObject(s.cancer, false);
  j["marketed_dk"] = CountsObject(s.marketed_dk, false);
  j["medicinraadet_status"] = CountsObject(s.medicinraadet_status, false);
  j["ema_status"] = CountsObject(s.ema_status, false);
  if (national) j["region"] = CountsObject(s.region, false);
  j["top_drugs"] = RankedArray(s.top_drugs, false);
  j["top_indications"] = RankedArray(s.top_indications, false);
  j["top_non_cancer_indications"] = RankedArray(s.top_non_cancer_indications, false);
  nlohmann::ordered_json p = nlohmann::ordered_json::object();
  p["outcome"] = CountsObject(s.outcome, true);
  p["cancer"] = CountsObject(s.cancer, true);
  p["marketed_dk"] = CountsObject(s.marketed_dk, true);
  p["medicinraadet_status"] = CountsObject(s.medicinraadet_status, true);
  p["ema_status"] = CountsObject(s.ema_status, true);
  if (national) p["region"] = CountsObject(s.region, true);
  p["top_drugs"] = RankedArray(s.top_drugs, true);
  p["top_indications"] = RankedArray(s.top_indications, true);
  p["top_non_cancer_indications"] = RankedArray(s.top_non_cancer_indications, true);
  j["percent"] = p;
  return j;
}

std::string CsvField(std::string_view v) {
  std::string out;
  csv::AppendField(out, v);
  return out;
}

std::string FormatPercent(double p) { return absl::StrFormat("%.1f", p); }

void SectionCsv(std::string& out, std::string_view scope, const ReportSection& s) {
  auto line = [&](std::string_view figure, std::string_view key, int64_t count,
                  std::optional<double> percent) {
    absl::StrAppend(&out, CsvField(scope), ",", std::string(figure), ",", CsvField(key), ",", count, ",",
                    percent ? FormatPercent(*percent) : "", "\r\n");
  };
  line("total", "", s.total, std::nullopt);
  for (const auto& [y, n] : s.per_year) line("per_year", absl::StrCat(y), n, std::nullopt);
  auto counts = [&](std::string_view figure, const std::vector<Count>& cs) {
    for (const Count& c : cs) line(figure, c.name, c.count, c.percent);
  };
  counts("outcome", s.outcome);
  counts("cancer", s.cancer);
  counts("marketed_dk", s.marketed_dk);
  counts("medicinraadet_status", s.medicinraadet_status);
  counts("ema_status", s.ema_status);
  counts("region", s.region);
  counts("top_drugs", s.top_drugs);
  counts("top_indications", s.top_indications);
  counts("top_non_cancer_indications", s.top_non_cancer_indications);
}

std::string FormatAsOf(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%S%Ez", t, DanishTimeZone());
}

}  // namespace

std::string_view RegionSlugOf(int region) {
  if (region < 1 || region > kRegionCount) return "";
  return kRegionSlugs[region - 1];
}

std::optional<int> RegionFromSlugKey(std::string_view slug) {
  auto i = IndexOf(kRegionSlugs, slug);
  if (!i) return std::nullopt;
  return *i + 1;
}

std::optional<int> MedicinraadetFromKey(std::string_view key) {
  auto i = IndexOf(kMedicinraadetKeys, key);
  if (!i) return std::nullopt;
  return *i + 1;
}

std::optional<int> EmaFromKey(std::string_view key) {
  auto i = IndexOf(kEmaKeys, key);
  if (!i) return std::nullopt;
  return *i + 1;
}

std::optional<int> OutcomeFromKey(std::string_view key) {
  if (key.empty()) return 0;
  return IndexOf(kReportOutcomeKeys, key);
}

double Percent(int64_t count, int64_t total) {
  if (total <= 0) return 0;
  return std::round(static_cast<double>(count) * 1000.0 / static_cast<double>(total)) / 10.0;
}

ReportInput AggregateCases(const std::vector<ReportCase>& cases, int year, absl::Time as_of) {
  ReportInput in;
  in.year = year;
  in.as_of = as_of;
  const absl::CivilDay as_of_day = absl::ToCivilDay(as_of, DanishTimeZone());
  std::map<std::tuple<int, int, bool, bool, int, int>, int64_t> categories;
  std::map<std::pair<int, std::string>, int64_t> drugs, indications, non_cancer;
  std::map<std::pair<int, int>, int64_t> years;
  for (const ReportCase& c : cases) {
    if (c.submitted_on > as_of_day) continue;
    const int case_year = static_cast<int>(c.submitted_on.year());
    if (case_year > year) continue;
    ++years[{c.region, case_year}];
    if (case_year != year) continue;
    const int outcome = c.known_at <= as_of ? c.outcome : 0;
    ++categories[{c.region, outcome, c.cancer, c.marketed_dk, c.medicinraadet, c.ema}];
    ++drugs[{c.region, c.drug_name}];
    ++indications[{c.region, c.indication}];
    if (!c.cancer) ++non_cancer[{c.region, c.indication}];
  }
  for (const auto& [k, n] : categories) {
    const auto& [region, outcome, cancer, marketed, mr, ema] = k;
    in.categories.push_back({region, outcome, cancer, marketed, mr, ema, n});
  }
  for (const auto& [k, n] : drugs) in.drugs.push_back({k.first, k.second, n});
  for (const auto& [k, n] : indications) in.indications.push_back({k.first, k.second, n});
  for (const auto& [k, n] : non_cancer) in.non_cancer_indications.push_back({k.first, k.second, n});
  for (const auto& [k, n] : years) in.years.push_back({k.first, k.second, n});
  return in;
}

absl::StatusOr<AnnualReport> BuildAnnualReport(const ReportInput& input, int top_n) {
  Accumulator national;
  std::array<Accumulator, kRegionCount> regions;
  auto region_of = [&](int region, std::string_view what) -> absl::StatusOr<Accumulator*> {
    if (region < 1 || region > kRegionCount) {
      return absl::InvalidArgumentError(absl::StrCat("report: ", std::string(what), " with region ", region));
    }
    return &regions[region - 1];
  };
  for (const CategoryCell& c : input.categories) {
    absl::StatusOr<Accumulator*> r = region_of(c.region, "category cell");
    if (!r.ok()) return r.status();
    if (c.outcome < 0 || c.outcome > 3 || c.medicinraadet < 1 || c.medicinraadet > 4 || c.ema < 1 ||
        c.ema > 3) {
      return absl::InvalidArgumentError(
          absl::StrFormat("report: category cell out of range (outcome %d, medicinraadet %d, ema %d)",
                          c.outcome, c.medicinraadet, c.ema));
    }
    for (Accumulator* acc : {&national, *r}) {
      acc->total += c.count;
      acc->outcome[c.outcome] += c.count;
      acc->cancer[c.cancer ? 0 : 1] += c.count;
      acc->marketed[c.marketed_dk ? 0 : 1] += c.count;
      acc->medicinraadet[c.medicinraadet - 1] += c.count;
      acc->ema[c.ema - 1] += c.count;
      acc->region[c.region - 1] += c.count;
    }
  }
  auto names = [&](const std::vector<NameCell>& cells,
                   absl::flat_hash_map<std::string, int64_t> Accumulator::*field) -> absl::Status {
    for (const NameCell& c : cells) {
      absl::StatusOr<Accumulator*> r = region_of(c.region, "name cell");
      if (!r.ok()) return r.status();
      (national.*field)[c.name] += c.count;
      ((*r)->*field)[c.name] += c.count;
    }
    return absl::OkStatus();
  };
  if (absl::Status s = names(input.drugs, &Accumulator::drugs); !s.ok()) return s;
  if (absl::Status s = names(input.indications, &Accumulator::indications); !s.ok()) return s;
  if (absl::Status s = names(input.non_cancer_indications, &Accumulator::non_cancer); !s.ok()) {
    return s;
  }
  // Figures 1 and 2 start at the first year in the data, the same for every
  // region so that the regional series line up.
  int first_year = input.year;
  for (const YearCell& c : input.years) {
    absl::StatusOr<Accumulator*> r = region_of(c.region, "year cell");
    if (!r.ok()) return r.status();
    if (c.year > input.year || c.count <= 0) continue;
    first_year = std::min(first_year, c.year);
    national.years[c.year] += c.count;
    (*r)->years[c.year] += c.count;
  }

  AnnualReport report;
  report.year = input.year;
  report.as_of = input.as_of;
  report.data_source_date = absl::ToCivilDay(input.as_of, DanishTimeZone());
  report.national = Finish(national, first_year, input.year, /*with_regions=*/true, top_n);
  for (int r = 0; r < kRegionCount; ++r) {
    report.regions[r] = Finish(regions[r], first_year, input.year, /*with_regions=*/false, top_n);
  }
  return report;
}

std::string RenderReportJson(const AnnualReport& report) {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  j["year"] = report.year;
  j["as_of"] = FormatAsOf(report.as_of);
  j["data_source_date"] = absl::FormatCivilTime(report.data_source_date);
  const nlohmann::ordered_json national = SectionJson(report.national, /*national=*/true);
  for (const auto& [k, v] : national.items()) j[k] = v;
  nlohmann::ordered_json regions = nlohmann::ordered_json::object();
  for (int r = 0; r < kRegionCount; ++r) {
    regions[std::string(kRegionSlugs[r])] = SectionJson(report.regions[r], /*national=*/false);
  }
  j["regions"] = regions;
  return j.dump();
}

std::string RenderReportCsv(const AnnualReport& report) {
  std::string out = "scope,figure,key,count,percent\r\n";
  absl::StrAppend(&out, "national,year,", report.year, ",,\r\n");
  absl::StrAppend(&out, "national,as_of,", FormatAsOf(report.as_of), ",,\r\n");
  absl::StrAppend(&out, "national,data_source_date,",
                  absl::FormatCivilTime(report.data_source_date), ",,\r\n");
  SectionCsv(out, "national", report.national);
  for (int r = 0; r < kRegionCount; ++r) SectionCsv(out, std::string(kRegionSlugs[r]), report.regions[r]);
  return out;
}

}  // namespace medkoord::assessment
