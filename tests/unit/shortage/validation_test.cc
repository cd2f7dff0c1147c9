#include "services/shortage/validation.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/status.h"
#include "services/shortage/allocation.h"

namespace medkoord::shortage {
namespace {

using ::testing::Pair;
using ::testing::UnorderedElementsAre;
using ::testing::Contains;
using ::testing::Key;

std::vector<std::string> Fields(const absl::Status& s) {
  std::vector<std::string> out;
  for (const auto& [field, description] : FieldViolationsOf(s)) out.push_back(field);
  return out;
}

v1::AnnounceShortageRequest GoodAnnounce() {
  v1::AnnounceShortageRequest r;
  auto* s = r.mutable_shortage();
  s->mutable_drug()->set_name("peginterferon alfa-2a");
  s->mutable_drug()->set_atc_code("L03AB11");
  s->mutable_drug()->set_strength("90 mikrogram");
  s->mutable_drug()->set_form("injektionsvæske");
  s->mutable_drug()->set_pack("1 stk.");
  s->mutable_announced_on()->set_year(2024);
  s->mutable_announced_on()->set_month(3);
  s->mutable_announced_on()->set_day(4);
  s->set_criticality(v1::CRITICALITY_HIGH);
  s->set_source("Lægemiddelstyrelsen");
  return r;
}

TEST(ValidationTest, GoodAnnouncementPasses) { EXPECT_TRUE(ValidateAnnounce(GoodAnnounce()).ok()); }

TEST(ValidationTest, AnnouncementReportsEveryBadField) {
  v1::AnnounceShortageRequest r = GoodAnnounce();
  r.mutable_shortage()->mutable_drug()->set_atc_code("L03A");
  r.mutable_shortage()->mutable_drug()->clear_name();
  r.mutable_shortage()->mutable_announced_on()->set_month(13);
  r.mutable_shortage()->set_criticality(v1::CRITICALITY_UNSPECIFIED);
  r.mutable_shortage()->mutable_expected_start()->set_year(2024);
  r.mutable_shortage()->mutable_expected_start()->set_month(5);
  r.mutable_shortage()->mutable_expected_start()->set_day(1);
  r.mutable_shortage()->mutable_expected_end()->set_year(2024);
  r.mutable_shortage()->mutable_expected_end()->set_month(4);
  r.mutable_shortage()->mutable_expected_end()->set_day(1);
  r.set_shortage_id("Bad Id");
  absl::Status s = ValidateAnnounce(r);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Fields(s), UnorderedElementsAre("shortage.drug.atc_code", "shortage.drug.name",
                                              "shortage.announced_on", "shortage.criticality",
                                              "shortage.expected_end", "shortage_id"));
}

v1::ReportPositionRequest GoodPosition() {
  v1::ReportPositionRequest r;
  r.set_parent("shortages/peg-2024");
  r.mutable_position()->set_region(common::v1::REGION_SYDDANMARK);
  r.mutable_position()->set_stock_packs(120);
  r.mutable_position()->set_weekly_consumption_packs(12.5);
  r.mutable_position()->set_patients_on_treatment(48);
  return r;
}

TEST(ValidationTest, PositionBounds) {
  const absl::Time now = absl::FromUnixSeconds(1'720'000'000);
  EXPECT_TRUE(ValidateReportPosition(GoodPosition(), now).ok());

  v1::ReportPositionRequest bad = GoodPosition();
  bad.set_parent("regions/x");
  bad.mutable_position()->set_region(common::v1::REGION_UNSPECIFIED);
  bad.mutable_position()->set_stock_packs(-1);
  bad.mutable_position()->set_weekly_consumption_packs(-2);
  bad.mutable_position()->set_patients_on_treatment(-3);
  bad.mutable_position()->mutable_as_of()->set_seconds(1'720'000'000 + 86400);
  EXPECT_THAT(Fields(ValidateReportPosition(bad, now)),
              UnorderedElementsAre("parent", "position.region", "position.stock_packs",
                                   "position.weekly_consumption_packs", "position.patients_on_treatment",
                                   "position.as_of"));

  v1::ReportPositionRequest absurd = GoodPosition();
  absurd.mutable_position()->set_stock_packs(kMaxStockPacks + 1);
  absurd.mutable_position()->set_weekly_consumption_packs(1e12);
  absurd.mutable_position()->set_patients_on_treatment(2'000'000);
  EXPECT_THAT(Fields(ValidateReportPosition(absurd, now)),
              UnorderedElementsAre("position.stock_packs", "position.weekly_consumption_packs",
                                   "position.patients_on_treatment"));

  v1::ReportPositionRequest unknown_region = GoodPosition();
  unknown_region.mutable_position()->set_region(static_cast<common::v1::Region>(9));
  EXPECT_THAT(Fields(ValidateReportPosition(unknown_region, now)), UnorderedElementsAre("position.region"));
}

TEST(ValidationTest, ZeroConsumptionIsValid) {
  v1::ReportPositionRequest r = GoodPosition();
  r.mutable_position()->set_weekly_consumption_packs(0);
  EXPECT_TRUE(ValidateReportPosition(r, absl::FromUnixSeconds(1'720'000'000)).ok());
}

TEST(ValidationTest, ProposalMinimums) {
  v1::ProposeAllocationRequest r;
  r.set_parent("shortages/peg-2024");
  r.set_quantity_packs(10);
  r.set_source(v1::ALLOCATION_SOURCE_INCOMING);
  auto* m = r.add_minimums();
  m->set_region(common::v1::REGION_SJAELLAND);
  m->set_packs(6);
  EXPECT_TRUE(ValidateProposeAllocation(r).ok());
  auto* m2 = r.add_minimums();
  m2->set_region(common::v1::REGION_SJAELLAND);
  m2->set_packs(6);
  EXPECT_THAT(Fields(ValidateProposeAllocation(r)), UnorderedElementsAre("minimums[1].region", "minimums"));
  r.set_quantity_packs(0);
  r.set_source(v1::ALLOCATION_SOURCE_UNSPECIFIED);
  EXPECT_THAT(Fields(ValidateProposeAllocation(r)), Contains("quantity_packs"));
  EXPECT_THAT(Fields(ValidateProposeAllocation(r)), Contains("source"));
}

TEST(ValidationTest, AmendmentMustAddUp) {
  v1::ApproveAllocationRequest r;
  r.set_name("shortages/peg-2024/allocations/1");
  EXPECT_TRUE(ValidateAmendment(r, 100).ok()) << "approve as proposed";
  for (int region = 1; region <= 5; ++region) {
    auto* line = r.add_amended_lines();
    line->set_region(static_cast<common::v1::Region>(region));
    line->set_packs(20);
  }
  r.set_amendment_reason("Nordjylland has a ward closing");
  EXPECT_TRUE(ValidateAmendment(r, 100).ok());
  EXPECT_THAT(Fields(ValidateAmendment(r, 99)), UnorderedElementsAre("amended_lines"));
  r.mutable_amended_lines(4)->set_packs(-1);
  r.mutable_amended_lines(3)->set_region(common::v1::REGION_HOVEDSTADEN);
  r.clear_amendment_reason();
  EXPECT_THAT(Fields(ValidateAmendment(r, 100)),
              UnorderedElementsAre("amended_lines[4].packs", "amended_lines[3].region", "amended_lines",
                                   "amended_lines", "amendment_reason"));
}

TEST(ValidationTest, Names) {
  EXPECT_EQ(*ParseShortageName("shortages/peg-2024", "name"), "peg-2024");
  EXPECT_FALSE(ParseShortageName("shortages/", "name").ok());
  EXPECT_FALSE(ParseShortageName("shortages/x/y", "name").ok());
  auto child = ParseChildName("shortages/peg-2024/guidance/latest", "guidance", "name");
  ASSERT_TRUE(child.ok());
  EXPECT_EQ(child->child_id, "latest");
  EXPECT_FALSE(ParseChildName("shortages/peg-2024/meetings/3", "guidance", "name").ok());
  EXPECT_EQ(*ParseNumericId("42", "name"), 42);
  EXPECT_FALSE(ParseNumericId("x", "name").ok());
}

TEST(ValidationTest, GuidanceAndActions) {
  v1::PublishGuidanceRequest g;
  g.set_parent("shortages/peg-2024");
  g.mutable_guidance()->set_summary("Use ropeginterferon where possible");
  auto* alt = g.mutable_guidance()->add_alternatives();
  alt->set_drug_name("ropeginterferon alfa-2b");
  alt->set_atc_code("L03AB15");
  auto* p1 = g.mutable_guidance()->add_priority_groups();
  p1->set_rank(1);
  p1->set_description("pregnant women");
  EXPECT_TRUE(ValidatePublishGuidance(g).ok());
  alt->set_atc_code("X");
  auto* p2 = g.mutable_guidance()->add_priority_groups();
  p2->set_rank(1);
  EXPECT_THAT(Fields(ValidatePublishGuidance(g)),
              UnorderedElementsAre("guidance.alternatives[0].atc_code", "guidance.priority_groups[1].rank",
                                   "guidance.priority_groups[1].description"));

  v1::UpdateActionRequest u;
  u.mutable_action()->set_name("shortages/peg-2024/actions/3");
  u.mutable_update_mask()->add_paths("status");
  u.mutable_update_mask()->add_paths("name");
  EXPECT_THAT(Fields(ValidateUpdateAction(u)), UnorderedElementsAre("action.status", "update_mask.paths[1]"));
}

}  // namespace
}  // namespace medkoord::shortage
