#include "services/rwd/analysis.h"

#include <optional>

#include "absl/strings/str_cat.h"
#include "services/rwd/cohort.h"

namespace medkoord::rwd {
namespace {

using OJson = nlohmann::ordered_json;

std::optional<double> NumberAt(const OJson& j, const std::string& key) {
  if (!j.is_object() || !j.contains(key) || !j[key].is_number()) return std::nullopt;
  return j[key].get<double>();
}

std::optional<double> Months(std::optional<double> days) {
  if (!days) return std::nullopt;
  return *days / kDaysPerMonth;
}

// The term of a model that contrasts `intervention` with the reference:
// R names it column+level (`armpembrolizumab+chemo`).
const OJson* InterventionTerm(const OJson& result, const char* model, const std::string& group,
                              const std::string& intervention) {
  if (!result.contains("coxph") || !result["coxph"].contains(model)) return nullptr;
  const OJson& fit = result["coxph"][model]["efron"];
  if (!fit.contains("terms")) return nullptr;
  std::string name = group + intervention;
  if (!fit["terms"].contains(name)) return nullptr;
  return &fit["terms"][name];
}

}  // namespace

CohortTableBuilder::CohortTableBuilder(std::vector<std::string> covariate_names,
                                       std::vector<bool> numeric, bool has_source,
                                       std::set<std::string> arms)
    : numeric_(std::move(numeric)), has_source_(has_source), arms_(std::move(arms)) {
  table_.columns = {kPatientRef, kArm, kIndexDate, kDeathDate, kProgressionDate, kLastContactDate};
  if (has_source_) table_.columns.push_back(kSource);
  for (auto& name : covariate_names) table_.columns.push_back(std::move(name));
  table_.cells.resize(table_.columns.size());
}

void CohortTableBuilder::Add(const CohortRow& row) {
  if (!arms_.empty() && !arms_.count(row.arm)) return;
  ++rows_;
  auto date = [](const std::optional<absl::CivilDay>& d) {
    return d ? FormatIsoDate(*d) : std::string();
  };
  size_t c = 0;
  table_.cells[c++].push_back(absl::StrCat("L", row.line));
  table_.cells[c++].push_back(row.arm);
  table_.cells[c++].push_back(FormatIsoDate(row.index_date));
  table_.cells[c++].push_back(date(row.death_date));
  table_.cells[c++].push_back(date(row.progression_date));
  table_.cells[c++].push_back(date(row.last_contact_date));
  if (has_source_) table_.cells[c++].push_back(row.source);
  for (size_t i = 0; i < row.covariates.size() && c < table_.cells.size(); ++i, ++c) {
    const std::string& v = row.covariates[i];
    bool keep = i >= numeric_.size() || !numeric_[i] || ParseNumber(v).has_value();
    table_.cells[c].push_back(keep ? v : std::string());
  }
}

bool IntervalsOverlap(double a_lo, double a_hi, double b_lo, double b_hi) {
  return a_lo <= b_hi && b_lo <= a_hi;
}

std::vector<v1::BenchmarkComparison> CompareWithBenchmarks(const OJson& result,
                                                           const std::string& group,
                                                           const v1::Protocol& protocol,
                                                           v1::Endpoint endpoint) {
  const std::string& intervention = protocol.intervention().label();
  const std::string& comparator = protocol.comparator().label();

  // The RWD estimates, computed once.
  struct Hr {
    std::string model;
    std::optional<double> hr, lower, upper;
  };
  std::vector<Hr> hrs;
  if (const OJson* t = InterventionTerm(result, "group", group, intervention)) {
    hrs.push_back({"cox unadjusted", NumberAt(*t, "hr"), NumberAt(*t, "hr_lower"),
                   NumberAt(*t, "hr_upper")});
  }
  if (const OJson* t = InterventionTerm(result, "multi", group, intervention)) {
    hrs.push_back({"cox adjusted", NumberAt(*t, "hr"), NumberAt(*t, "hr_lower"),
                   NumberAt(*t, "hr_upper")});
  }
  if (result.contains("weighted") && result["weighted"].contains("coxph")) {
    const OJson& w = result["weighted"]["coxph"]["efron"];
    std::string term = group + intervention;
    if (w.contains("terms") && w["terms"].contains(term)) {
      const OJson& t = w["terms"][term];
      hrs.push_back({"iptw", NumberAt(t, "hr"), NumberAt(t, "robust_hr_lower"),
                     NumberAt(t, "robust_hr_upper")});
    }
  }
  const OJson* curves = nullptr;
  if (result.contains("km") && result["km"].contains("by_group")) {
    curves = &result["km"]["by_group"]["curves"];
  }
  auto curve = [&](const std::string& arm) -> const OJson* {
    std::string label = absl::StrCat(group, "=", arm);
    return curves && curves->contains(label) ? &(*curves)[label] : nullptr;
  };
  const OJson* ci = curve(intervention);
  const OJson* cc = curve(comparator);

  std::vector<v1::BenchmarkComparison> out;
  for (const v1::TrialBenchmark& b : protocol.benchmarks()) {
    if (b.endpoint() != endpoint) continue;
    for (const Hr& hr : hrs.empty() ? std::vector<Hr>{{"", {}, {}, {}}} : hrs) {
      v1::BenchmarkComparison c;
      *c.mutable_benchmark() = b;
      c.set_rwd_model(hr.model);
      if (hr.hr) c.set_rwd_hazard_ratio(*hr.hr);
      if (hr.lower) c.set_rwd_hr_lower(*hr.lower);
      if (hr.upper) c.set_rwd_hr_upper(*hr.upper);
      c.set_intervals_overlap(hr.lower && hr.upper && b.has_hr_lower() && b.has_hr_upper() &&
                              IntervalsOverlap(*hr.lower, *hr.upper, b.hr_lower(), b.hr_upper()));
      if (ci) {
        if (auto m = Months(NumberAt(*ci, "median"))) c.set_rwd_intervention_median_months(*m);
        if (auto m = Months(NumberAt(*ci, "median_lcl"))) c.set_rwd_intervention_median_lower(*m);
        if (auto m = Months(NumberAt(*ci, "median_ucl"))) c.set_rwd_intervention_median_upper(*m);
      }
      if (cc) {
        if (auto m = Months(NumberAt(*cc, "median"))) c.set_rwd_comparator_median_months(*m);
        if (auto m = Months(NumberAt(*cc, "median_lcl"))) c.set_rwd_comparator_median_lower(*m);
        if (auto m = Months(NumberAt(*cc, "median_ucl"))) c.set_rwd_comparator_median_upper(*m);
      }
      out.push_back(std::move(c));
    }
  }
  return out;
}

}  // namespace medkoord::rwd
