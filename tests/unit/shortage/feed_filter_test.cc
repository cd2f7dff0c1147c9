#include "services/shortage/feed_filter.h"

#include <gtest/gtest.h>

#include "common/status.h"

namespace medkoord::shortage {
namespace {

EventKey Key(v1::EventType type, std::string shortage = "peg-2024", std::string atc = "L03AB11", int region = 0) {
  return EventKey{1, type, std::move(shortage), std::move(atc), region};
}

Principal WithRoles(std::initializer_list<common::v1::Role> roles, common::v1::Region region = {}) {
  Principal p;
  p.set_id("p");
  for (auto r : roles) p.add_roles(r);
  p.set_region(region);
  return p;
}

TEST(FeedFilterTest, EmptyFilterPassesEverything) {
  FeedFilter f;
  EXPECT_TRUE(f.Matches(Key(v1::EVENT_TYPE_MEETING_CREATED)));
  EXPECT_TRUE(f.Matches(Key(v1::EVENT_TYPE_POSITION_REPORTED, "x", "A01", 3)));
}

TEST(FeedFilterTest, RequestFilters) {
  v1::WatchShortagesRequest request;
  request.add_shortages("shortages/peg-2024");
  request.add_event_types(v1::EVENT_TYPE_GUIDANCE_PUBLISHED);
  request.set_atc_prefix("L03");
  auto f = MakeFeedFilter(request, WithRoles({common::v1::ROLE_TASK_FORCE}));
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_TRUE(f->Matches(Key(v1::EVENT_TYPE_GUIDANCE_PUBLISHED)));
  EXPECT_FALSE(f->Matches(Key(v1::EVENT_TYPE_SHORTAGE_UPDATED)));
  EXPECT_FALSE(f->Matches(Key(v1::EVENT_TYPE_GUIDANCE_PUBLISHED, "other")));
  EXPECT_FALSE(f->Matches(Key(v1::EVENT_TYPE_GUIDANCE_PUBLISHED, "peg-2024", "N02BE01")));
}

TEST(FeedFilterTest, RegionSeesOwnPositionsApprovedAllocationsNoMeetings) {
  auto f = MakeFeedFilter(v1::WatchShortagesRequest(),
                          WithRoles({common::v1::ROLE_REGION}, common::v1::REGION_SJAELLAND));
  ASSERT_TRUE(f.ok());
  EXPECT_TRUE(f->Matches(Key(v1::EVENT_TYPE_POSITION_REPORTED, "peg-2024", "L03AB11", common::v1::REGION_SJAELLAND)));
  EXPECT_FALSE(f->Matches(Key(v1::EVENT_TYPE_POSITION_REPORTED, "peg-2024", "L03AB11", common::v1::REGION_SYDDANMARK)));
  EXPECT_TRUE(f->Matches(Key(v1::EVENT_TYPE_ALLOCATION_APPROVED)));
  EXPECT_FALSE(f->Matches(Key(v1::EVENT_TYPE_ALLOCATION_PROPOSED)));
  EXPECT_FALSE(f->Matches(Key(v1::EVENT_TYPE_MEETING_CREATED)));
  EXPECT_FALSE(f->Matches(Key(v1::EVENT_TYPE_ACTION_UPDATED)));
  EXPECT_TRUE(f->Matches(Key(v1::EVENT_TYPE_GUIDANCE_PUBLISHED)));
  EXPECT_TRUE(f->Matches(Key(v1::EVENT_TYPE_SHORTAGE_STATUS_CHANGED)));
}

TEST(FeedFilterTest, RegionRoleWithBroaderRoleIsNotScoped) {
  EXPECT_FALSE(IsRegionScoped(WithRoles({common::v1::ROLE_REGION, common::v1::ROLE_TASK_FORCE},
                                        common::v1::REGION_SJAELLAND)));
  EXPECT_TRUE(IsRegionScoped(WithRoles({common::v1::ROLE_REGION}, common::v1::REGION_SJAELLAND)));
}

TEST(FeedFilterTest, RegionCallerWithoutRegionIsRefused) {
  auto f = MakeFeedFilter(v1::WatchShortagesRequest(), WithRoles({common::v1::ROLE_REGION}));
  EXPECT_EQ(f.status().code(), absl::StatusCode::kPermissionDenied);
}

TEST(FeedFilterTest, BadRequestNamesFields) {
  v1::WatchShortagesRequest request;
  request.set_after_sequence(-1);
  request.add_shortages("nope");
  request.add_event_types(static_cast<v1::EventType>(99));
  auto f = MakeFeedFilter(request, WithRoles({common::v1::ROLE_TASK_FORCE}));
  ASSERT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument);
  std::vector<std::string> fields;
  for (const auto& [field, why] : FieldViolationsOf(f.status())) fields.push_back(field);
  EXPECT_EQ(fields, (std::vector<std::string>{"after_sequence", "shortages[0]", "event_types[0]"}));
}

}  // namespace
}  // namespace medkoord::shortage
