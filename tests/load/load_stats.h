#pragma once
// The figures of the load/soak driver (tests/load/load_main.cc), kept apart
// from any I/O so that they are unit-tested: a latency histogram that many
// threads record into without a lock, the weighted choice of the next call of
// the mix, and the reading and judging of process memory samples.

#include <array>
#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/time/time.h"

namespace medkoord::load {

// Latencies in log-spaced buckets (each 2 % wider than the one before, from
// 1 us to about 1,000 s), so a percentile is exact to within 2 % and
// recording is one atomic increment: the 1,000 feed subscribers record every
// event they receive from gRPC's callback threads.
class LatencyHistogram {
 public:
  static constexpr int kBuckets = 1400;

  void Record(absl::Duration latency);
  int64_t Count() const;
  // The q-quantile (0 < q <= 1), as the upper bound of the bucket holding it;
  // zero when nothing was recorded.
  absl::Duration Quantile(double q) const;
  absl::Duration Max() const;

  static int BucketOf(int64_t micros);
  static int64_t UpperBoundMicros(int bucket);

 private:
  std::array<std::atomic<int64_t>, kBuckets> buckets_{};
  std::atomic<int64_t> max_micros_{0};
};

// Picks the next call of the mix by weight from a uniform number in [0, 1),
// so the mix's proportions are fixed by the weights and testable.
class WeightedChoice {
 public:
  explicit WeightedChoice(std::vector<int> weights);
  int Pick(double uniform01) const;
  int size() const { return static_cast<int>(cumulative_.size()); }

 private:
  std::vector<int64_t> cumulative_;
};

// VmRSS of a /proc/<pid>/status text, in KiB; nullopt when absent (a kernel
// thread, or a process that is gone).
std::optional<int64_t> ParseVmRssKib(std::string_view proc_status);

struct RssSample {
  absl::Duration at;  // since the load started
  int64_t kib = 0;
};

// Whether one process's memory stayed flat over the run: the mean of the
// samples in the first minute against the mean of those in the last minute.
// Growth is allowed up to the larger of `limit_kib` and `limit_fraction` of
// the first minute's mean (allocator arenas and caches settle in a while).
struct RssVerdict {
  int64_t first_minute_kib = 0;
  int64_t last_minute_kib = 0;
  int64_t peak_kib = 0;
  int64_t allowed_growth_kib = 0;
  double growth_kib_per_minute = 0;  // least-squares slope over all samples
  bool enough_samples = false;       // at least one sample in each minute, and two minutes apart
  bool flat = true;
};
RssVerdict JudgeRss(const std::vector<RssSample>& samples, absl::Duration run_length, int64_t limit_kib,
                    double limit_fraction);

}  // namespace medkoord::load
