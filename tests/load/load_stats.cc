#include "tests/load/load_stats.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>

namespace medkoord::load {
namespace {

const double kLogGrowth = std::log(1.02);

}  // namespace

int LatencyHistogram::BucketOf(int64_t micros) {
  if (micros <= 1) return 0;
  const int b = static_cast<int>(std::ceil(std::log(static_cast<double>(micros)) / kLogGrowth - 1e-9));
  return std::clamp(b, 0, kBuckets - 1);
}

int64_t LatencyHistogram::UpperBoundMicros(int bucket) {
  return static_cast<int64_t>(std::floor(std::exp(bucket * kLogGrowth) + 1e-6));
}

void LatencyHistogram::Record(absl::Duration latency) {
  const int64_t micros = std::max<int64_t>(0, absl::ToInt64Microseconds(latency));
  buckets_[BucketOf(micros)].fetch_add(1, std::memory_order_relaxed);
  int64_t seen = max_micros_.load(std::memory_order_relaxed);
  while (micros > seen && !max_micros_.compare_exchange_weak(seen, micros, std::memory_order_relaxed)) {
  }
}

int64_t LatencyHistogram::Count() const {
  int64_t n = 0;
  for (const auto& b : buckets_) n += b.load(std::memory_order_relaxed);
  return n;
}

absl::Duration LatencyHistogram::Quantile(double q) const {
  const int64_t total = Count();
  if (total == 0) return absl::ZeroDuration();
  // The smallest bucket whose cumulative count reaches ceil(q * total).
  const int64_t rank = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(q * static_cast<double>(total))));
  int64_t seen = 0;
  for (int i = 0; i < kBuckets; ++i) {
    seen += buckets_[i].load(std::memory_order_relaxed);
    if (seen >= rank) {
      // The top bucket's bound can exceed what was seen: never report more
      // than the maximum.
      return absl::Microseconds(std::min(UpperBoundMicros(i), max_micros_.load(std::memory_order_relaxed)));
    }
  }
  return Max();
}

absl::Duration LatencyHistogram::Max() const { return absl::Microseconds(max_micros_.load(std::memory_order_relaxed)); }

WeightedChoice::WeightedChoice(std::vector<int> weights) {
  int64_t sum = 0;
  for (int w : weights) {
    sum += std::max(0, w);
    cumulative_.push_back(sum);
  }
}

int WeightedChoice::Pick(double uniform01) const {
  if (cumulative_.empty() || cumulative_.back() == 0) return -1;
  const double target = std::clamp(uniform01, 0.0, 1.0) * static_cast<double>(cumulative_.back());
  // The first entry whose cumulative weight is above the target: entries of
  // weight zero are never picked.
  auto it = std::upper_bound(cumulative_.begin(), cumulative_.end(), static_cast<int64_t>(std::floor(target)));
  if (it == cumulative_.end()) --it;
  return static_cast<int>(it - cumulative_.begin());
}

std::optional<int64_t> ParseVmRssKib(std::string_view proc_status) {
  size_t pos = 0;
  while (pos < proc_status.size()) {
    size_t end = proc_status.find('\n', pos);
    if (end == std::string_view::npos) end = proc_status.size();
    std::string_view line = proc_status.substr(pos, end - pos);
    if (line.substr(0, 6) == "VmRSS:") {
      line.remove_prefix(6);
      while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
      int64_t value = 0;
      size_t digits = 0;
      while (digits < line.size() && line[digits] >= '0' && line[digits] <= '9') {
        value = value * 10 + (line[digits] - '0');
        ++digits;
      }
      if (digits == 0) return std::nullopt;
      return value;  // the kernel reports kB (KiB)
    }
    pos = end + 1;
  }
  return std::nullopt;
}

RssVerdict JudgeRss(const std::vector<RssSample>& samples, absl::Duration run_length, int64_t limit_kib,
                    double limit_fraction) {
  RssVerdict v;
  if (samples.empty()) return v;
  const absl::Duration minute = absl::Minutes(1);
  double first_sum = 0, last_sum = 0;
  int first_n = 0, last_n = 0;
  for (const RssSample& s : samples) {
    v.peak_kib = std::max(v.peak_kib, s.kib);
    if (s.at <= minute) {
      first_sum += static_cast<double>(s.kib);
      ++first_n;
    }
    if (s.at >= run_length - minute) {
      last_sum += static_cast<double>(s.kib);
      ++last_n;
    }
  }
  v.enough_samples = first_n > 0 && last_n > 0 && run_length >= 2 * minute;
  if (first_n > 0) v.first_minute_kib = static_cast<int64_t>(std::llround(first_sum / first_n));
  if (last_n > 0) v.last_minute_kib = static_cast<int64_t>(std::llround(last_sum / last_n));
  v.allowed_growth_kib =
      std::max(limit_kib, static_cast<int64_t>(std::llround(limit_fraction * static_cast<double>(v.first_minute_kib))));

  // Least-squares slope of kib over minutes: a steady leak shows here even
  // when it stays under the bound in a short run.
  if (samples.size() >= 2) {
    double mx = 0, my = 0;
    for (const RssSample& s : samples) {
      mx += absl::ToDoubleMinutes(s.at);
      my += static_cast<double>(s.kib);
    }
    mx /= samples.size();
    my /= samples.size();
    double sxy = 0, sxx = 0;
    for (const RssSample& s : samples) {
      const double dx = absl::ToDoubleMinutes(s.at) - mx;
      sxy += dx * (static_cast<double>(s.kib) - my);
      sxx += dx * dx;
    }
    v.growth_kib_per_minute = sxx > 0 ? sxy / sxx : 0;
  }
  v.flat = !v.enough_samples || v.last_minute_kib - v.first_minute_kib <= v.allowed_growth_kib;
  return v;
}

}  // namespace medkoord::load
