#pragma once
// Weeks of cover and the allocation of scarce national stock between regions.
// Pure domain code: plain structs in, plain structs out, no I/O.
//
// Consumption is carried as an integer number of milli-packs per week, so
// that comparing two regions' cover is exact (cross-multiplication in 128-bit
// integers) and the allocation never depends on floating-point rounding.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace medkoord::shortage {

// Bounds beyond which a figure is taken as a typing error, not a position.
inline constexpr int64_t kMaxStockPacks = 10'000'000;
inline constexpr int64_t kMaxWeeklyConsumptionMillipacks = 1'000'000'000;  // 1,000,000 packs
inline constexpr int64_t kMaxPatients = 1'000'000;
inline constexpr int64_t kMaxAllocationPacks = 10'000'000;

// Stock on hand divided by weekly consumption. Zero consumption means the
// stock does not run out at the present rate: unbounded, never a division
// by zero.
struct Cover {
  bool unbounded = false;
  double weeks = 0;  // meaningful only when !unbounded

  static Cover Unbounded() { return {true, 0}; }
  friend bool operator==(const Cover& a, const Cover& b) {
    return a.unbounded == b.unbounded && (a.unbounded || a.weeks == b.weeks);
  }
};

Cover WeeksOfCover(int64_t stock_packs, int64_t weekly_consumption_millipacks);

// "12.5 weeks", "unbounded (no consumption)".
std::string FormatCover(const Cover& cover);

// Packs a week as entered (e.g. 12.5) -> milli-packs; nullopt when the value
// is negative, not finite, has more than three decimals or exceeds the bound.
std::optional<int64_t> ConsumptionToMillipacks(double packs_per_week);
double MillipacksToPacks(int64_t millipacks);

// One region's current position plus the minimum it must receive.
struct RegionInput {
  std::string label;                    // for the reasoning, e.g. "syddanmark"
  int64_t stock_packs = 0;
  int64_t weekly_consumption_millipacks = 0;
  int64_t patients_on_treatment = 0;
  int64_t minimum_packs = 0;
};

struct RegionShare {
  int64_t packs = 0;
  Cover cover_before;
  Cover cover_after;
};

struct AllocationPlan {
  std::vector<RegionShare> shares;      // same order as the input
  std::vector<std::string> reasoning;   // human-readable steps
};

// Shares `quantity_packs` whole packs between the regions so that weeks of
// cover come out as equal as possible ("water-filling"): first every region
// gets its minimum; then each further pack goes to the region whose cover is
// lowest at that moment, ties to the region with more patients on treatment,
// then to the earlier region in the input. The result is that greedy
// pack-by-pack outcome, computed in O(R log Q) rather than O(Q log R).
// Regions with zero consumption (unbounded cover) get only their minimum,
// unless no region consumes at all, in which case stock on hand is equalised
// instead. Never negative; sums exactly to `quantity_packs`.
//
// INVALID_ARGUMENT (naming `quantity_packs` or `minimums`) when the quantity
// is out of range, a minimum is negative, or the minimums exceed the
// quantity; FAILED_PRECONDITION when `regions` is empty.
absl::StatusOr<AllocationPlan> PlanAllocation(const std::vector<RegionInput>& regions,
                                              int64_t quantity_packs);

}  // namespace medkoord::shortage
