#include "services/shortage/allocation.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace medkoord::shortage {
namespace {

using Int128 = __int128;

// A region competing for packs beyond its minimum. Its k-th extra pack is
// "bid" at the cover it had before receiving it: (base + k) / consumption.
struct Bidder {
  size_t index = 0;
  int64_t base = 0;          // stock + minimum
  int64_t consumption = 0;   // milli-packs a week, > 0
  int64_t patients = 0;
  int64_t extra = 0;         // packs won beyond the minimum
};

// The greedy's total order on bids: lower cover first, then more patients on
// treatment, then the earlier region. Exact: compares (a+ka)/ca with
// (b+kb)/cb by cross-multiplication.
bool Precedes(const Bidder& a, int64_t ka, const Bidder& b, int64_t kb) {
  const Int128 lhs = static_cast<Int128>(a.base + ka) * b.consumption;
  const Int128 rhs = static_cast<Int128>(b.base + kb) * a.consumption;
  if (lhs != rhs) return lhs < rhs;
  if (a.patients != b.patients) return a.patients > b.patients;
  return a.index < b.index;
}

// How many of this bidder's bids lie below cover `level` (weeks).
int64_t BidsBelow(const Bidder& b, double level) {
  const double k = std::ceil(level * static_cast<double>(b.consumption) / 1000.0 - static_cast<double>(b.base));
  if (!(k > 0)) return 0;
  return static_cast<int64_t>(std::min(k, 4.0e18));
}

// Distributes `quantity` packs among `bidders` as the greedy would: the
// `quantity` smallest bids in the total order above. A bisection on the
// (floating-point) water level gets close; exact steps finish the job.
void WaterFill(std::vector<Bidder>& bidders, int64_t quantity) {
  if (bidders.empty() || quantity == 0) return;
  int64_t max_base = 0;
  int64_t min_consumption = std::numeric_limits<int64_t>::max();
  for (const Bidder& b : bidders) {
    max_base = std::max(max_base, b.base);
    min_consumption = std::min(min_consumption, b.consumption);
  }
  double lo = 0;
  double hi = (static_cast<double>(max_base) + static_cast<double>(quantity) + 1) * 1000.0 /
                  static_cast<double>(min_consumption) + 1;
  auto count = [&](double level) {
    Int128 total = 0;
    for (const Bidder& b : bidders) total += BidsBelow(b, level);
    return total;
  };
  for (int i = 0; i < 200 && hi - lo > 0; ++i) {
    const double mid = lo + (hi - lo) / 2;
    if (mid <= lo || mid >= hi) break;
    if (count(mid) <= quantity) lo = mid; else hi = mid;
  }
  // One bid less per region than the level suggests, so rounding can only
  // leave packs over, never hand out too many.
  int64_t given = 0;
  for (Bidder& b : bidders) {
    b.extra = std::max<int64_t>(0, BidsBelow(b, lo) - 1);
    given += b.extra;
  }
  if (given > quantity) {  // cannot happen with a sane level; stay exact anyway
    for (Bidder& b : bidders) b.extra = 0;
    given = 0;
  }
  auto cheapest_next = [&]() {
    size_t best = 0;
    for (size_t i = 1; i < bidders.size(); ++i) {
      if (Precedes(bidders[i], bidders[i].extra, bidders[best], bidders[best].extra)) best = i;
    }
    return best;
  };
  for (; given < quantity; ++given) ++bidders[cheapest_next()].extra;
  // Exchange argument: while some untaken bid precedes some taken one, swap
  // them. Each swap strictly improves the set, so this ends at the greedy's.
  while (true) {
    const size_t in = cheapest_next();
    std::optional<size_t> out;
    for (size_t i = 0; i < bidders.size(); ++i) {
      if (bidders[i].extra == 0) continue;
      if (!out || Precedes(bidders[*out], bidders[*out].extra - 1, bidders[i], bidders[i].extra - 1)) out = i;
    }
    if (!out || !Precedes(bidders[in], bidders[in].extra, bidders[*out], bidders[*out].extra - 1)) break;
    ++bidders[in].extra;
    --bidders[*out].extra;
  }
}

std::string Packs(int64_t n) { return absl::StrCat(n, n == 1 ? " pack" : " packs"); }

}  // namespace

Cover WeeksOfCover(int64_t stock_packs, int64_t weekly_consumption_millipacks) {
  if (weekly_consumption_millipacks <= 0) return Cover::Unbounded();
  return Cover{false, static_cast<double>(stock_packs) * 1000.0 / static_cast<double>(weekly_consumption_millipacks)};
}

std::string FormatCover(const Cover& cover) {
  if (cover.unbounded) return "unbounded (no consumption)";
  return absl::StrFormat("%.1f weeks", cover.weeks);
}

std::optional<int64_t> ConsumptionToMillipacks(double packs_per_week) {
  if (!std::isfinite(packs_per_week) || packs_per_week < 0) return std::nullopt;
  const double scaled = packs_per_week * 1000.0;
  if (scaled > static_cast<double>(kMaxWeeklyConsumptionMillipacks)) return std::nullopt;
  const double rounded = std::round(scaled);
  if (std::fabs(scaled - rounded) > 1e-6 * std::max(1.0, scaled)) return std::nullopt;
  return static_cast<int64_t>(rounded);
}

double MillipacksToPacks(int64_t millipacks) { return static_cast<double>(millipacks) / 1000.0; }

absl::StatusOr<AllocationPlan> PlanAllocation(const std::vector<RegionInput>& regions, int64_t quantity_packs) {
  if (regions.empty()) return absl::FailedPreconditionError("no region positions to allocate between");
  if (quantity_packs < 1 || quantity_packs > kMaxAllocationPacks) {
    return absl::InvalidArgumentError(
        absl::StrCat("quantity_packs: must be between 1 and ", kMaxAllocationPacks, ", got ", quantity_packs));
  }
  int64_t minimums = 0;
  for (const RegionInput& r : regions) {
    if (r.minimum_packs < 0) {
      return absl::InvalidArgumentError(absl::StrCat("minimums: ", r.label, " has a negative minimum"));
    }
    if (r.stock_packs < 0 || r.weekly_consumption_millipacks < 0 || r.patients_on_treatment < 0) {
      return absl::InvalidArgumentError(absl::StrCat("positions: ", r.label, " has a negative figure"));
    }
    minimums += r.minimum_packs;
  }
  if (minimums > quantity_packs) {
    return absl::InvalidArgumentError(absl::StrCat("minimums: add up to ", minimums,
                                                   " packs, more than quantity_packs (", quantity_packs, ")"));
  }

  AllocationPlan plan;
  plan.reasoning.push_back(absl::StrCat("To share: ", Packs(quantity_packs), " between ", regions.size(),
                                        " regions, in whole packs."));
  for (const RegionInput& r : regions) {
    plan.reasoning.push_back(absl::StrFormat(
        "%s: %s on hand, %s packs a week, %d patients on treatment: cover %s.", r.label, Packs(r.stock_packs),
        absl::StrFormat("%g", MillipacksToPacks(r.weekly_consumption_millipacks)), r.patients_on_treatment,
        FormatCover(WeeksOfCover(r.stock_packs, r.weekly_consumption_millipacks))));
  }
  if (minimums > 0) {
    std::vector<std::string> parts;
    for (const RegionInput& r : regions) {
      if (r.minimum_packs > 0) parts.push_back(absl::StrCat(r.label, " ", Packs(r.minimum_packs)));
    }
    plan.reasoning.push_back(absl::StrCat("Minimums first (", Packs(minimums), "): ", absl::StrJoin(parts, ", "), "."));
  }

  const bool anyone_consumes = std::any_of(regions.begin(), regions.end(),
                                           [](const RegionInput& r) { return r.weekly_consumption_millipacks > 0; });
  std::vector<Bidder> bidders;
  std::vector<std::string> unbounded;
  for (size_t i = 0; i < regions.size(); ++i) {
    const RegionInput& r = regions[i];
    if (anyone_consumes && r.weekly_consumption_millipacks == 0) {
      unbounded.push_back(r.label);
      continue;
    }
    // With no consumption anywhere, cover is unbounded everywhere; equalise
    // stock on hand instead (every region "consumes" one pack a week).
    bidders.push_back(Bidder{i, r.stock_packs + r.minimum_packs,
                             anyone_consumes ? r.weekly_consumption_millipacks : 1000, r.patients_on_treatment, 0});
  }
  if (!unbounded.empty()) {
    plan.reasoning.push_back(absl::StrCat(absl::StrJoin(unbounded, ", "),
                                          ": no consumption, so cover is unbounded; minimum only."));
  }
  const int64_t rest = quantity_packs - minimums;
  if (rest > 0) {
    plan.reasoning.push_back(
        anyone_consumes
            ? absl::StrCat("The remaining ", Packs(rest),
                           " go one by one to the region with the lowest weeks of cover at that moment; "
                           "equal cover goes to the region with more patients on treatment.")
            : absl::StrCat("No region consumes this medicine, so the remaining ", Packs(rest),
                           " even out stock on hand instead; equal stock goes to more patients on treatment."));
  }
  WaterFill(bidders, rest);

  plan.shares.resize(regions.size());
  for (size_t i = 0; i < regions.size(); ++i) plan.shares[i].packs = regions[i].minimum_packs;
  for (const Bidder& b : bidders) plan.shares[b.index].packs += b.extra;
  std::optional<size_t> lowest;
  for (size_t i = 0; i < regions.size(); ++i) {
    const RegionInput& r = regions[i];
    RegionShare& s = plan.shares[i];
    s.cover_before = WeeksOfCover(r.stock_packs, r.weekly_consumption_millipacks);
    s.cover_after = WeeksOfCover(r.stock_packs + s.packs, r.weekly_consumption_millipacks);
    plan.reasoning.push_back(absl::StrCat(r.label, ": +", Packs(s.packs), ", cover ", FormatCover(s.cover_before),
                                          " -> ", FormatCover(s.cover_after), "."));
    if (!s.cover_after.unbounded && (!lowest || s.cover_after.weeks < plan.shares[*lowest].cover_after.weeks)) {
      lowest = i;
    }
  }
  if (lowest && anyone_consumes) {
    plan.reasoning.push_back(absl::StrCat("Lowest cover after allocation: ",
                                          FormatCover(plan.shares[*lowest].cover_after), " (",
                                          regions[*lowest].label, ")."));
  }
  return plan;
}

}  // namespace medkoord::shortage
