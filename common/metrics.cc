#include "common/metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace medkoord::metrics {
namespace {

std::string EscapeLabelValue(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out.push_back('\\');
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out.push_back(c);
  }
  return out;
}

std::string LabelString(const Labels& labels, const std::string& extra_key = "", const std::string& extra = "") {
  if (labels.empty() && extra_key.empty()) return "";
  std::string out = "{";
  bool first = true;
  for (const auto& [k, v] : labels) {
    absl::StrAppend(&out, first ? "" : ",", k, "=\"", EscapeLabelValue(v), "\"");
    first = false;
  }
  if (!extra_key.empty()) absl::StrAppend(&out, first ? "" : ",", extra_key, "=\"", extra, "\"");
  out += "}";
  return out;
}

std::string FormatNumber(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (std::isnan(v)) return "NaN";
  // Shortest form that reads back as the same double.
  std::string s = absl::StrFormat("%.15g", v);
  if (std::strtod(s.c_str(), nullptr) != v) s = absl::StrFormat("%.17g", v);
  return s;
}

}  // namespace

struct Registry::Family {
  std::string help;
  std::string type;
  std::map<Labels, std::unique_ptr<Counter>> counters;
  std::map<Labels, std::unique_ptr<Gauge>> gauges;
  std::map<Labels, std::unique_ptr<Histogram>> histograms;
  std::map<Labels, std::function<double()>> callbacks;
};

Registry::Registry() = default;
Registry::~Registry() = default;

Histogram::Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)), buckets_(bounds_.size() + 1, 0) {
  std::sort(bounds_.begin(), bounds_.end());
}

void Histogram::Observe(double v) {
  const size_t i = std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin();
  absl::MutexLock lock(&mu_);
  ++buckets_[i];
  sum_ += v;
  ++count_;
}

Histogram::Snapshot Histogram::snapshot() const {
  Snapshot s;
  s.bounds = bounds_;
  absl::MutexLock lock(&mu_);
  uint64_t running = 0;
  for (uint64_t b : buckets_) {
    running += b;
    s.cumulative.push_back(running);
  }
  s.sum = sum_;
  s.count = count_;
  return s;
}

std::vector<double> LatencyBuckets() {
  return {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

Registry::Family& Registry::GetFamily(const std::string& name, const std::string& help, const std::string& type) {
  auto& f = families_[name];
  if (!f) {
    f = std::make_unique<Family>();
    f->help = help;
    f->type = type;
  }
  return *f;
}

Counter& Registry::GetCounter(const std::string& name, const std::string& help, const Labels& labels) {
  absl::MutexLock lock(&mu_);
  auto& slot = GetFamily(name, help, "counter").counters[labels];
  if (!slot) slot = std::make_unique<Counter>();
  return *slot;
}

Gauge& Registry::GetGauge(const std::string& name, const std::string& help, const Labels& labels) {
  absl::MutexLock lock(&mu_);
  auto& slot = GetFamily(name, help, "gauge").gauges[labels];
  if (!slot) slot = std::make_unique<Gauge>();
  return *slot;
}

Histogram& Registry::GetHistogram(const std::string& name, const std::string& help, const Labels& labels,
                                  std::vector<double> bounds) {
  absl::MutexLock lock(&mu_);
  auto& slot = GetFamily(name, help, "histogram").histograms[labels];
  if (!slot) slot = std::make_unique<Histogram>(std::move(bounds));
  return *slot;
}

void Registry::AddCallbackGauge(const std::string& name, const std::string& help, const Labels& labels,
                                std::function<double()> fn) {
  absl::MutexLock lock(&mu_);
  GetFamily(name, help, "gauge").callbacks[labels] = std::move(fn);
}

std::string Registry::Render() const {
  absl::MutexLock lock(&mu_);
  std::string out;
  for (const auto& [name, f] : families_) {
    absl::StrAppend(&out, "# HELP ", name, " ", f->help, "\n# TYPE ", name, " ", f->type, "\n");
    for (const auto& [labels, c] : f->counters) {
      absl::StrAppend(&out, name, LabelString(labels), " ", FormatNumber(c->value()), "\n");
    }
    for (const auto& [labels, g] : f->gauges) {
      absl::StrAppend(&out, name, LabelString(labels), " ", FormatNumber(g->value()), "\n");
    }
    for (const auto& [labels, fn] : f->callbacks) {
      absl::StrAppend(&out, name, LabelString(labels), " ", FormatNumber(fn()), "\n");
    }
    for (const auto& [labels, h] : f->histograms) {
      Histogram::Snapshot s = h->snapshot();
      for (size_t i = 0; i < s.bounds.size(); ++i) {
        absl::StrAppend(&out, name, "_bucket", LabelString(labels, "le", FormatNumber(s.bounds[i])), " ",
                        s.cumulative[i], "\n");
      }
      absl::StrAppend(&out, name, "_bucket", LabelString(labels, "le", "+Inf"), " ", s.cumulative.back(), "\n");
      absl::StrAppend(&out, name, "_sum", LabelString(labels), " ", FormatNumber(s.sum), "\n");
      absl::StrAppend(&out, name, "_count", LabelString(labels), " ", s.count, "\n");
    }
  }
  return out;
}

Registry& DefaultRegistry() {
  static Registry* registry = new Registry();
  return *registry;
}

}  // namespace medkoord::metrics
