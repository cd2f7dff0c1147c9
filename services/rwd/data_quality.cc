#include "services/rwd/data_quality.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"

namespace medkoord::rwd {
namespace {

// The fixed columns whose completeness is reported, in report order.
constexpr const char* kFixed[] = {"arm", "index_date", "death_date", "progression_date",
                                  "last_contact_date", "source"};
constexpr size_t kFixedCount = 6;
constexpr size_t kSourceIndex = 5;
constexpr double kDaysPerMonth = 30.4375;

double Percent(int64_t part, int64_t whole) {
  return whole == 0 ? 0.0 : 100.0 * static_cast<double>(part) / static_cast<double>(whole);
}

void AddLine(std::vector<int64_t>& lines, int64_t line) {
  if (lines.size() < DataQuality::kMaxExampleLines) lines.push_back(line);
}

nlohmann::json DistributionJson(const std::map<int64_t, int64_t>& histogram) {
  Distribution d = DistributionOf(histogram);
  return {{"n", d.n},          {"min", d.min}, {"q1", d.q1},     {"median", d.median},
          {"q3", d.q3},        {"max", d.max}, {"mean", d.mean}, {"median_months", d.median / kDaysPerMonth}};
}

}  // namespace

const std::map<std::string, VariableRule>& KnownVariableRules() {
  static const auto* rules = new std::map<std::string, VariableRule>{
      {"age", {0, 120, false, 18, 100, "age in years"}},
      {"ecog", {0, 5, true, std::nullopt, 4, "ECOG performance status 0-5"}},
      {"pdl1_pct", {0, 100, false, std::nullopt, std::nullopt, "PD-L1 tumour proportion score in %"}},
      {"max_ae_grade", {0, 5, true, std::nullopt, std::nullopt, "CTCAE grade 0-5"}},
      {"prior_lines", {0, 20, true, std::nullopt, 12, "number of prior systemic treatments"}},
  };
  return *rules;
}

Distribution DistributionOf(const std::map<int64_t, int64_t>& histogram) {
  Distribution d;
  double sum = 0;
  for (const auto& [value, count] : histogram) {
    d.n += count;
    sum += static_cast<double>(value) * static_cast<double>(count);
  }
  if (d.n == 0) return d;
  d.min = static_cast<double>(histogram.begin()->first);
  d.max = static_cast<double>(histogram.rbegin()->first);
  d.mean = sum / static_cast<double>(d.n);
  // R's quantile type 7: h = (n-1)p, x[floor h] + (h - floor h)(x[floor h + 1] - x[floor h]),
  // 0-based order statistics.
  auto order_statistic = [&](int64_t k) {
    int64_t seen = 0;
    for (const auto& [value, count] : histogram) {
      seen += count;
      if (k < seen) return static_cast<double>(value);
    }
    return d.max;
  };
  auto quantile = [&](double p) {
    double h = static_cast<double>(d.n - 1) * p;
    auto lo = static_cast<int64_t>(std::floor(h));
    double x_lo = order_statistic(lo);
    double x_hi = lo + 1 < d.n ? order_statistic(lo + 1) : x_lo;
    return x_lo + (h - static_cast<double>(lo)) * (x_hi - x_lo);
  };
  d.q1 = quantile(0.25);
  d.median = quantile(0.5);
  d.q3 = quantile(0.75);
  return d;
}

void DataQuality::SetCovariates(std::vector<std::string> names, bool has_source) {
  covariates_ = std::move(names);
  has_source_ = has_source;
  non_numeric_.assign(covariates_.size(), Issue{});
  all_ = Group{};
  all_.fixed_present.assign(kFixedCount, 0);
  all_.covariates.assign(covariates_.size(), CovariateCounts{});
}

DataQuality::Group& DataQuality::GroupFor(std::map<std::string, Group>& groups,
                                          const std::string& key) {
  auto it = groups.find(key);
  if (it == groups.end()) {
    const std::string& use = groups.size() < kMaxGroups ? key : std::string("(other)");
    it = groups.try_emplace(use).first;
    if (it->second.fixed_present.empty()) {
      it->second.fixed_present.assign(kFixedCount, 0);
      it->second.covariates.assign(covariates_.size(), CovariateCounts{});
    }
  }
  return it->second;
}

void DataQuality::Count(Group& group, const CohortRow& row) {
  ++group.patients;
  const bool present[kFixedCount] = {!row.arm.empty(),
                                     true,
                                     row.death_date.has_value(),
                                     row.progression_date.has_value(),
                                     row.last_contact_date.has_value(),
                                     !row.source.empty()};
  for (size_t i = 0; i < kFixedCount; ++i) group.fixed_present[i] += present[i] ? 1 : 0;
  for (size_t i = 0; i < covariates_.size() && i < row.covariates.size(); ++i) {
    const std::string& v = row.covariates[i];
    CovariateCounts& c = group.covariates[i];
    if (v.empty()) {
      ++c.empty;
    } else if (ParseNumber(v).has_value()) {
      ++c.numeric;
    } else {
      ++c.non_numeric;
    }
  }
}

void DataQuality::Add(const CohortRow& row) {
  Count(all_, row);
  Count(GroupFor(by_arm_, row.arm), row);
  if (has_source_) Count(GroupFor(by_source_, row.source), row);

  const auto& rules = KnownVariableRules();
  for (size_t i = 0; i < covariates_.size() && i < row.covariates.size(); ++i) {
    const std::string& v = row.covariates[i];
    if (v.empty()) continue;
    std::optional<double> x = ParseNumber(v);
    if (!x) {
      ++non_numeric_[i].count;
      AddLine(non_numeric_[i].lines, row.line);
      continue;
    }
    auto rule = rules.find(covariates_[i]);
    if (rule == rules.end()) continue;
    const VariableRule& r = rule->second;
    if (*x < r.min || *x > r.max || (r.integer && std::floor(*x) != *x)) {
      Issue& issue = range_issues_[{i, "out_of_range",
                                    absl::StrCat("outside ", r.what)}];
      ++issue.count;
      AddLine(issue.lines, row.line);
    } else if ((r.plausible_min && *x < *r.plausible_min) ||
               (r.plausible_max && *x > *r.plausible_max)) {
      Issue& issue = range_issues_[{i, "implausible",
                                    absl::StrCat("possible but unlikely ", r.what, " (expected ",
                                                 r.plausible_min ? absl::StrCat(*r.plausible_min) : "",
                                                 "..",
                                                 r.plausible_max ? absl::StrCat(*r.plausible_max) : "",
                                                 ")")}];
      ++issue.count;
      AddLine(issue.lines, row.line);
    }
  }

  // Follow-up: index date to death, else to last contact (the OS time).
  absl::CivilDay end = row.death_date ? *row.death_date : *row.last_contact_date;
  int64_t days = end - row.index_date;
  ++follow_up_[days];
  ArmEvents& events = events_.size() < kMaxGroups || events_.count(row.arm)
                          ? events_[row.arm]
                          : events_["(other)"];
  ++events.patients;
  events.deaths += row.death_date ? 1 : 0;
  events.progressions += row.progression_date ? 1 : 0;
  events.pfs_events += (row.death_date || row.progression_date) ? 1 : 0;
  ++events.follow_up[days];
}

void DataQuality::AddIssue(const std::string& variable, const std::string& kind,
                           const std::string& reason, int64_t line) {
  Issue& issue = issues_[{variable, kind, reason}];
  ++issue.count;
  AddLine(issue.lines, line);
}

bool DataQuality::IsNumeric(size_t covariate) const {
  const CovariateCounts& c = all_.covariates[covariate];
  return c.numeric > 0 && c.non_numeric <= c.numeric;
}

std::pair<int64_t, std::vector<int64_t>> DataQuality::NonNumeric(size_t covariate) const {
  return {non_numeric_[covariate].count, non_numeric_[covariate].lines};
}

nlohmann::json DataQuality::GroupJson(const std::string& key, const Group& group) const {
  nlohmann::json variables = nlohmann::json::array();
  auto add = [&](const std::string& name, int64_t present) {
    variables.push_back({{"variable", name},
                         {"present", present},
                         {"missing", group.patients - present},
                         {"percent_complete", Percent(present, group.patients)}});
  };
  for (size_t i = 0; i < kFixedCount; ++i) {
    if (i == kSourceIndex && !has_source_) continue;
    add(kFixed[i], group.fixed_present[i]);
  }
  for (size_t i = 0; i < covariates_.size(); ++i) {
    const CovariateCounts& c = group.covariates[i];
    add(covariates_[i], IsNumeric(i) ? c.numeric : c.numeric + c.non_numeric);
  }
  return {{"key", key}, {"patients", group.patients}, {"variables", variables}};
}

nlohmann::json DataQuality::Report(const std::string& cohort_name, int64_t rows_rejected) const {
  nlohmann::json report;
  report["cohort"] = cohort_name;
  report["patients"] = all_.patients;
  report["rows_rejected"] = rows_rejected;
  report["overall"] = nlohmann::json::array({GroupJson("all", all_)});
  report["by_arm"] = nlohmann::json::array();
  for (const auto& [key, group] : by_arm_) report["by_arm"].push_back(GroupJson(key, group));
  report["by_source"] = nlohmann::json::array();
  for (const auto& [key, group] : by_source_) report["by_source"].push_back(GroupJson(key, group));

  nlohmann::json issues = nlohmann::json::array();
  auto add_issue = [&](const std::string& variable, const std::string& kind,
                       const std::string& reason, const Issue& issue) {
    issues.push_back({{"variable", variable},
                      {"kind", kind},
                      {"reason", reason},
                      {"count", issue.count},
                      {"lines", issue.lines}});
  };
  for (size_t i = 0; i < covariates_.size(); ++i) {
    if (IsNumeric(i) && non_numeric_[i].count > 0) {
      add_issue(covariates_[i], "not_a_number", "not a number; counted as missing",
                non_numeric_[i]);
    }
  }
  for (const auto& [key, issue] : range_issues_) {
    const auto& [i, kind, reason] = key;
    if (IsNumeric(i)) add_issue(covariates_[i], kind, reason, issue);
  }
  for (const auto& [key, issue] : issues_) {
    const auto& [variable, kind, reason] = key;
    add_issue(variable, kind, reason, issue);
  }
  report["value_issues"] = issues;
  report["follow_up"] = DistributionJson(follow_up_);
  nlohmann::json events = nlohmann::json::array();
  for (const auto& [arm, e] : events_) {
    events.push_back({{"arm", arm},
                      {"patients", e.patients},
                      {"deaths", e.deaths},
                      {"progressions", e.progressions},
                      {"pfs_events", e.pfs_events},
                      {"follow_up", DistributionJson(e.follow_up)}});
  }
  report["events_by_arm"] = events;
  return report;
}

}  // namespace medkoord::rwd
