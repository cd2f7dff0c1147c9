#include "services/shortage/allocation.h"

#include <cmath>
#include <numeric>
#include <random>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace medkoord::shortage {
namespace {

using ::testing::HasSubstr;

RegionInput Region(std::string label, int64_t stock, double consumption, int64_t patients, int64_t minimum = 0) {
  return RegionInput{std::move(label), stock, *ConsumptionToMillipacks(consumption), patients, minimum};
}

std::vector<int64_t> Packs(const AllocationPlan& plan) {
  std::vector<int64_t> out;
  for (const RegionShare& s : plan.shares) out.push_back(s.packs);
  return out;
}

TEST(WeeksOfCoverTest, StockOverWeeklyConsumption) {
  Cover c = WeeksOfCover(10, 2500);
  EXPECT_FALSE(c.unbounded);
  EXPECT_DOUBLE_EQ(c.weeks, 4.0);
  EXPECT_DOUBLE_EQ(WeeksOfCover(0, 1000).weeks, 0.0);
}

TEST(WeeksOfCoverTest, ZeroConsumptionIsUnboundedNotADivisionByZero) {
  EXPECT_TRUE(WeeksOfCover(10, 0).unbounded);
  EXPECT_TRUE(WeeksOfCover(0, 0).unbounded);
  EXPECT_EQ(FormatCover(WeeksOfCover(10, 0)), "unbounded (no consumption)");
  EXPECT_EQ(FormatCover(WeeksOfCover(25, 10000)), "2.5 weeks");
}

TEST(ConsumptionTest, ThreeDecimalsAtMost) {
  EXPECT_EQ(ConsumptionToMillipacks(12.5), 12500);
  EXPECT_EQ(ConsumptionToMillipacks(0), 0);
  EXPECT_EQ(ConsumptionToMillipacks(0.001), 1);
  EXPECT_EQ(ConsumptionToMillipacks(1000000), 1000000000);
  EXPECT_EQ(ConsumptionToMillipacks(0.0001), std::nullopt);
  EXPECT_EQ(ConsumptionToMillipacks(-1), std::nullopt);
  EXPECT_EQ(ConsumptionToMillipacks(std::nan("")), std::nullopt);
  EXPECT_EQ(ConsumptionToMillipacks(INFINITY), std::nullopt);
  EXPECT_EQ(ConsumptionToMillipacks(1000000.5), std::nullopt);
}

TEST(PlanAllocationTest, LowestCoverFirst) {
  // a: 1 week, b: 0 weeks; 10 packs bring b to a's level, then share.
  auto plan = PlanAllocation({Region("a", 10, 10, 5), Region("b", 0, 10, 5)}, 10);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_THAT(Packs(*plan), ::testing::ElementsAre(0, 10));
  EXPECT_DOUBLE_EQ(plan->shares[1].cover_after.weeks, 1.0);
  EXPECT_DOUBLE_EQ(plan->shares[0].cover_before.weeks, 1.0);

  auto more = PlanAllocation({Region("a", 10, 10, 5), Region("b", 0, 10, 5)}, 30);
  ASSERT_TRUE(more.ok());
  EXPECT_THAT(Packs(*more), ::testing::ElementsAre(10, 20));
}

TEST(PlanAllocationTest, TiesGoToMorePatientsOnTreatment) {
  auto plan = PlanAllocation({Region("few", 0, 1, 5), Region("many", 0, 1, 9)}, 1);
  ASSERT_TRUE(plan.ok());
  EXPECT_THAT(Packs(*plan), ::testing::ElementsAre(0, 1));
  // Equal patients too: the earlier region.
  auto same = PlanAllocation({Region("first", 0, 1, 5), Region("second", 0, 1, 5)}, 3);
  ASSERT_TRUE(same.ok());
  EXPECT_THAT(Packs(*same), ::testing::ElementsAre(2, 1));
}

TEST(PlanAllocationTest, ZeroConsumptionRegionGetsOnlyItsMinimum) {
  auto plan = PlanAllocation({Region("idle", 0, 0, 0, 3), Region("busy", 5, 2, 10)}, 20);
  ASSERT_TRUE(plan.ok());
  EXPECT_THAT(Packs(*plan), ::testing::ElementsAre(3, 17));
  EXPECT_TRUE(plan->shares[0].cover_after.unbounded);
  EXPECT_THAT(plan->reasoning, ::testing::Contains(HasSubstr("cover is unbounded")));
}

TEST(PlanAllocationTest, NoConsumptionAnywhereEvensOutStock) {
  auto plan = PlanAllocation({Region("a", 10, 0, 1), Region("b", 0, 0, 1), Region("c", 4, 0, 2)}, 12);
  ASSERT_TRUE(plan.ok());
  // b rises to c's 4, then they alternate (ties to c, more patients) up to 8.
  EXPECT_THAT(Packs(*plan), ::testing::ElementsAre(0, 8, 4));
  EXPECT_THAT(plan->reasoning, ::testing::Contains(HasSubstr("even out stock")));
}

TEST(PlanAllocationTest, MinimumsAreHonouredFirst) {
  auto plan = PlanAllocation({Region("a", 0, 1, 1, 4), Region("b", 0, 1, 1)}, 5);
  ASSERT_TRUE(plan.ok());
  EXPECT_THAT(Packs(*plan), ::testing::ElementsAre(4, 1));
  EXPECT_THAT(plan->reasoning, ::testing::Contains(HasSubstr("Minimums first")));
}

TEST(PlanAllocationTest, RejectsBadInput) {
  EXPECT_EQ(PlanAllocation({}, 5).status().code(), absl::StatusCode::kFailedPrecondition);
  auto zero = PlanAllocation({Region("a", 0, 1, 1)}, 0);
  EXPECT_EQ(zero.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(zero.status().message(), HasSubstr("quantity_packs"));
  auto too_many = PlanAllocation({Region("a", 0, 1, 1, 3), Region("b", 0, 1, 1, 3)}, 5);
  EXPECT_EQ(too_many.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(too_many.status().message(), HasSubstr("minimums"));
  EXPECT_EQ(PlanAllocation({Region("a", 0, 1, 1, -1)}, 5).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(PlanAllocationTest, LargeQuantitiesAreExactAndFast) {
  std::vector<RegionInput> regions = {Region("hovedstaden", 1200, 310.5, 900), Region("midtjylland", 800, 250, 700),
                                      Region("syddanmark", 650, 240.25, 640), Region("sjaelland", 300, 150, 400),
                                      Region("nordjylland", 100, 90, 250)};
  auto plan = PlanAllocation(regions, kMaxAllocationPacks);
  ASSERT_TRUE(plan.ok());
  std::vector<int64_t> packs = Packs(*plan);
  EXPECT_EQ(std::accumulate(packs.begin(), packs.end(), int64_t{0}), kMaxAllocationPacks);
}

TEST(PlanAllocationTest, ReasoningNamesEveryRegion) {
  auto plan = PlanAllocation({Region("hovedstaden", 40, 20, 80), Region("nordjylland", 5, 10, 30)}, 25);
  ASSERT_TRUE(plan.ok());
  const std::string all = ::testing::PrintToString(plan->reasoning);
  EXPECT_THAT(all, HasSubstr("hovedstaden: +"));
  EXPECT_THAT(all, HasSubstr("nordjylland: +"));
  EXPECT_THAT(all, HasSubstr("Lowest cover after allocation"));
}

// ---- Properties on random instances (fixed seed: deterministic) ----------

// The definition the fast algorithm must match: one pack at a time to the
// lowest cover, ties to more patients, then the earlier region.
std::vector<int64_t> NaiveGreedy(const std::vector<RegionInput>& regions, int64_t quantity) {
  std::vector<int64_t> packs;
  int64_t rest = quantity;
  bool anyone = false;
  for (const RegionInput& r : regions) {
    packs.push_back(r.minimum_packs);
    rest -= r.minimum_packs;
    anyone = anyone || r.weekly_consumption_millipacks > 0;
  }
  for (; rest > 0; --rest) {
    std::optional<size_t> best;
    for (size_t i = 0; i < regions.size(); ++i) {
      const int64_t ci = anyone ? regions[i].weekly_consumption_millipacks : 1000;
      if (ci == 0) continue;
      if (!best) { best = i; continue; }
      const size_t b = *best;
      const int64_t cb = anyone ? regions[b].weekly_consumption_millipacks : 1000;
      const __int128 lhs = static_cast<__int128>(regions[i].stock_packs + packs[i]) * cb;
      const __int128 rhs = static_cast<__int128>(regions[b].stock_packs + packs[b]) * ci;
      if (lhs < rhs || (lhs == rhs && regions[i].patients_on_treatment > regions[b].patients_on_treatment)) best = i;
    }
    ++packs[*best];
  }
  return packs;
}

class AllocationPropertyTest : public ::testing::TestWithParam<int> {};

TEST_P(AllocationPropertyTest, ExactNonNegativeMinimumsAndWaterFilling) {
  std::mt19937_64 rng(GetParam());
  auto uniform = [&](int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng); };
  for (int round = 0; round < 200; ++round) {
    const int n = static_cast<int>(uniform(1, 7));
    std::vector<RegionInput> regions;
    int64_t minimums = 0;
    for (int i = 0; i < n; ++i) {
      RegionInput r;
      r.label = "r" + std::to_string(i);
      r.stock_packs = uniform(0, 3) == 0 ? 0 : uniform(0, 1000);
      r.weekly_consumption_millipacks = uniform(0, 4) == 0 ? 0 : uniform(1, 60000);
      r.patients_on_treatment = uniform(0, 3);  // small range: many ties
      r.minimum_packs = uniform(0, 2) == 0 ? uniform(0, 30) : 0;
      minimums += r.minimum_packs;
      regions.push_back(r);
    }
    const int64_t quantity = std::max<int64_t>(1, minimums + uniform(0, 3000));
    auto plan = PlanAllocation(regions, quantity);
    ASSERT_TRUE(plan.ok()) << plan.status();
    std::vector<int64_t> packs = Packs(*plan);
    SCOPED_TRACE(::testing::PrintToString(packs));

    EXPECT_EQ(std::accumulate(packs.begin(), packs.end(), int64_t{0}), quantity);
    bool anyone = false;
    for (int i = 0; i < n; ++i) {
      EXPECT_GE(packs[i], 0);
      EXPECT_GE(packs[i], regions[i].minimum_packs);
      anyone = anyone || regions[i].weekly_consumption_millipacks > 0;
    }
    // Water-filling optimality: no region that got a pack beyond its minimum
    // had, before that last pack, more cover than any other region ends with.
    for (int j = 0; j < n; ++j) {
      const int64_t cj = anyone ? regions[j].weekly_consumption_millipacks : 1000;
      if (cj == 0) {
        EXPECT_EQ(packs[j], regions[j].minimum_packs) << "unbounded cover gets only the minimum";
        continue;
      }
      if (packs[j] == regions[j].minimum_packs) continue;
      for (int i = 0; i < n; ++i) {
        const int64_t ci = anyone ? regions[i].weekly_consumption_millipacks : 1000;
        if (i == j || ci == 0) continue;
        const __int128 before_last_j = static_cast<__int128>(regions[j].stock_packs + packs[j] - 1) * ci;
        const __int128 after_i = static_cast<__int128>(regions[i].stock_packs + packs[i]) * cj;
        EXPECT_LE(before_last_j, after_i) << "region " << j << " got a pack while " << i << " was lower";
      }
    }
    EXPECT_EQ(packs, NaiveGreedy(regions, quantity));
  }
}

INSTANTIATE_TEST_SUITE_P(Seeds, AllocationPropertyTest, ::testing::Values(1, 2, 3, 42, 2024));

}  // namespace
}  // namespace medkoord::shortage
