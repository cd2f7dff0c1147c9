// The shortage service's gRPC API against a real PostgreSQL: lifecycle,
// region scoping, validation that stores nothing, allocation, guidance,
// meetings and actions.

#include <numeric>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/integration/shortage/shortage_test_env.h"

namespace medkoord::shortage::testing {
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

#define CALL(Method, principal, request, response) \
  Call(&v1::Shortage::Stub::Method, #Method, principal, request, response)

class ShortageServiceTest : public medkoord::testing::PostgresTest {
 protected:
  void SetUp() override {
    PostgresTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    auto url = cluster().CreateDatabase("shortage");
    ASSERT_TRUE(url.ok()) << url.status();
    url_ = *url;
    instance_ = Instance::Start(url_, clock_);
  }
  void TearDown() override {
    instance_.reset();
    if (!url_.empty()) (void)cluster().DropDatabase(url_);
  }

  template <typename Req, typename Resp>
  grpc::Status Call(grpc::Status (v1::Shortage::Stub::*fn)(grpc::ClientContext*, const Req&, Resp*),
                    const char* method, const Principal& principal, const Req& request, Resp* response) {
    auto context = Signed(principal, method);
    return (instance_->stub().*fn)(context.get(), request, response);
  }

  std::string Announce(const std::string& request_id = "") {
    v1::ShortageRecord s;
    grpc::Status status = CALL(AnnounceShortage, TaskForce(), Peginterferon(request_id), &s);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return s.name();
  }

  void ReportAllRegions(const std::string& name) {
    // Hovedstaden, Midtjylland, Syddanmark, Sjælland, Nordjylland.
    const std::vector<std::tuple<common::v1::Region, int64_t, double, int>> figures = {
        {common::v1::REGION_HOVEDSTADEN, 120, 40, 160}, {common::v1::REGION_MIDTJYLLAND, 90, 30, 110},
        {common::v1::REGION_SYDDANMARK, 30, 25, 95},     {common::v1::REGION_SJAELLAND, 20, 20, 70},
        {common::v1::REGION_NORDJYLLAND, 40, 10, 40}};
    for (const auto& [region, stock, weekly, patients] : figures) {
      v1::RegionalPosition p;
      grpc::Status status = CALL(ReportPosition, TaskForce(), Position(name, region, stock, weekly, patients), &p);
      ASSERT_TRUE(status.ok()) << status.error_message();
    }
  }

  int64_t Head() {
    auto head = ShortageStore(instance_->pool()).HeadSequence();
    EXPECT_TRUE(head.ok());
    return head.value_or(-1);
  }

  FakeClock clock_{absl::FromCivil(absl::CivilSecond(2024, 6, 1, 12, 0, 0), absl::UTCTimeZone())};
  std::string url_;
  std::unique_ptr<Instance> instance_;
};

TEST_F(ShortageServiceTest, LifecycleWithHistoryAndWrongSteps) {
  const std::string name = Announce();
  ASSERT_FALSE(name.empty());
  v1::TransitionShortageRequest t;
  t.set_name(name);
  v1::ShortageRecord s;

  grpc::Status wrong = CALL(ResolveShortage, TaskForce(), t, &s);
  EXPECT_EQ(wrong.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(wrong.error_message(), HasSubstr("announced cannot become resolved"));

  t.set_reason("supplier confirmed no deliveries until week 30");
  ASSERT_TRUE(CALL(ActivateShortage, TaskForce(), t, &s).ok());
  EXPECT_EQ(s.status(), v1::SHORTAGE_STATUS_ACTIVE);
  clock_.Advance(absl::Hours(24 * 60));
  t.set_reason("deliveries resumed");
  ASSERT_TRUE(CALL(ResolveShortage, TaskForce(), t, &s).ok());
  EXPECT_EQ(CALL(CancelShortage, TaskForce(), t, &s).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(CALL(ActivateShortage, TaskForce(), t, &s).error_code(), grpc::StatusCode::FAILED_PRECONDITION);

  v1::GetShortageRequest get;
  get.set_name(name);
  ASSERT_TRUE(CALL(GetShortage, RegionCaller(common::v1::REGION_SJAELLAND), get, &s).ok());
  EXPECT_EQ(s.status(), v1::SHORTAGE_STATUS_RESOLVED);
  ASSERT_EQ(s.history_size(), 3);
  EXPECT_EQ(s.history(0).kind(), v1::ShortageHistoryEntry::KIND_ANNOUNCED);
  EXPECT_EQ(s.history(1).to_status(), v1::SHORTAGE_STATUS_ACTIVE);
  EXPECT_EQ(s.history(1).reason(), "supplier confirmed no deliveries until week 30");
  EXPECT_EQ(s.history(2).from_status(), v1::SHORTAGE_STATUS_ACTIVE);
  EXPECT_EQ(s.history(2).changed().principal_id(), "task-force-1");
  EXPECT_EQ(s.history(2).changed().time().seconds(), absl::ToUnixSeconds(clock_.Now()));
}

TEST_F(ShortageServiceTest, AnnounceIsIdempotentOnRequestId) {
  const std::string first = Announce("req-1");
  const std::string again = Announce("req-1");
  EXPECT_EQ(first, again);
  v1::ListShortagesResponse list;
  ASSERT_TRUE(CALL(ListShortages, ForumMember(), v1::ListShortagesRequest(), &list).ok());
  EXPECT_EQ(list.shortages_size(), 1);

  v1::AnnounceShortageRequest named = Peginterferon();
  named.set_shortage_id("peginterferon-2024");
  v1::ShortageRecord s;
  ASSERT_TRUE(CALL(AnnounceShortage, TaskForce(), named, &s).ok());
  EXPECT_EQ(s.name(), "shortages/peginterferon-2024");
  EXPECT_EQ(CALL(AnnounceShortage, TaskForce(), named, &s).error_code(), grpc::StatusCode::ALREADY_EXISTS);
}

TEST_F(ShortageServiceTest, ListFiltersAndPages) {
  for (int i = 0; i < 3; ++i) Announce();
  v1::AnnounceShortageRequest other = Peginterferon();
  other.mutable_shortage()->mutable_drug()->set_atc_code("L01XE01");
  other.mutable_shortage()->set_criticality(v1::CRITICALITY_LOW);
  other.mutable_shortage()->mutable_announced_on()->set_year(2025);
  v1::ShortageRecord s;
  ASSERT_TRUE(CALL(AnnounceShortage, TaskForce(), other, &s).ok());

  v1::ListShortagesRequest request;
  request.set_atc_prefix("L03AB");
  v1::ListShortagesResponse page;
  ASSERT_TRUE(CALL(ListShortages, ForumMember(), request, &page).ok());
  EXPECT_EQ(page.shortages_size(), 3);

  request.Clear();
  request.set_min_criticality(v1::CRITICALITY_HIGH);
  ASSERT_TRUE(CALL(ListShortages, ForumMember(), request, &page).ok());
  EXPECT_EQ(page.shortages_size(), 3);

  request.Clear();
  request.mutable_announced_from()->set_year(2025);
  request.mutable_announced_from()->set_month(1);
  request.mutable_announced_from()->set_day(1);
  ASSERT_TRUE(CALL(ListShortages, ForumMember(), request, &page).ok());
  ASSERT_EQ(page.shortages_size(), 1);
  EXPECT_EQ(page.shortages(0).drug().atc_code(), "L01XE01");

  // Pages of one, newest announcement first, every shortage exactly once.
  request.Clear();
  request.set_page_size(1);
  std::vector<std::string> seen;
  do {
    ASSERT_TRUE(CALL(ListShortages, ForumMember(), request, &page).ok());
    for (const auto& item : page.shortages()) seen.push_back(item.name());
    request.set_page_token(page.next_page_token());
  } while (!page.next_page_token().empty());
  EXPECT_EQ(seen.size(), 4u);
  EXPECT_EQ(seen[0], s.name());

  request.add_statuses(v1::SHORTAGE_STATUS_ACTIVE);  // token made for other filters
  request.set_page_token(page.next_page_token().empty() ? "bogus" : page.next_page_token());
  EXPECT_EQ(CALL(ListShortages, ForumMember(), request, &page).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(ShortageServiceTest, InvalidInputNamesFieldsAndStoresNothing) {
  v1::AnnounceShortageRequest bad = Peginterferon();
  bad.mutable_shortage()->mutable_drug()->set_atc_code("L03");
  bad.mutable_shortage()->set_criticality(v1::CRITICALITY_UNSPECIFIED);
  bad.mutable_shortage()->clear_source();
  v1::ShortageRecord s;
  grpc::Status status = CALL(AnnounceShortage, TaskForce(), bad, &s);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(ViolatedFields(status),
              UnorderedElementsAre("shortage.drug.atc_code", "shortage.criticality", "shortage.source"));

  const std::string name = Announce();
  const int64_t head = Head();
  v1::RegionalPosition p;
  status = CALL(ReportPosition, TaskForce(), Position(name, common::v1::REGION_SYDDANMARK, -5, -1, 10), &p);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(ViolatedFields(status),
              UnorderedElementsAre("position.stock_packs", "position.weekly_consumption_packs"));
  status = CALL(ReportPosition, TaskForce(), Position(name, common::v1::REGION_SYDDANMARK, 50'000'000, 1, 10), &p);
  EXPECT_THAT(ViolatedFields(status), ElementsAre("position.stock_packs"));
  status = CALL(ReportPosition, TaskForce(), Position(name, static_cast<common::v1::Region>(17), 5, 1, 10), &p);
  EXPECT_THAT(ViolatedFields(status), ElementsAre("position.region"));
  auto future = Position(name, common::v1::REGION_SYDDANMARK, 5, 1, 1);
  future.mutable_position()->mutable_as_of()->set_seconds(absl::ToUnixSeconds(clock_.Now() + absl::Hours(48)));
  EXPECT_THAT(ViolatedFields(CALL(ReportPosition, TaskForce(), future, &p)), ElementsAre("position.as_of"));

  v1::ListPositionsRequest list;
  list.set_parent(name);
  v1::ListPositionsResponse positions;
  ASSERT_TRUE(CALL(ListPositions, TaskForce(), list, &positions).ok());
  EXPECT_THAT(positions.positions(), IsEmpty());
  EXPECT_EQ(Head(), head) << "a rejected request wrote an event";

  // An allocation that does not add up is rejected and leaves the proposal as it was.
  ReportAllRegions(name);
  v1::ProposeAllocationRequest propose;
  propose.set_parent(name);
  propose.set_quantity_packs(100);
  propose.set_source(v1::ALLOCATION_SOURCE_INCOMING);
  v1::Allocation allocation;
  ASSERT_TRUE(CALL(ProposeAllocation, TaskForce(), propose, &allocation).ok());
  v1::ApproveAllocationRequest approve;
  approve.set_name(allocation.name());
  approve.set_amendment_reason("local judgement");
  for (const auto& line : allocation.lines()) {
    auto* amended = approve.add_amended_lines();
    amended->set_region(line.region());
    amended->set_packs(line.packs() + 1);
  }
  const int64_t before = Head();
  status = CALL(ApproveAllocation, TaskForce(), approve, &allocation);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(ViolatedFields(status), ElementsAre("amended_lines"));
  v1::GetAllocationRequest get;
  get.set_name(approve.name());
  ASSERT_TRUE(CALL(GetAllocation, TaskForce(), get, &allocation).ok());
  EXPECT_EQ(allocation.state(), v1::ALLOCATION_STATE_PROPOSED);
  EXPECT_EQ(Head(), before);
}

TEST_F(ShortageServiceTest, RegionsReportOnlyTheirOwnPositionsAndSeeOnlyTheirOwn) {
  const std::string name = Announce();
  const Principal syd = RegionCaller(common::v1::REGION_SYDDANMARK);
  v1::RegionalPosition p;
  ASSERT_TRUE(CALL(ReportPosition, syd, Position(name, common::v1::REGION_SYDDANMARK, 30, 12.5, 48), &p).ok());
  EXPECT_EQ(p.reported().principal_id(), syd.id());
  EXPECT_DOUBLE_EQ(p.weeks_of_cover().weeks(), 2.4);
  EXPECT_EQ(CALL(ReportPosition, syd, Position(name, common::v1::REGION_HOVEDSTADEN, 30, 12.5, 48), &p).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  ASSERT_TRUE(CALL(ReportPosition, TaskForce(), Position(name, common::v1::REGION_HOVEDSTADEN, 80, 20, 90), &p).ok());

  v1::ListPositionsRequest list;
  list.set_parent(name);
  v1::ListPositionsResponse positions;
  ASSERT_TRUE(CALL(ListPositions, syd, list, &positions).ok());
  ASSERT_EQ(positions.positions_size(), 1);
  EXPECT_EQ(positions.positions(0).region(), common::v1::REGION_SYDDANMARK);
  list.set_region(common::v1::REGION_HOVEDSTADEN);
  EXPECT_EQ(CALL(ListPositions, syd, list, &positions).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  list.clear_region();
  ASSERT_TRUE(CALL(ListPositions, TaskForce(), list, &positions).ok());
  EXPECT_EQ(positions.positions_size(), 2);

  v1::GetCoverageRequest cov;
  cov.set_name(name);
  v1::Coverage coverage;
  ASSERT_TRUE(CALL(GetCoverage, syd, cov, &coverage).ok());
  ASSERT_EQ(coverage.regions_size(), 1);
  EXPECT_EQ(coverage.regions(0).region(), common::v1::REGION_SYDDANMARK);
  EXPECT_EQ(coverage.national_stock_packs(), 110);

  // Writes the region may not do at all, and callers the gateway did not sign.
  v1::ShortageRecord s;
  EXPECT_EQ(CALL(AnnounceShortage, syd, Peginterferon(), &s).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(CALL(ReportPosition, ForumMember(), Position(name, common::v1::REGION_SYDDANMARK, 1, 1, 1), &p)
                .error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  grpc::ClientContext unsigned_context;
  EXPECT_EQ(instance_->stub().GetCoverage(&unsigned_context, cov, &coverage).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  // A signature for one method is no good for another.
  auto wrong_method = Signed(TaskForce(), "GetShortage");
  EXPECT_EQ(instance_->stub().GetCoverage(wrong_method.get(), cov, &coverage).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
}

TEST_F(ShortageServiceTest, CoverageIsPerRegionAndNationalWithUnboundedForZeroConsumption) {
  const std::string name = Announce();
  v1::RegionalPosition p;
  ASSERT_TRUE(CALL(ReportPosition, TaskForce(), Position(name, common::v1::REGION_NORDJYLLAND, 12, 0, 0), &p).ok());
  EXPECT_TRUE(p.weeks_of_cover().unbounded());
  ASSERT_TRUE(CALL(ReportPosition, TaskForce(), Position(name, common::v1::REGION_SJAELLAND, 40, 10, 30), &p).ok());
  // A newer report replaces the older as current.
  clock_.Advance(absl::Hours(1));
  ASSERT_TRUE(CALL(ReportPosition, TaskForce(), Position(name, common::v1::REGION_SJAELLAND, 28, 10, 30), &p).ok());

  v1::GetCoverageRequest cov;
  cov.set_name(name);
  v1::Coverage coverage;
  ASSERT_TRUE(CALL(GetCoverage, TaskForce(), cov, &coverage).ok());
  ASSERT_EQ(coverage.regions_size(), 5);
  EXPECT_FALSE(coverage.regions(0).reported());
  EXPECT_DOUBLE_EQ(coverage.regions(3).weeks_of_cover().weeks(), 2.8);
  EXPECT_TRUE(coverage.regions(4).weeks_of_cover().unbounded());
  EXPECT_EQ(coverage.national_stock_packs(), 40);
  EXPECT_DOUBLE_EQ(coverage.national_weeks_of_cover().weeks(), 4.0);
  EXPECT_THAT(coverage.missing_regions(), ElementsAre(common::v1::REGION_HOVEDSTADEN, common::v1::REGION_MIDTJYLLAND,
                                                      common::v1::REGION_SYDDANMARK));

  v1::ListPositionsRequest list;
  list.set_parent(name);
  list.set_current_only(true);
  v1::ListPositionsResponse positions;
  ASSERT_TRUE(CALL(ListPositions, TaskForce(), list, &positions).ok());
  EXPECT_EQ(positions.positions_size(), 2);
  list.set_current_only(false);
  ASSERT_TRUE(CALL(ListPositions, TaskForce(), list, &positions).ok());
  EXPECT_EQ(positions.positions_size(), 3);
}

TEST_F(ShortageServiceTest, AllocationProposeApproveAmend) {
  const std::string name = Announce();
  v1::ProposeAllocationRequest propose;
  propose.set_parent(name);
  propose.set_quantity_packs(200);
  propose.set_source(v1::ALLOCATION_SOURCE_INCOMING);
  propose.set_source_note("delivery expected week 14");
  auto* minimum = propose.add_minimums();
  minimum->set_region(common::v1::REGION_NORDJYLLAND);
  minimum->set_packs(15);
  v1::Allocation allocation;
  grpc::Status missing = CALL(ProposeAllocation, TaskForce(), propose, &allocation);
  EXPECT_EQ(missing.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(missing.error_message(), HasSubstr("hovedstaden"));

  ReportAllRegions(name);
  ASSERT_TRUE(CALL(ProposeAllocation, TaskForce(), propose, &allocation).ok());
  EXPECT_EQ(allocation.state(), v1::ALLOCATION_STATE_PROPOSED);
  ASSERT_EQ(allocation.lines_size(), 5);
  int64_t total = 0;
  for (const auto& line : allocation.lines()) {
    EXPECT_GE(line.packs(), 0);
    total += line.packs();
  }
  EXPECT_EQ(total, 200);
  EXPECT_GE(allocation.lines(4).packs(), 15);
  EXPECT_THAT(allocation.reasoning(), Contains(HasSubstr("Minimums first")));
  EXPECT_EQ(allocation.based_on_positions_size(), 5);
  // Lowest cover first: Sjælland (1 week) and Syddanmark (1.2) gain the most weeks.
  EXPECT_GT(allocation.lines(3).weeks_of_cover_after().weeks(), allocation.lines(3).weeks_of_cover_before().weeks());

  const Principal sja = RegionCaller(common::v1::REGION_SJAELLAND);
  v1::ListAllocationsRequest list;
  list.set_parent(name);
  v1::ListAllocationsResponse listed;
  ASSERT_TRUE(CALL(ListAllocations, sja, list, &listed).ok());
  EXPECT_THAT(listed.allocations(), IsEmpty()) << "regions do not see proposals";

  v1::ApproveAllocationRequest approve;
  approve.set_name(allocation.name());
  for (const auto& line : allocation.lines()) {
    auto* amended = approve.add_amended_lines();
    amended->set_region(line.region());
    amended->set_packs(line.packs());
  }
  approve.mutable_amended_lines(0)->set_packs(approve.amended_lines(0).packs() - 5);
  approve.mutable_amended_lines(1)->set_packs(approve.amended_lines(1).packs() + 5);
  approve.set_amendment_reason("Midtjylland opens a new outpatient clinic");
  v1::Allocation approved;
  ASSERT_TRUE(CALL(ApproveAllocation, TaskForce(), approve, &approved).ok());
  EXPECT_EQ(approved.state(), v1::ALLOCATION_STATE_APPROVED);
  EXPECT_TRUE(approved.amended());
  EXPECT_EQ(approved.lines(1).packs(), approved.lines(1).proposed_packs() + 5);
  EXPECT_EQ(approved.approved().principal_id(), "task-force-1");
  EXPECT_EQ(CALL(ApproveAllocation, TaskForce(), approve, &approved).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);

  ASSERT_TRUE(CALL(ListAllocations, sja, list, &listed).ok());
  ASSERT_EQ(listed.allocations_size(), 1);
  EXPECT_EQ(listed.allocations(0).name(), allocation.name());

  // A second proposal approved as proposed.
  propose.clear_minimums();
  propose.set_request_id("second");
  ASSERT_TRUE(CALL(ProposeAllocation, TaskForce(), propose, &allocation).ok());
  v1::Allocation repeat;
  ASSERT_TRUE(CALL(ProposeAllocation, TaskForce(), propose, &repeat).ok());
  EXPECT_EQ(repeat.name(), allocation.name()) << "request_id makes the proposal idempotent";
  v1::ApproveAllocationRequest as_proposed;
  as_proposed.set_name(allocation.name());
  ASSERT_TRUE(CALL(ApproveAllocation, TaskForce(), as_proposed, &approved).ok());
  EXPECT_FALSE(approved.amended());
}

TEST_F(ShortageServiceTest, GuidanceIsVersioned) {
  const std::string name = Announce();
  v1::PublishGuidanceRequest publish;
  publish.set_parent(name);
  auto* g = publish.mutable_guidance();
  g->set_summary("Pause non-urgent starts; prioritise pregnant patients");
  auto* alt = g->add_alternatives();
  alt->set_drug_name("ropeginterferon alfa-2b (Besremi)");
  alt->set_atc_code("L03AB15");
  alt->set_dose_notes("start 100 µg every 2 weeks");
  auto* group = g->add_priority_groups();
  group->set_rank(1);
  group->set_description("pregnant women with essential thrombocythaemia or polycythaemia vera");
  auto* specialist = g->add_specialists_consulted();
  specialist->set_name("Dansk Hæmatologisk Selskab");
  specialist->set_specialty("hæmatologi");
  v1::Guidance first;
  ASSERT_TRUE(CALL(PublishGuidance, TaskForce(), publish, &first).ok());
  EXPECT_EQ(first.version(), 1);
  g->set_summary("Version 2: resume starts for ET in pregnancy only");
  v1::Guidance second;
  ASSERT_TRUE(CALL(PublishGuidance, TaskForce(), publish, &second).ok());
  EXPECT_EQ(second.version(), 2);
  EXPECT_EQ(second.name(), name + "/guidance/2");

  v1::GetGuidanceRequest get;
  get.set_name(name + "/guidance/latest");
  v1::Guidance latest;
  ASSERT_TRUE(CALL(GetGuidance, RegionCaller(common::v1::REGION_MIDTJYLLAND), get, &latest).ok());
  EXPECT_EQ(latest.version(), 2);
  EXPECT_EQ(latest.alternatives(0).atc_code(), "L03AB15");
  EXPECT_EQ(latest.specialists_consulted(0).name(), "Dansk Hæmatologisk Selskab");
  get.set_name(name + "/guidance/1");
  ASSERT_TRUE(CALL(GetGuidance, ForumMember(), get, &latest).ok());
  EXPECT_EQ(latest.summary(), "Pause non-urgent starts; prioritise pregnant patients");

  v1::ListGuidanceRequest list;
  list.set_parent(name);
  v1::ListGuidanceResponse listed;
  ASSERT_TRUE(CALL(ListGuidance, ForumMember(), list, &listed).ok());
  ASSERT_EQ(listed.guidance_size(), 2);
  EXPECT_EQ(listed.guidance(0).version(), 2);
}

TEST_F(ShortageServiceTest, MeetingsAndActions) {
  const std::string name = Announce();
  v1::CreateMeetingRequest cm;
  cm.set_parent(name);
  cm.mutable_meeting()->set_title("Task Force and haematologists");
  cm.mutable_meeting()->mutable_meeting_date()->set_year(2024);
  cm.mutable_meeting()->mutable_meeting_date()->set_month(3);
  cm.mutable_meeting()->mutable_meeting_date()->set_day(8);
  cm.mutable_meeting()->add_participants("Dansk Hæmatologisk Selskab");
  cm.mutable_meeting()->add_decisions("Guidance v1 to be issued");
  v1::Meeting meeting;
  ASSERT_TRUE(CALL(CreateMeeting, TaskForce(), cm, &meeting).ok());

  v1::CreateActionRequest ca;
  ca.set_parent(name);
  ca.mutable_action()->set_title("Draft guidance");
  ca.mutable_action()->set_owner("Forum secretariat");
  ca.mutable_action()->set_meeting(meeting.name());
  v1::Action action;
  ASSERT_TRUE(CALL(CreateAction, TaskForce(), ca, &action).ok());
  EXPECT_EQ(action.status(), v1::ACTION_STATUS_OPEN);
  EXPECT_EQ(action.meeting(), meeting.name());
  ca.mutable_action()->set_meeting(name + "/meetings/999");
  EXPECT_THAT(ViolatedFields(CALL(CreateAction, TaskForce(), ca, &action)), ElementsAre("action.meeting"));

  v1::UpdateActionRequest ua;
  ua.mutable_action()->set_name(name + "/actions/1");
  ua.mutable_action()->set_status(v1::ACTION_STATUS_DONE);
  ua.mutable_update_mask()->add_paths("status");
  ASSERT_TRUE(CALL(UpdateAction, TaskForce(), ua, &action).ok());
  EXPECT_EQ(action.status(), v1::ACTION_STATUS_DONE);
  EXPECT_EQ(CALL(UpdateAction, TaskForce(), ua, &action).error_code(), grpc::StatusCode::FAILED_PRECONDITION);

  v1::ListActionsRequest la;
  la.set_parent(name);
  la.add_statuses(v1::ACTION_STATUS_DONE);
  v1::ListActionsResponse actions;
  ASSERT_TRUE(CALL(ListActions, ForumMember(), la, &actions).ok());
  EXPECT_EQ(actions.actions_size(), 1);
  v1::ListMeetingsRequest lm;
  lm.set_parent(name);
  v1::ListMeetingsResponse meetings;
  ASSERT_TRUE(CALL(ListMeetings, ForumMember(), lm, &meetings).ok());
  ASSERT_EQ(meetings.meetings_size(), 1);
  EXPECT_THAT(meetings.meetings(0).decisions(), ElementsAre("Guidance v1 to be issued"));
  EXPECT_EQ(CALL(ListMeetings, RegionCaller(common::v1::REGION_SYDDANMARK), lm, &meetings).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
}

TEST_F(ShortageServiceTest, ClosedShortageTakesNoPositions) {
  const std::string name = Announce();
  v1::TransitionShortageRequest t;
  t.set_name(name);
  v1::ShortageRecord s;
  ASSERT_TRUE(CALL(CancelShortage, TaskForce(), t, &s).ok());
  v1::RegionalPosition p;
  EXPECT_EQ(CALL(ReportPosition, TaskForce(), Position(name, common::v1::REGION_SYDDANMARK, 1, 1, 1), &p).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  v1::GetShortageRequest get;
  get.set_name("shortages/does-not-exist");
  EXPECT_EQ(CALL(GetShortage, TaskForce(), get, &s).error_code(), grpc::StatusCode::NOT_FOUND);
}

}  // namespace
}  // namespace medkoord::shortage::testing
