#include "services/rwd/analyse/analyse.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ostream>
#include <set>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "services/rwd/survival/cox.h"
#include "services/rwd/survival/logistic.h"
#include "services/rwd/survival/logrank.h"
#include "services/rwd/survival/safety.h"

namespace medkoord::analyse {
namespace {

namespace sv = ::medkoord::survival;

constexpr double kDaysPerMonth = 30.4375;

std::string Trimmed(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && (s[b] == ' ' || s[b] == '\t')) ++b;
  while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t' || s[e - 1] == '\r')) --e;
  return s.substr(b, e - b);
}

// R's as.character for a numeric level, e.g. "1", "2.5".
std::string FormatLevel(double v) { return absl::StrFormat("%.15g", v); }

// Days since 1970-01-01 of an ISO date, or nullopt.
std::optional<int64_t> ParseIsoDate(const std::string& raw) {
  const std::string s = Trimmed(raw);
  int y, m, d;
  char tail;
  if (s.size() != 10 || s[4] != '-' || s[7] != '-' ||
      std::sscanf(s.c_str(), "%4d-%2d-%2d%c", &y, &m, &d, &tail) != 3)
    return std::nullopt;
  static const int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (m < 1 || m > 12 || d < 1) return std::nullopt;
  const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  if (d > kDays[m - 1] + (m == 2 && leap ? 1 : 0)) return std::nullopt;
  // Howard Hinnant's days_from_civil.
  const int yy = y - (m <= 2);
  const int era = (yy >= 0 ? yy : yy - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(yy - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return static_cast<int64_t>(era) * 146097 + static_cast<int64_t>(doe) - 719468;
}

struct Outcome {
  std::vector<double> time;
  std::vector<int> event;
  std::vector<size_t> rows;     // rows with a usable outcome
  std::vector<size_t> dropped;  // rows without
  std::string surv_expression;
};

absl::StatusOr<Outcome> DeriveOutcome(const Table& t, const AnalysisSpec& spec,
                                      std::vector<std::string>& warnings) {
  Outcome o;
  const size_t n = t.rows();
  o.time.assign(n, 0);
  o.event.assign(n, 0);
  std::vector<bool> ok(n, false);
  if (!spec.endpoint.empty()) {
    const int idx = t.Find("index_date"), death = t.Find("death_date"),
              prog = t.Find("progression_date"), last = t.Find("last_contact_date");
    std::vector<std::string> missing;
    if (idx < 0) missing.push_back("index_date");
    if (death < 0) missing.push_back("death_date");
    if (last < 0) missing.push_back("last_contact_date");
    if (spec.endpoint == "pfs" && prog < 0) missing.push_back("progression_date");
    if (!missing.empty())
      return absl::InvalidArgumentError(
          absl::StrCat("not an RWD cohort file: missing column(s) ", absl::StrJoin(missing, ", ")));
    for (size_t r = 0; r < n; ++r) {
      auto date = [&](int c) -> std::optional<int64_t> {
        if (c < 0 || IsMissing(t.cells[c][r])) return std::nullopt;
        return ParseIsoDate(t.cells[c][r]);
      };
      const auto i0 = date(idx);
      const auto dd = date(death);
      const auto lc = date(last);
      const auto pd = spec.endpoint == "pfs" ? date(prog) : std::nullopt;
      if (!i0) continue;
      std::optional<int64_t> end;
      int ev = 0;
      if (spec.endpoint == "os") {
        if (dd) {
          end = dd;
          ev = 1;
        } else {
          end = lc;
        }
      } else {
        if (pd || dd) {
          end = pd && dd ? std::min(*pd, *dd) : (pd ? pd : dd);
          ev = 1;
        } else {
          end = lc;
        }
      }
      if (!end || *end < *i0) continue;
      o.time[r] = static_cast<double>(*end - *i0);
      o.event[r] = ev;
      ok[r] = true;
    }
    o.surv_expression = spec.endpoint == "os" ? "Surv(os_days, death)" : "Surv(pfs_days, progression_or_death)";
  } else {
    const int tc = t.Find(spec.time_column), ec = t.Find(spec.event_column);
    std::vector<std::string> missing;
    if (tc < 0) missing.push_back(spec.time_column);
    if (ec < 0) missing.push_back(spec.event_column);
    if (!missing.empty())
      return absl::InvalidArgumentError(absl::StrCat("no such column(s): ", absl::StrJoin(missing, ", ")));
    std::vector<std::optional<double>> numeric_values;
    for (const auto& v : spec.event_values) numeric_values.push_back(ParseNumber(v));
    for (size_t r = 0; r < n; ++r) {
      const auto tv = ParseNumber(t.cells[tc][r]);
      if (!tv || !std::isfinite(*tv) || *tv < 0 || IsMissing(t.cells[ec][r])) continue;
      const std::string cell = Trimmed(t.cells[ec][r]);
      const auto cv = ParseNumber(cell);
      int ev = 0;
      for (size_t k = 0; k < spec.event_values.size(); ++k) {
        if (cell == spec.event_values[k] || (cv && numeric_values[k] && *cv == *numeric_values[k])) ev = 1;
      }
      o.time[r] = *tv;
      o.event[r] = ev;
      ok[r] = true;
    }
    o.surv_expression = absl::StrCat("Surv(", spec.time_column, ", ", spec.event_column, " %in% c(",
                                     absl::StrJoin(spec.event_values, ", "), "))");
  }
  for (size_t r = 0; r < n; ++r) (ok[r] ? o.rows : o.dropped).push_back(r);
  if (!o.dropped.empty())
    warnings.push_back(absl::StrCat(o.dropped.size(), " row(s) without a usable time/event were left out"));
  if (o.rows.empty()) return absl::FailedPreconditionError("no row has a usable time and event");
  return o;
}

// A model term: a column, possibly log-transformed.
struct TermSpec {
  std::string label;  // as written: "age", "log(x)"
  std::string column;
  bool log = false;
  int index = -1;
  bool numeric = true;
};

absl::StatusOr<TermSpec> ParseTerm(const Table& t, const std::string& raw) {
  TermSpec s;
  s.label = Trimmed(raw);
  s.column = s.label;
  if (s.label.size() > 5 && s.label.rfind("log(", 0) == 0 && s.label.back() == ')') {
    s.log = true;
    s.column = Trimmed(s.label.substr(4, s.label.size() - 5));
  }
  s.index = t.Find(s.column);
  if (s.index < 0) return absl::InvalidArgumentError(absl::StrCat("no such column: ", s.column));
  s.numeric = IsNumericColumn(t, s.index);
  if (s.log && !s.numeric)
    return absl::InvalidArgumentError(absl::StrCat("log() of a text column: ", s.column));
  return s;
}

// The value of a numeric term in a row, or nullopt when missing.
std::optional<double> TermValue(const Table& t, const TermSpec& s, size_t r) {
  auto v = ParseNumber(t.cells[s.index][r]);
  if (!v) return std::nullopt;
  if (s.log) {
    if (!(*v > 0)) return std::nullopt;
    return std::log(*v);
  }
  return v;
}

// A factor: its levels (sorted, reference first unless chosen), per row.
struct Factor {
  std::vector<std::string> levels;  // sorted
  size_t reference = 0;
};

Factor MakeFactor(const Table& t, int col, const std::vector<size_t>& rows) {
  std::set<std::string> lv;
  for (size_t r : rows) lv.insert(Trimmed(t.cells[col][r]));
  Factor f;
  f.levels.assign(lv.begin(), lv.end());
  return f;
}

// Rows (of `rows`) where every term has a value.
std::vector<size_t> CompleteRows(const Table& t, const std::vector<TermSpec>& terms,
                                 const std::vector<size_t>& rows) {
  std::vector<size_t> out;
  for (size_t r : rows) {
    bool ok = true;
    for (const auto& s : terms) {
      if (s.numeric) {
        ok = ok && TermValue(t, s, r).has_value();
      } else {
        ok = ok && !IsMissing(t.cells[s.index][r]);
      }
    }
    if (ok) out.push_back(r);
  }
  return out;
}

struct Design {
  std::vector<size_t> rows;
  sv::CoxDesign x;  // columns over `rows`
  std::vector<std::string> term_labels;
};

absl::StatusOr<Design> BuildDesign(const Table& t, const std::vector<std::string>& raw_terms,
                                   const std::vector<size_t>& candidates,
                                   const std::map<std::string, std::string>& reference) {
  std::vector<TermSpec> terms;
  std::vector<std::string> errors;
  for (const auto& raw : raw_terms) {
    auto s = ParseTerm(t, raw);
    if (!s.ok()) {
      errors.push_back(std::string(s.status().message()));
    } else {
      terms.push_back(*s);
    }
  }
  if (!errors.empty()) return absl::InvalidArgumentError(absl::StrJoin(errors, "; "));
  Design d;
  d.rows = CompleteRows(t, terms, candidates);
  if (d.rows.empty()) return absl::FailedPreconditionError("no complete rows for the model");
  for (const auto& s : terms) {
    d.term_labels.push_back(s.label);
    if (s.numeric) {
      std::vector<double> col;
      col.reserve(d.rows.size());
      for (size_t r : d.rows) col.push_back(*TermValue(t, s, r));
      d.x.names.push_back(s.label);
      d.x.x.push_back(std::move(col));
      continue;
    }
    Factor f = MakeFactor(t, s.index, d.rows);
    auto it = reference.find(s.column);
    if (it != reference.end()) {
      auto pos = std::find(f.levels.begin(), f.levels.end(), it->second);
      if (pos == f.levels.end())
        return absl::InvalidArgumentError(
            absl::StrCat("reference level '", it->second, "' not found in column ", s.column));
      f.reference = static_cast<size_t>(pos - f.levels.begin());
    }
    for (size_t l = 0; l < f.levels.size(); ++l) {
      if (l == f.reference) continue;
      std::vector<double> col;
      col.reserve(d.rows.size());
      for (size_t r : d.rows) col.push_back(Trimmed(t.cells[s.index][r]) == f.levels[l] ? 1.0 : 0.0);
      d.x.names.push_back(s.column + f.levels[l]);
      d.x.x.push_back(std::move(col));
    }
  }
  if (d.x.x.empty()) return absl::FailedPreconditionError("the model has no covariate columns");
  return d;
}

// The group variable: per row its level index (-1 when missing).
struct Group {
  std::string column;
  bool numeric = false;
  std::vector<std::string> levels;  // display values, in R's level order
  std::vector<std::string> labels;  // "col=level"
  size_t reference = 0;
  std::vector<int> index;  // per table row
};

absl::StatusOr<Group> MakeGroup(const Table& t, const AnalysisSpec& spec, const std::vector<size_t>& rows) {
  Group g;
  g.column = spec.group;
  const int c = t.Find(spec.group);
  if (c < 0) return absl::InvalidArgumentError(absl::StrCat("no such column: ", spec.group));
  g.numeric = IsNumericColumn(t, c);
  g.index.assign(t.rows(), -1);
  if (g.numeric) {
    std::set<double> lv;
    for (size_t r : rows)
      if (auto v = ParseNumber(t.cells[c][r])) lv.insert(*v);
    std::vector<double> levels(lv.begin(), lv.end());
    for (double v : levels) g.levels.push_back(FormatLevel(v));
    for (size_t r : rows)
      if (auto v = ParseNumber(t.cells[c][r]))
        g.index[r] = static_cast<int>(std::lower_bound(levels.begin(), levels.end(), *v) - levels.begin());
  } else {
    std::set<std::string> lv;
    for (size_t r : rows)
      if (!IsMissing(t.cells[c][r])) lv.insert(Trimmed(t.cells[c][r]));
    g.levels.assign(lv.begin(), lv.end());
    for (size_t r : rows)
      if (!IsMissing(t.cells[c][r]))
        g.index[r] = static_cast<int>(std::lower_bound(g.levels.begin(), g.levels.end(),
                                                       Trimmed(t.cells[c][r])) - g.levels.begin());
  }
  if (g.levels.empty()) return absl::FailedPreconditionError(absl::StrCat("group column ", spec.group, " has no values"));
  auto it = spec.reference.find(spec.group);
  if (it != spec.reference.end()) {
    auto pos = std::find(g.levels.begin(), g.levels.end(), it->second);
    if (pos == g.levels.end() && g.numeric) {
      if (auto v = ParseNumber(it->second)) pos = std::find(g.levels.begin(), g.levels.end(), FormatLevel(*v));
    }
    if (pos == g.levels.end())
      return absl::InvalidArgumentError(
          absl::StrCat("reference level '", it->second, "' not found in column ", spec.group));
    const int ref = static_cast<int>(pos - g.levels.begin());
    if (g.numeric) {
      // A numeric group keeps its numeric order; the reference only says
      // who is untreated in the propensity model.
      g.reference = static_cast<size_t>(ref);
    } else {
      // As R's relevel(): the reference becomes the first level, so curves
      // and the survdiff groups come in R's order.
      std::rotate(g.levels.begin(), pos, pos + 1);
      for (int& idx : g.index) {
        if (idx < 0) continue;
        idx = idx == ref ? 0 : (idx < ref ? idx + 1 : idx);
      }
      g.reference = 0;
    }
  }
  for (const auto& l : g.levels) g.labels.push_back(g.column + "=" + l);
  return g;
}

std::vector<int64_t> CsvRows(const std::vector<size_t>& rows) {
  std::vector<int64_t> out;
  for (size_t r : rows) out.push_back(static_cast<int64_t>(r + 1));
  return out;
}

// Rows of `all` not in `kept` (both sorted).
std::vector<size_t> Missing(const std::vector<size_t>& all, const std::vector<size_t>& kept) {
  std::vector<size_t> out;
  std::set_difference(all.begin(), all.end(), kept.begin(), kept.end(), std::back_inserter(out));
  return out;
}

sv::SurvivalData SurvOn(const Outcome& o, const std::vector<size_t>& rows,
                        const std::vector<double>& weight = {}) {
  sv::SurvivalData s;
  s.time.reserve(rows.size());
  s.event.reserve(rows.size());
  for (size_t r : rows) {
    s.time.push_back(o.time[r]);
    s.event.push_back(o.event[r]);
  }
  s.weight = weight;
  return s;
}

Json CurveJson(const sv::KmCurve& c, bool logse, bool months) {
  Json j;
  j["label"] = c.label;
  j["n"] = c.n;
  j["std_err_scale"] = logse ? "logS" : "S";
  j["time"] = NumArray(c.time);
  j["n_risk"] = NumArray(c.n_risk);
  j["n_event"] = NumArray(c.n_event);
  j["n_censor"] = NumArray(c.n_censor);
  j["surv"] = NumArray(c.surv);
  j["std_err"] = NumArray(c.std_err);
  j["se_logS"] = NumArray(c.se_log_s);
  j["se_surv"] = NumArray(c.se_surv);
  j["lower"] = OptArray(c.lower);
  j["upper"] = OptArray(c.upper);
  j["cumhaz"] = NumArray(c.cumhaz);
  j["std_chaz"] = NumArray(c.std_chaz);
  j["median"] = Opt(c.median);
  j["median_lcl"] = Opt(c.median_lcl);
  j["median_ucl"] = Opt(c.median_ucl);
  j["records"] = c.n;
  j["events"] = c.events;
  j["rmean"] = c.rmean;
  j["se_rmean"] = c.se_rmean;
  Json q;
  q["probs"] = NumArray(c.quantiles.probs);
  q["quantile"] = OptArray(c.quantiles.quantile);
  q["lower"] = OptArray(c.quantiles.lower);
  q["upper"] = OptArray(c.quantiles.upper);
  j["quantiles"] = q;
  if (months) {
    auto m = [](const std::optional<double>& v) { return v ? Json(*v / kDaysPerMonth) : Json(nullptr); };
    Json dm;
    dm["median"] = m(c.median);
    dm["median_lcl"] = m(c.median_lcl);
    dm["median_ucl"] = m(c.median_ucl);
    dm["rmean"] = c.rmean / kDaysPerMonth;
    j["display_months"] = dm;
  }
  return j;
}

Json KmJson(const sv::KmFit& fit, const std::vector<double>& at_times, bool grouped, bool months) {
  Json j;
  j["conf_type"] = sv::ConfTypeName(fit.conf_type);
  j["conf_int"] = fit.conf_int;
  j["logse"] = fit.logse;
  Json curves = Json::object();
  for (const auto& c : fit.curves) curves[c.label] = CurveJson(c, fit.logse, months);
  j["curves"] = curves;
  if (!at_times.empty()) {
    const auto rows = sv::SummaryAtTimes(fit, at_times);
    Json a;
    if (grouped) {
      Json s = Json::array();
      for (const auto& r : rows) s.push_back(r.strata);
      a["strata"] = s;
    }
    Json time = Json::array(), surv = Json::array(), se = Json::array(), lo = Json::array(),
         hi = Json::array(), nr = Json::array(), ne = Json::array();
    for (const auto& r : rows) {
      time.push_back(r.time);
      surv.push_back(r.surv);
      se.push_back(r.se_surv);
      lo.push_back(Opt(r.lower));
      hi.push_back(Opt(r.upper));
      nr.push_back(r.n_risk);
      ne.push_back(r.n_event);
    }
    a["time"] = time;
    a["surv"] = surv;
    a["se_surv"] = se;
    a["lower"] = lo;
    a["upper"] = hi;
    a["n_risk"] = nr;
    a["n_event_cum_interval"] = ne;
    j["at_times"] = a;
  }
  return j;
}

Json MatrixJson(const sv::Matrix& m) {
  Json a = Json::array();
  for (int i = 0; i < m.n; ++i) {
    Json row = Json::array();
    for (int k = 0; k < m.n; ++k) row.push_back(m(i, k));
    a.push_back(row);
  }
  return a;
}

Json TestJson(const sv::TestStat& t) {
  Json j;
  j["stat"] = t.stat;
  j["df"] = t.df;
  j["p"] = t.p;
  return j;
}

Json SurvDiffJson(const sv::LogRankResult& r, const std::string& formula) {
  Json j;
  j["formula"] = formula;
  j["rho"] = r.rho;
  j["groups"] = r.groups;
  j["n"] = NumArray(r.n);
  j["obs"] = NumArray(r.obs);
  j["exp"] = NumArray(r.exp);
  j["var"] = MatrixJson(r.var);
  j["chisq"] = r.chisq;
  j["df"] = r.df;
  j["p"] = r.p;
  return j;
}

Json CoxJson(const sv::CoxFit& fit, const std::string& formula, const std::vector<size_t>& dropped) {
  Json j;
  j["formula"] = formula;
  j["method"] = fit.ties == sv::Ties::kEfron ? "efron" : "breslow";
  j["n"] = fit.n;
  j["nevent"] = fit.nevent;
  j["na_action"] = "na.omit";
  j["dropped_csv_rows"] = CsvRows(dropped);
  Json names = Json::array();
  for (const auto& t : fit.terms) names.push_back(t.name);
  j["term_names"] = names;
  Json terms = Json::object();
  for (const auto& t : fit.terms) {
    Json tj;
    if (t.singular) {
      for (const char* k : {"coef", "se", "z", "p", "hr", "hr_lower", "hr_upper", "robust_se", "robust_z",
                            "robust_p", "robust_hr_lower", "robust_hr_upper"})
        tj[k] = nullptr;
    } else {
      tj["coef"] = t.coef;
      tj["se"] = t.se;
      tj["z"] = t.z;
      tj["p"] = t.p;
      tj["hr"] = t.hr;
      tj["hr_lower"] = t.hr_lower;
      tj["hr_upper"] = t.hr_upper;
      tj["robust_se"] = t.robust_se;
      tj["robust_z"] = t.robust_z;
      tj["robust_p"] = t.robust_p;
      tj["robust_hr_lower"] = t.robust_hr_lower;
      tj["robust_hr_upper"] = t.robust_hr_upper;
    }
    tj["mean"] = t.mean;
    terms[t.name] = tj;
  }
  j["terms"] = terms;
  j["var"] = MatrixJson(fit.var);
  j["robust_var"] = MatrixJson(fit.robust_var);
  j["loglik_null"] = fit.loglik_null;
  j["loglik"] = fit.loglik;
  j["iter"] = fit.iter;
  j["converged"] = fit.converged;
  j["lr_test"] = TestJson(fit.lr_test);
  j["wald_test"] = TestJson(fit.wald_test);
  j["score_test"] = TestJson(fit.score_test);
  j["robust_wald_test"] = TestJson(fit.robust_wald_test);
  j["robust_score_test"] = TestJson(fit.robust_score_test);
  Json c;
  c["concordant"] = fit.concordance.concordant;
  c["discordant"] = fit.concordance.discordant;
  c["tied.x"] = fit.concordance.tied_x;
  c["tied.y"] = fit.concordance.tied_y;
  c["tied.xy"] = fit.concordance.tied_xy;
  c["concordance"] = fit.concordance.concordance;
  c["std"] = fit.concordance.std;
  j["concordance"] = c;
  return j;
}

// The weighted Cox model in the reference's flat shape (one term), with all
// terms under "terms" as well.
Json WeightedCoxJson(const sv::CoxFit& fit, const std::string& formula) {
  Json j;
  j["formula"] = formula;
  j["method"] = fit.ties == sv::Ties::kEfron ? "efron" : "breslow";
  j["n"] = fit.n;
  j["nevent"] = fit.nevent;
  j["weighted_nevent"] = fit.weighted_nevent;
  auto fill = [&](Json& tj, const sv::CoxTerm& t) {
    tj["coef"] = t.coef;
    tj["naive_se"] = t.se;
    tj["robust_se"] = t.robust_se;
    tj["hr"] = t.hr;
    tj["robust_hr_lower"] = t.robust_hr_lower;
    tj["robust_hr_upper"] = t.robust_hr_upper;
    tj["robust_p"] = t.robust_p;
  };
  if (fit.terms.size() == 1) {
    j["term"] = fit.terms[0].name;
    fill(j, fit.terms[0]);
  }
  Json terms = Json::object();
  for (const auto& t : fit.terms) {
    Json tj;
    fill(tj, t);
    terms[t.name] = tj;
  }
  j["terms"] = terms;
  j["loglik_null"] = fit.loglik_null;
  j["loglik"] = fit.loglik;
  j["iter"] = fit.iter;
  j["score_test"] = fit.score_test.stat;
  j["robust_wald_test"] = fit.robust_wald_test.stat;
  j["robust_score_test"] = fit.robust_score_test.stat;
  j["df"] = fit.score_test.df;
  return j;
}

Json WeightSummaryJson(const sv::WeightSummary& s) {
  Json j;
  j["n"] = s.n;
  j["sum"] = s.sum;
  j["mean"] = s.mean;
  j["min"] = s.min;
  j["q1"] = s.q1;
  j["median"] = s.median;
  j["q3"] = s.q3;
  j["max"] = s.max;
  j["ess"] = s.ess;
  return j;
}

std::string Formula(const Outcome& o, const std::vector<std::string>& terms) {
  return absl::StrCat(o.surv_expression, " ~ ", terms.empty() ? "1" : absl::StrJoin(terms, " + "));
}

}  // namespace

absl::StatusOr<Json> RunAnalysis(const Table& t, const AnalysisSpec& spec) {
  std::vector<std::string> warnings;
  auto outcome = DeriveOutcome(t, spec, warnings);
  if (!outcome.ok()) return outcome.status();
  const Outcome& o = *outcome;
  const bool months = !spec.endpoint.empty();
  Json j;
  j["csv_rows"] = static_cast<int64_t>(t.rows());
  j["surv_expression"] = o.surv_expression;
  j["time_unit"] = "days";
  if (!spec.endpoint.empty()) j["endpoint"] = spec.endpoint;
  j["analysis_rows"] = static_cast<int64_t>(o.rows.size());
  j["dropped_csv_rows"] = CsvRows(o.dropped);

  sv::KmOptions km_options;
  km_options.conf_type = spec.conf_type;
  km_options.conf_int = spec.conf_int;
  Json km;
  {
    auto fit = sv::FitKaplanMeier(SurvOn(o, o.rows), {}, {"all"}, km_options);
    if (!fit.ok()) return fit.status();
    Json ov = KmJson(*fit, spec.at_times, false, months);
    ov["formula"] = Formula(o, {});
    km["overall"] = ov;
  }
  std::optional<Group> group;
  std::vector<size_t> group_rows;
  std::vector<int> group_index;
  if (!spec.group.empty()) {
    auto g = MakeGroup(t, spec, o.rows);
    if (!g.ok()) return g.status();
    group = std::move(*g);
    for (size_t r : o.rows)
      if (group->index[r] >= 0) {
        group_rows.push_back(r);
        group_index.push_back(group->index[r]);
      }
    auto fit = sv::FitKaplanMeier(SurvOn(o, group_rows), group_index, group->labels, km_options);
    if (!fit.ok()) return fit.status();
    Json bg = KmJson(*fit, spec.at_times, true, months);
    bg["formula"] = Formula(o, {spec.group});
    bg["dropped_csv_rows"] = CsvRows(Missing(o.rows, group_rows));
    km["by_group"] = bg;
  }
  j["km"] = km;

  if (group) {
    if (group->levels.size() >= 2) {
      for (double rho : {0.0, 1.0}) {
        auto r = sv::SurvDiff(SurvOn(o, group_rows), group_index, group->labels, rho);
        if (!r.ok()) return r.status();
        j[rho == 0 ? "survdiff" : "survdiff_rho1"] = SurvDiffJson(*r, Formula(o, {spec.group}));
      }
    } else {
      warnings.push_back("the group has one level: no log-rank test");
    }
  }

  Json coxph = Json::object();
  auto cox_section = [&](const std::vector<std::string>& terms) -> absl::StatusOr<Json> {
    auto design = BuildDesign(t, terms, o.rows, spec.reference);
    if (!design.ok()) return design.status();
    Json s;
    for (sv::Ties ties : {sv::Ties::kEfron, sv::Ties::kBreslow}) {
      sv::CoxOptions options;
      options.ties = ties;
      options.conf_int = spec.conf_int;
      auto fit = sv::FitCox(SurvOn(o, design->rows), design->x, options);
      if (!fit.ok()) return fit.status();
      if (!fit->converged) warnings.push_back(absl::StrCat("Cox model ", Formula(o, terms), ": ran out of iterations"));
      s[ties == sv::Ties::kEfron ? "efron" : "breslow"] =
          CoxJson(*fit, Formula(o, design->term_labels), Missing(o.rows, design->rows));
    }
    return s;
  };
  if (group && group->levels.size() >= 2) {
    auto s = cox_section({spec.group});
    if (!s.ok()) return s.status();
    coxph["group"] = *s;
  }
  if (!spec.covariates.empty()) {
    auto s = cox_section(spec.covariates);
    if (!s.ok()) return s.status();
    coxph["multi"] = *s;
  }
  if (!coxph.empty()) j["coxph"] = coxph;

  if (!spec.ps_covariates.empty()) {
    if (!group || group->levels.size() < 2)
      return absl::InvalidArgumentError("--ps-covariates needs a --group with at least two levels");
    // Complete cases of the group, the propensity and the model covariates.
    std::vector<std::string> all_terms = spec.ps_covariates;
    for (const auto& c : spec.covariates) all_terms.push_back(c);
    std::vector<TermSpec> specs;
    for (const auto& raw : all_terms) {
      auto s = ParseTerm(t, raw);
      if (!s.ok()) return s.status();
      specs.push_back(*s);
    }
    const std::vector<size_t> rows = CompleteRows(t, specs, group_rows);
    auto design = BuildDesign(t, spec.ps_covariates, rows, spec.reference);
    if (!design.ok()) return design.status();
    std::vector<int> treated;
    for (size_t r : rows) treated.push_back(static_cast<size_t>(group->index[r]) != group->reference);
    auto ps = sv::FitLogistic(treated, design->x.x, design->x.names);
    if (!ps.ok()) return ps.status();
    const auto wopt = sv::IptwWeights(treated, ps->fitted, spec.iptw);
    std::vector<size_t> wrows;
    std::vector<double> w, wt, wu;
    std::vector<int> wgroup, wtreated;
    for (size_t k = 0; k < rows.size(); ++k) {
      if (!wopt[k]) continue;
      wrows.push_back(rows[k]);
      w.push_back(*wopt[k]);
      (treated[k] ? wt : wu).push_back(*wopt[k]);
      wgroup.push_back(group->index[rows[k]]);
      wtreated.push_back(treated[k]);
    }
    Json wj;
    wj["method"] = spec.iptw.estimand == sv::Estimand::kAte
                       ? "IPTW (ATE) weights w = 1/ps for treated, 1/(1-ps) for untreated"
                       : "IPTW (ATT) weights w = 1 for treated, ps/(1-ps) for untreated";
    wj["estimand"] = spec.iptw.estimand == sv::Estimand::kAte ? "ATE" : "ATT";
    wj["stabilised"] = spec.iptw.stabilised;
    wj["trim"] = spec.iptw.trim;
    wj["treated_definition"] = absl::StrCat(spec.group, " != ", group->levels[group->reference]);
    wj["ps_formula"] = absl::StrCat("treated ~ ", absl::StrJoin(spec.ps_covariates, " + "));
    wj["rows"] = static_cast<int64_t>(wrows.size());
    wj["dropped_csv_rows"] = CsvRows(Missing(group_rows, wrows));
    Json pm;
    pm["terms"] = ps->names;
    pm["coef"] = NumArray(ps->coef);
    pm["se"] = NumArray(ps->se);
    pm["deviance"] = ps->deviance;
    pm["iter"] = ps->iter;
    pm["converged"] = ps->converged;
    wj["ps_model"] = pm;
    Json ws;
    ws["all"] = WeightSummaryJson(sv::SummariseWeights(w));
    ws["treated"] = WeightSummaryJson(sv::SummariseWeights(wt));
    ws["untreated"] = WeightSummaryJson(sv::SummariseWeights(wu));
    wj["weights_summary"] = ws;
    // Balance of the propensity covariates before and after weighting.
    {
      std::vector<std::vector<double>> x;
      for (const auto& col : design->x.x) {
        std::vector<double> kept;
        for (size_t k = 0; k < rows.size(); ++k)
          if (wopt[k]) kept.push_back(col[k]);
        x.push_back(kept);
      }
      Json bal = Json::array();
      for (const auto& b : sv::StandardisedMeanDifferences(wtreated, x, design->x.names, w)) {
        Json bj;
        bj["term"] = b.name;
        bj["mean_treated"] = b.mean_treated;
        bj["mean_untreated"] = b.mean_control;
        bj["weighted_mean_treated"] = b.weighted_mean_treated;
        bj["weighted_mean_untreated"] = b.weighted_mean_control;
        bj["smd_before"] = b.smd_before;
        bj["smd_after"] = b.smd_after;
        bj["imbalanced_before"] = b.imbalanced_before;
        bj["imbalanced_after"] = b.imbalanced_after;
        bal.push_back(bj);
      }
      wj["balance"] = bal;
      wj["balance_threshold"] = 0.1;
    }
    auto gdesign = BuildDesign(t, {spec.group}, wrows, spec.reference);
    if (!gdesign.ok()) return gdesign.status();
    Json wc;
    for (sv::Ties ties : {sv::Ties::kEfron, sv::Ties::kBreslow}) {
      sv::CoxOptions options;
      options.ties = ties;
      options.conf_int = spec.conf_int;
      auto fit = sv::FitCox(SurvOn(o, wrows, w), gdesign->x, options);
      if (!fit.ok()) return fit.status();
      wc[ties == sv::Ties::kEfron ? "efron" : "breslow"] = WeightedCoxJson(
          *fit, absl::StrCat(Formula(o, {spec.group}), " ; weights = w (IPTW), robust = TRUE"));
    }
    wj["coxph"] = wc;
    auto km_robust = sv::FitKaplanMeier(SurvOn(o, wrows, w), wgroup, group->labels, km_options);
    if (!km_robust.ok()) return km_robust.status();
    wj["km_robust_default"] = KmJson(*km_robust, spec.at_times, true, months);
    sv::KmOptions green = km_options;
    green.variance = sv::KmVariance::kGreenwood;
    auto km_green = sv::FitKaplanMeier(SurvOn(o, wrows, w), wgroup, group->labels, green);
    if (!km_green.ok()) return km_green.status();
    wj["km_greenwood"] = KmJson(*km_green, spec.at_times, true, months);
    auto km_plain = sv::FitKaplanMeier(SurvOn(o, wrows), wgroup, group->labels, km_options);
    if (!km_plain.ok()) return km_plain.status();
    wj["km_unweighted_same_rows"] = KmJson(*km_plain, spec.at_times, true, months);
    j["weighted"] = wj;
  }

  // Adverse events by worst grade per arm.
  const std::string ae_col = !spec.ae_column.empty() ? spec.ae_column
                             : (t.Find("max_ae_grade") >= 0 ? "max_ae_grade" : "");
  if (!ae_col.empty() && group) {
    const int c = t.Find(ae_col);
    if (c < 0) return absl::InvalidArgumentError(absl::StrCat("no such column: ", ae_col));
    std::vector<int> arm;
    std::vector<double> grade;
    for (size_t r = 0; r < t.rows(); ++r) {
      if (group->index[r] < 0) continue;
      arm.push_back(group->index[r]);
      auto g = ParseNumber(t.cells[c][r]);
      grade.push_back(g ? *g : std::nan(""));
    }
    Json sj;
    sj["grade_column"] = ae_col;
    Json arms = Json::object();
    for (const auto& s : sv::SummariseAdverseEvents(arm, grade, group->labels)) {
      Json a;
      a["n"] = s.n;
      a["n_known"] = s.n_known;
      a["count_by_grade"] = s.count_by_grade;
      a["percent_by_grade"] = NumArray(s.percent_by_grade);
      a["grade3_plus"] = s.grade3_plus;
      a["grade3_plus_percent"] = s.grade3_plus_percent;
      arms[s.arm] = a;
    }
    sj["by_group"] = arms;
    j["safety"] = sj;
  }
  j["warnings"] = warnings;
  return j;
}

absl::StatusOr<AnalysisSpec> ParseAnalyseArgs(const std::vector<std::string>& args_in,
                                              std::string* file, bool* json) {
  std::vector<std::string> args = args_in;
  if (!args.empty() && args[0] == "analyse") args.erase(args.begin());
  AnalysisSpec spec;
  std::vector<std::string> errors;
  *json = false;
  file->clear();
  auto split_list = [](const std::string& v) {
    std::vector<std::string> out;
    // Commas inside log(...) do not occur; split on every comma.
    for (auto part : absl::StrSplit(v, ',')) {
      std::string p = Trimmed(std::string(part));
      if (!p.empty()) out.push_back(p);
    }
    return out;
  };
  for (size_t i = 0; i < args.size(); ++i) {
    std::string a = args[i];
    std::string value;
    bool has_value = false;
    if (a.rfind("--", 0) == 0) {
      const auto eq = a.find('=');
      if (eq != std::string::npos) {
        value = a.substr(eq + 1);
        a = a.substr(0, eq);
        has_value = true;
      }
    } else {
      if (file->empty()) {
        *file = a;
      } else {
        errors.push_back(absl::StrCat("unexpected argument: ", a));
      }
      continue;
    }
    auto need = [&]() -> bool {
      if (has_value) return true;
      if (i + 1 < args.size()) {
        value = args[++i];
        return true;
      }
      errors.push_back(absl::StrCat(a, " needs a value"));
      return false;
    };
    if (a == "--json") {
      *json = true;
    } else if (a == "--time") {
      if (need()) spec.time_column = value;
    } else if (a == "--event") {
      if (need()) {
        const auto eq = value.find('=');
        if (eq == std::string::npos || eq == 0 || eq + 1 == value.size()) {
          errors.push_back("--event must be COL=V[,V...]");
        } else {
          spec.event_column = value.substr(0, eq);
          spec.event_values = split_list(value.substr(eq + 1));
        }
      }
    } else if (a == "--endpoint") {
      if (need()) {
        if (value != "os" && value != "pfs") {
          errors.push_back("--endpoint must be os or pfs");
        } else {
          spec.endpoint = value;
        }
      }
    } else if (a == "--group") {
      if (need()) spec.group = value;
    } else if (a == "--covariates") {
      if (need()) spec.covariates = split_list(value);
    } else if (a == "--ps-covariates") {
      if (need()) spec.ps_covariates = split_list(value);
    } else if (a == "--reference") {
      if (need()) {
        const auto eq = value.find('=');
        if (eq == std::string::npos || eq == 0) {
          errors.push_back("--reference must be COL=LEVEL");
        } else {
          spec.reference[value.substr(0, eq)] = value.substr(eq + 1);
        }
      }
    } else if (a == "--at-times") {
      if (need()) {
        for (const auto& p : split_list(value)) {
          double v;
          if (!absl::SimpleAtod(p, &v)) {
            errors.push_back(absl::StrCat("--at-times: not a number: ", p));
          } else {
            spec.at_times.push_back(v);
          }
        }
      }
    } else if (a == "--conf-type") {
      if (need()) {
        if (value == "log") {
          spec.conf_type = sv::ConfType::kLog;
        } else if (value == "log-log") {
          spec.conf_type = sv::ConfType::kLogLog;
        } else if (value == "plain") {
          spec.conf_type = sv::ConfType::kPlain;
        } else {
          errors.push_back("--conf-type must be log, log-log or plain");
        }
      }
    } else if (a == "--conf-int") {
      if (need()) {
        double v;
        if (!absl::SimpleAtod(value, &v) || !(v > 0 && v < 1)) {
          errors.push_back("--conf-int must be in (0, 1)");
        } else {
          spec.conf_int = v;
        }
      }
    } else if (a == "--estimand") {
      if (need()) {
        if (value == "ate" || value == "ATE") {
          spec.iptw.estimand = sv::Estimand::kAte;
        } else if (value == "att" || value == "ATT") {
          spec.iptw.estimand = sv::Estimand::kAtt;
        } else {
          errors.push_back("--estimand must be ate or att");
        }
      }
    } else if (a == "--stabilised" || a == "--stabilized") {
      spec.iptw.stabilised = true;
    } else if (a == "--trim") {
      if (need()) {
        double v;
        if (!absl::SimpleAtod(value, &v) || !(v >= 0 && v < 0.5)) {
          errors.push_back("--trim must be in [0, 0.5)");
        } else {
          spec.iptw.trim = v;
        }
      }
    } else if (a == "--ae-column") {
      if (need()) spec.ae_column = value;
    } else {
      errors.push_back(absl::StrCat("unknown option: ", a));
    }
  }
  if (file->empty()) errors.push_back("missing FILE.csv");
  if (spec.endpoint.empty()) {
    if (spec.time_column.empty()) errors.push_back("--time (or --endpoint) is required");
    if (spec.event_column.empty()) errors.push_back("--event (or --endpoint) is required");
  } else if (!spec.time_column.empty() || !spec.event_column.empty()) {
    errors.push_back("--endpoint replaces --time/--event; give one or the other");
  }
  if (!errors.empty()) return absl::InvalidArgumentError(absl::StrJoin(errors, "; "));
  return spec;
}

namespace {

constexpr char kUsage[] =
    "usage: analyse FILE.csv --time COL --event COL=V[,V...] [--group COL]\n"
    "         [--covariates A,B,log(C)] [--ps-covariates A,log(C)] [--reference COL=LEVEL]...\n"
    "         [--at-times T,T...] [--conf-type log|log-log|plain] [--conf-int 0.95]\n"
    "         [--estimand ate|att] [--stabilised] [--trim P] [--ae-column COL] --json\n"
    "       analyse FILE.csv --endpoint os|pfs ...   (RWD cohort format)\n";

std::string Fmt(const Json& v) {
  if (v.is_null()) return "NA";
  if (v.is_number()) return absl::StrFormat("%.4g", v.get<double>());
  return v.dump();
}

void PrintSummary(const Json& j, std::ostream& out) {
  out << "rows analysed: " << j["analysis_rows"] << " of " << j["csv_rows"] << " (" << j["time_unit"].get<std::string>()
      << ")\n";
  auto curves = [&](const Json& km) {
    for (auto it = km["curves"].begin(); it != km["curves"].end(); ++it) {
      const Json& c = it.value();
      out << "  " << it.key() << ": n=" << c["n"] << " events=" << Fmt(c["events"]) << " median "
          << Fmt(c["median"]) << " (95% CI " << Fmt(c["median_lcl"]) << "-" << Fmt(c["median_ucl"]) << ")\n";
    }
  };
  out << "Kaplan-Meier\n";
  curves(j["km"]["overall"]);
  if (j["km"].contains("by_group")) curves(j["km"]["by_group"]);
  if (j.contains("survdiff"))
    out << "log-rank: chisq=" << Fmt(j["survdiff"]["chisq"]) << " df=" << j["survdiff"]["df"]
        << " p=" << Fmt(j["survdiff"]["p"]) << "\n";
  if (j.contains("coxph")) {
    for (auto it = j["coxph"].begin(); it != j["coxph"].end(); ++it) {
      const Json& e = it.value()["efron"];
      out << "Cox (" << it.key() << ", Efron): " << e["formula"].get<std::string>() << "\n";
      for (auto t = e["terms"].begin(); t != e["terms"].end(); ++t)
        out << "  " << t.key() << ": HR " << Fmt(t.value()["hr"]) << " (" << Fmt(t.value()["hr_lower"]) << "-"
            << Fmt(t.value()["hr_upper"]) << ") p=" << Fmt(t.value()["p"]) << "\n";
    }
  }
  if (j.contains("weighted")) {
    const Json& e = j["weighted"]["coxph"]["efron"];
    for (auto t = e["terms"].begin(); t != e["terms"].end(); ++t)
      out << "IPTW Cox: " << t.key() << ": HR " << Fmt(t.value()["hr"]) << " (robust CI "
          << Fmt(t.value()["robust_hr_lower"]) << "-" << Fmt(t.value()["robust_hr_upper"]) << ")\n";
  }
  for (const auto& w : j["warnings"]) out << "warning: " << w.get<std::string>() << "\n";
}

}  // namespace

int RunAnalyseCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  std::string file;
  bool json = false;
  auto spec = ParseAnalyseArgs(args, &file, &json);
  if (!spec.ok()) {
    err << "analyse: " << spec.status().message() << "\n" << kUsage;
    return 2;
  }
  auto table = ReadCsvFile(file);
  if (!table.ok()) {
    err << "analyse: " << file << ": " << table.status().message() << "\n";
    return 1;
  }
  auto result = RunAnalysis(*table, *spec);
  if (!result.ok()) {
    err << "analyse: " << result.status().message() << "\n";
    return 1;
  }
  if (json) {
    out << DumpJson(*result) << "\n";
  } else {
    PrintSummary(*result, out);
  }
  return 0;
}

}  // namespace medkoord::analyse
