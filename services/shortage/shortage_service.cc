#include "services/shortage/shortage_service.h"

#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/page_token.h"
#include "common/server.h"
#include "common/status.h"
#include "services/shortage/allocation.h"
#include "services/shortage/feed_filter.h"
#include "services/shortage/lifecycle.h"
#include "services/shortage/validation.h"

namespace medkoord::shortage {
namespace {

using common::v1::Region;
using common::v1::ROLE_FORUM_MEMBER;
using common::v1::ROLE_FORUM_SECRETARIAT;
using common::v1::ROLE_REGION;
using common::v1::ROLE_TASK_FORCE;

#define TASK_FORCE_ONLY {ROLE_TASK_FORCE}
#define READERS {ROLE_TASK_FORCE, ROLE_REGION, ROLE_FORUM_MEMBER, ROLE_FORUM_SECRETARIAT}
#define FORUM_READERS {ROLE_TASK_FORCE, ROLE_FORUM_MEMBER, ROLE_FORUM_SECRETARIAT}

constexpr Region kRegions[] = {common::v1::REGION_HOVEDSTADEN, common::v1::REGION_MIDTJYLLAND,
                               common::v1::REGION_SYDDANMARK, common::v1::REGION_SJAELLAND,
                               common::v1::REGION_NORDJYLLAND};

Actor ActorOf(const Principal& principal, const Clock& clock) { return Actor{principal.id(), clock.Now()}; }

// A region-bound caller must be bound to a region.
absl::StatusOr<int> RegionScope(const Principal& principal) {
  if (!IsRegionScoped(principal)) return 0;
  if (principal.region() == common::v1::REGION_UNSPECIFIED) {
    return absl::PermissionDeniedError("a regional caller must be bound to a region");
  }
  return static_cast<int>(principal.region());
}

template <typename T>
void SetNextPageToken(const Page<T>& page, uint64_t filter_hash, std::string* token) {
  if (!page.next_after.empty()) *token = EncodePageToken(page.next_after, filter_hash);
}

void SetCover(v1::WeeksOfCover* out, const Cover& cover) {
  if (cover.unbounded) {
    out->set_unbounded(true);
  } else {
    out->set_weeks(cover.weeks);
  }
}

RegionInput InputOf(const v1::RegionalPosition& p, int64_t minimum) {
  return RegionInput{std::string(RegionSlug(p.region())), p.stock_packs(),
                     ConsumptionToMillipacks(p.weekly_consumption_packs()).value_or(0), p.patients_on_treatment(),
                     minimum};
}

// Turns the current positions into a proposal: every region must have
// reported, then the domain's water-filling decides.
absl::StatusOr<v1::Allocation> Plan(const v1::ProposeAllocationRequest& request,
                                    const std::vector<v1::RegionalPosition>& positions) {
  std::map<int, const v1::RegionalPosition*> by_region;
  for (const v1::RegionalPosition& p : positions) by_region[p.region()] = &p;
  std::map<int, int64_t> minimums;
  for (const v1::RegionMinimum& m : request.minimums()) minimums[m.region()] = m.packs();
  std::vector<std::string> missing;
  std::vector<RegionInput> inputs;
  for (Region r : kRegions) {
    auto it = by_region.find(r);
    if (it == by_region.end()) {
      missing.emplace_back(RegionSlug(r));
      continue;
    }
    inputs.push_back(InputOf(*it->second, minimums[r]));
  }
  if (!missing.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("no position reported yet for: ", absl::StrJoin(missing, ", "), "; cannot allocate"));
  }
  ASSIGN_OR_RETURN(AllocationPlan plan, PlanAllocation(inputs, request.quantity_packs()));
  v1::Allocation allocation;
  allocation.set_quantity_packs(request.quantity_packs());
  allocation.set_source(request.source());
  allocation.set_source_note(request.source_note());
  for (size_t i = 0; i < inputs.size(); ++i) {
    const v1::RegionalPosition& p = *by_region[kRegions[i]];
    v1::AllocationLine* line = allocation.add_lines();
    line->set_region(kRegions[i]);
    line->set_packs(plan.shares[i].packs);
    line->set_proposed_packs(plan.shares[i].packs);
    line->set_stock_packs_before(p.stock_packs());
    line->set_weekly_consumption_packs(p.weekly_consumption_packs());
    line->set_patients_on_treatment(p.patients_on_treatment());
    line->set_minimum_packs(inputs[i].minimum_packs);
    SetCover(line->mutable_weeks_of_cover_before(), plan.shares[i].cover_before);
    SetCover(line->mutable_weeks_of_cover_after(), plan.shares[i].cover_after);
  }
  for (std::string& step : plan.reasoning) allocation.add_reasoning(std::move(step));
  return allocation;
}

// ---- WatchShortages reactors ------------------------------------------------------

class RejectedWatch final : public grpc::ServerWriteReactor<v1::WatchShortagesResponse> {
 public:
  explicit RejectedWatch(const absl::Status& status) { Finish(ToGrpcStatus(status)); }
  void OnDone() override { delete this; }
};

class WatchReactor final : public grpc::ServerWriteReactor<v1::WatchShortagesResponse>, public FeedSink {
 public:
  WatchReactor(EventHub& hub, FeedFilter filter, std::optional<int64_t> after)
      : subscription_(std::make_shared<Subscription>(hub, std::move(filter), after, this)) {
    subscription_->Start();
  }
  void Send(const v1::WatchShortagesResponse* message) override { StartWrite(message); }
  void Close(const absl::Status& status) override { Finish(ToGrpcStatus(status)); }
  void OnWriteDone(bool ok) override { subscription_->OnSendDone(ok); }
  void OnCancel() override { subscription_->Cancel(); }
  void OnDone() override { delete this; }

 private:
  std::shared_ptr<Subscription> subscription_;
};

}  // namespace

absl::StatusOr<Principal> ShortageService::Authorize(const grpc::ServerContextBase& context, const char* method,
                                                     std::initializer_list<common::v1::Role> roles) const {
  ASSIGN_OR_RETURN(Principal principal,
                   signer_.Verify(context, FullMethodName(v1::Shortage::service_full_name(), method)));
  // The gateway checks roles too; a bypass of it must not open anything.
  if (!HasAnyRole(principal, roles)) {
    return absl::PermissionDeniedError(absl::StrCat("the caller's roles do not allow ", method));
  }
  return principal;
}

// ---- shortages ----------------------------------------------------------------------

grpc::Status ShortageService::AnnounceShortage(grpc::ServerContext* context, const v1::AnnounceShortageRequest* request,
                                               v1::ShortageRecord* response) {
  auto principal = Authorize(*context, "AnnounceShortage", TASK_FORCE_ONLY);
  if (!principal.ok()) return ToGrpcStatus(principal.status());
  if (absl::Status valid = ValidateAnnounce(*request); !valid.ok()) return ToGrpcStatus(valid);
  auto stored = store_.Announce(*request, ActorOf(*principal, clock_));
  if (!stored.ok()) return ToGrpcStatus(stored.status());
  *response = *std::move(stored);
  return grpc::Status::OK;
}

grpc::Status ShortageService::GetShortage(grpc::ServerContext* context, const v1::GetShortageRequest* request,
                                          v1::ShortageRecord* response) {
  auto principal = Authorize(*context, "GetShortage", READERS);
  if (!principal.ok()) return ToGrpcStatus(principal.status());
  auto id = ParseShortageName(request->name(), "name");
  if (!id.ok()) return ToGrpcStatus(id.status());
  auto stored = store_.GetShortage(*id);
  if (!stored.ok()) return ToGrpcStatus(stored.status());
  *response = *std::move(stored);
  return grpc::Status::OK;
}

grpc::Status ShortageService::ListShortages(grpc::ServerContext* context, const v1::ListShortagesRequest* request,
                                            v1::ListShortagesResponse* response) {
  auto principal = Authorize(*context, "ListShortages", READERS);
  if (!principal.ok()) return ToGrpcStatus(principal.status());
  if (absl::Status valid = ValidateListShortages(*request); !valid.ok()) return ToGrpcStatus(valid);
  v1::ListShortagesRequest filters = *request;
  filters.clear_page_size();
  filters.clear_page_token();
  const uint64_t hash = FilterHash(filters.SerializeAsString());
  auto page = ParsePageRequest(request->page_size(), request->page_token(), hash);
  if (!page.ok()) return ToGrpcStatus(page.status());
  auto result = store_.ListShortages(*request, *page);
  if (!result.ok()) return ToGrpcStatus(result.status());
  for (v1::ShortageRecord& s : result->items) *response->add_shortages() = std::move(s);
  SetNextPageToken(*result, hash, response->mutable_next_page_token());
  return grpc::Status::OK;
}

grpc::Status ShortageService::UpdateShortage(grpc::ServerContext* context, const v1::UpdateShortageRequest* request,
                                             v1::ShortageRecord* response) {
  auto principal = Authorize(*context, "UpdateShortage", TASK_FORCE_ONLY);
  if (!principal.ok()) return ToGrpcStatus(principal.status());
  if (absl::Status valid = ValidateUpdateShortage(*request); !valid.ok()) return ToGrpcStatus(valid);
  auto id = ParseShortageName(request->shortage().name(), "shortage.name");
  if (!id.ok()) return ToGrpcStatus(id.status());
  auto stored = store_.UpdateShortage(*id, *request, ActorOf(*principal, clock_));
  if (!stored.ok()) return ToGrpcStatus(stored.status());
  *response = *std::move(stored);
  return grpc::Status::OK;
}

grpc::Status ShortageService::Transition(grpc::ServerContext* context, const char* method,
                                         const v1::TransitionShortageRequest& request, v1::ShortageStatus to,
                                         v1::ShortageRecord* response) {
  auto principal = Authorize(*context, method, TASK_FORCE_ONLY);
  if (!principal.ok()) return ToGrpcStatus(principal.status());
  auto id = ParseShortageName(request.name(), "name");
  if (!id.ok()) return ToGrpcStatus(id.status());
  if (request.reason().size() > 2000) return ToGrpcStatus(InvalidField("reason", "must be at most 2000 bytes"));
  auto stored = store_.Transition(
      *id, to, request.reason(), [to](v1::ShortageStatus from) { return CheckTransition(from, to); },
      ActorOf(*principal, clock_));
  if (!stored.ok()) return ToGrpcStatus(stored.status());
  *response = *std::move(stored);
  return grpc::Status::OK;
}

grpc::Status ShortageService::ActivateShortage(grpc::ServerContext* context,
                                               const v1::TransitionShortageRequest* request,
                                               v1::ShortageRecord* response) {
  return Transition(context, "ActivateShortage", *request, v1::SHORTAGE_STATUS_ACTIVE, response);
}

grpc::Status ShortageService::ResolveShortage(grpc::ServerContext* context,
                                              const v1::TransitionShortageRequest* request,
                                              v1::ShortageRecord* response) {
  return Transition(context, "ResolveShortage", *request, v1::SHORTAGE_STATUS_RESOLVED, response);
}

grpc::Status ShortageService::CancelShortage(grpc::ServerContext* context,
                                             const v1::TransitionShortageRequest* request,
                                             v1::ShortageRecord* response) {
  return Transition(context, "CancelShortage", *request, v1::SHORTAGE_STATUS_CANCELLED, response);
}

// ---- positions ---------------------------------------------------------------------------

grpc::Status ShortageService::ReportPosition(grpc::ServerContext* context, const v1::ReportPositionRequest* request,
                                             v1::RegionalPosition* response) {
  auto principal = Authorize(*context, "ReportPosition", {ROLE_TASK_FORCE, ROLE_REGION});
  if (!principal.ok()) return ToGrpcStatus(principal.status());
  auto scope = RegionScope(*principal);
  if (!scope.ok()) return ToGrpcStatus(scope.status());
  if (absl::Status valid = ValidateReportPosition(*request, clock_.Now()); !valid.ok()) return ToGrpcStatus(valid);
  if (*scope != 0 && request->position().region() != *scope) {
    return ToGrpcStatus(absl::PermissionDeniedError(
        absl::StrCat("a regional caller reports only its own region (", std::string(RegionSlug(principal->region())), ")")));
  }
  auto id = ParseShortageName(request->parent(), "parent");
  if (!id.ok()) return ToGrpcStatus(id.status());
  auto stored = store_.ReportPosition(*id, request->position(), request->request_id(), ActorOf(*principal, clock_));
  if (!stored.ok()) return ToGrpcStatus(stored.status());
  *response = *std::move(stored);
  return grpc::Status::OK;
}

grpc::Status ShortageService::ListPositions(grpc::ServerContext* context, const v1::ListPositionsRequest* request,
                                            v1::ListPositionsResponse* response) {
  auto principal = Authorize(*context, "ListPositions", READERS);
  if (!principal.ok()) return ToGrpcStatus(principal.status());
  auto scope = RegionScope(*principal);
  if (!scope.ok()) return ToGrpcStatus(scope.status());
  auto id = ParseShortageName(request->parent(), "parent");
  if (!id.ok()) return ToGrpcStatus(id.status());
  int region = request->region();
  if (region != 0 && (!common::v1::Region_IsValid(region))) {
    return ToGrpcStatus(InvalidField("region", "is not a region"));
  }
  if (*scope != 0) {
    if (region != 0 && region != *scope) {
      return ToGrpcStatus(absl::PermissionDeniedError("a regional caller sees only its own region's positions"));
    }
    region = *scope;
  }
  v1::ListPositionsRequest filters = *request;
  filters.clear_page_size();
  filters.clear_page_token();
  filters.set_region(static_cast<Region>(region));
  const uint64_t hash = FilterHash(filters.SerializeAsString());
  auto page = ParsePageRequest(request->page_size(), request->page_token(), hash);
  if (!page.ok()) return ToGrpcStatus(page.status());
  auto result = store_.ListPositions(*id, region, request->current_only(), *page);
  if (!result.ok()) return ToGrpcStatus(result.status());
  for (v1::RegionalPosition& p : result->items) *response->add_positions() = std::move(p);
  SetNextPageToken(*result, hash, response->mutable_next_page_token());
  return grpc::Status::OK;
}

grpc::Status ShortageService::GetCoverage(grpc::ServerContext* context, const v1::GetCoverageRequest* request,
                                          v1::Coverage* response) {
  auto principal = Authorize(*context, "GetCoverage", READERS);
  if (!principal.ok()) return ToGrpcStatus(principal.status());
  auto scope = RegionScope(*principal);
  if (!scope.ok()) return ToGrpcStatus(scope.status());
  auto id = ParseShortageName(request->name(), "name");
  if (!id.ok()) return ToGrpcStatus(id.status());
  auto positions = store_.CurrentPositions(*id);
  if (!positions.ok()) return ToGrpcStatus(positions.status());
  std::map<int, const v1::RegionalPosition*> by_region;
  for (const v1::RegionalPosition& p : *positions) by_region[p.region()] = &p;
  int64_t stock = 0;
  int64_t millipacks = 0;
  int64_t patients = 0;
  response->set_shortage(request->name());
  for (Region r : kRegions) {
    auto it = by_region.find(r);
    if (it == by_region.end()) {
      response->add_missing_regions(r);
    } else {
      stock += it->second->stock_packs();
      millipacks += ConsumptionToMillipacks(it->second->weekly_consumption_packs()).value_or(0);
      patients += it->second->patients_on_treatment();
    }
    // A regional caller sees its own row and the national figures only.
    if (*scope != 0 && r != *scope) continue;
    v1::RegionCoverage* row = response->add_regions();
    row->set_region(r);
    if (it != by_region.end()) {
      row->set_reported(true);
      *row->mutable_position() = *it->second;
      *row->mutable_weeks_of_cover() = it->second->weeks_of_cover();
    }
  }
  response->set_national_stock_packs(stock);
  response->set_national_weekly_consumption_packs(MillipacksToPacks(millipacks));
  response->set_national_patients_on_treatment(patients);
  SetCover(response->mutable_national_weeks_of_cover(), WeeksOfCover(stock, millipacks));
  return grpc::Status::OK;
}

// ---- allocations ----------------------------------------------------------------------------

grpc::Status ShortageService::ProposeAllocation(grpc::ServerContext* context,
                                                const v1::ProposeAllocationRequest* request,
                                                v1::Allocation* response) {
  auto principal = Authorize(*context, "ProposeAllocation", TASK_FORCE_ONLY);
  if (!principal.ok()) return ToGrpcStatus(principal.status());
  if (absl::Status valid = ValidateProposeAllocation(*request); !valid.ok()) return ToGrpcStatus(valid);
  auto id = ParseShortageName(request->parent(), "parent");
  if (!id.ok()) return ToGrpcStatus(id.status());
  auto stored = store_.ProposeAllocation(
      *id, *request, [request](const std::vector<v1::RegionalPosition>& positions) { return Plan(*request, positions); },
      ActorOf(*principal, clock_));
  if (!stored.ok()) return ToGrpcStatus(stored.status());
  *response = *std::move(stored);
  return grpc::Status::OK;
}

grpc::Status ShortageService::ApproveAllocation(grpc::ServerContext* context,
                                                const v1::ApproveAllocationRequest* request,
                                                v1::Allocation* response) {
  auto principal = Authorize(*context, "ApproveAllocation", TASK_FORCE_ONLY);
  if (!principal.ok()) return ToGrpcStatus(principal.status());
  auto name = ParseChildName(request->name(), "allocations", "name");
  if (!name.ok()) return ToGrpcStatus(name.status());
  auto allocation_id = ParseNumericId(name->child_id, "name");
  if (!allocation_id.ok()) return ToGrpcStatus(allocation_id.status());
  auto stored = store_.ApproveAllocation(
      name->shortage_id, *allocation_id, *request,
      [request](int64_t quantity) { return ValidateAmendment(*request, quantity); }, ActorOf(*principal, clock_));
  if (!stored.ok()) return ToGrpcStatus(stored.status());
  *response = *std::move(stored);
  return grpc::Status::OK;
}

grpc::Status ShortageService::GetAllocation(grpc::ServerContext* context, const v1::GetAllocationRequest* request,
                                            v1::Allocation* response) {
  auto principal = Authorize(*context, "GetAllocation", READERS);
  if (!principal.ok()) return ToGrpcStatus(principal.status());
  auto scope = RegionScope(*principal);
  if (!scope.ok()) return ToGrpcStatus(scope.status());
  auto name = ParseChildName(request->name(), "allocations", "name");
  if (!name.ok()) return ToGrpcStatus(name.status());
  auto allocation_id = ParseNumericId(name->child_id, "name");
  if (!allocation_id.ok()) return ToGrpcStatus(allocation_id.status());
  auto stored = store_.GetAllocation(name->shortage_id, *allocation_id);
  if (!stored.ok()) return ToGrpcStatus(stored.status());
  if (*scope != 0 && stored->state() != v1::ALLOCATION_STATE_APPROVED) {
    return ToGrpcStatus(absl::PermissionDeniedError("regions see approved allocations only"));
  }
  *response = *std::move(stored);
  return grpc::Status::OK;
}

grpc::Status ShortageService::ListAllocations(grpc::ServerContext* context, const v1::ListAllocationsRequest* request,
                                              v1::ListAllocationsResponse* response) {
  auto principal = Authorize(*context, "ListAllocations", READERS);
  if (!principal.ok()) return ToGrpcStatus(principal.status());
  auto scope = RegionScope(*principal);
  if (!scope.ok()) return ToGrpcStatus(scope.status());
  auto id = ParseShortageName(request->parent(), "parent");
  if (!id.ok()) return ToGrpcStatus(id.status());
  v1::AllocationState state = request->state();
  if (!v1::AllocationState_IsValid(state)) return ToGrpcStatus(InvalidField("state", "is not an allocation state"));
  if (*scope != 0) {
    if (state == v1::ALLOCATION_STATE_PROPOSED) {
      return ToGrpcStatus(absl::PermissionDeniedError("regions see approved allocations only"));
    }
    state = v1::ALLOCATION_STATE_APPROVED;
  }
  v1::ListAllocationsRequest filters = *request;
  filters.clear_page_size();
  filters.clear_page_token();
  filters.set_state(state);
  const uint64_t hash = FilterHash(filters.SerializeAsString());
  auto page = ParsePageRequest(request->page_size(), request->page_token(), hash);
  if (!page.ok()) return ToGrpcStatus(page.status());
  auto result = store_.ListAllocations(*id, state, *page);
  if (!result.ok()) return ToGrpcStatus(result.status());
  for (v1::Allocation& a : result->items) *response->add_allocations() = std::move(a);
  SetNextPageToken(*result, hash, response->mutable_next_page_token());
  return grpc::Status::OK;
}

// ---- guidance ---------------------------------------------------------------------------------

grpc::Status ShortageService::PublishGuidance(grpc::ServerContext* context, const v1::PublishGuidanceRequest* request,
                                              v1::Guidance* response) {
  auto principal = Authorize(*context, "PublishGuidance", TASK_FORCE_ONLY);
  if (!principal.ok()) return ToGrpcStatus(principal.status());
  if (absl::Status valid = ValidatePublishGuidance(*request); !valid.ok()) return ToGrpcStatus(valid);
  auto id = ParseShortageName(request->parent(), "parent");
  if (!id.ok()) return ToGrpcStatus(id.status());
  auto stored =
      store_.PublishGuidance(*id, request->guidance(), request->request_id(), ActorOf(*principal, clock_));
  if (!stored.ok()) return ToGrpcStatus(stored.status());
  *response = *std::move(stored);
  return grpc::Status::OK;
}

grpc::Status ShortageService::GetGuidance(grpc::ServerContext* context, const v1::GetGuidanceRequest* request,
                                          v1::Guidance* response) {
  auto principal = Authorize(*context, "GetGuidance", READERS);
  if (!principal.ok()) return ToGrpcStatus(principal.status());
  auto name = ParseChildName(request->name(), "guidance", "name");
  if (!name.ok()) return ToGrpcStatus(name.status());
  int version = 0;
  if (name->child_id != "latest") {
    auto parsed = ParseNumericId(name->child_id, "name");
    if (!parsed.ok() || *parsed > 1000000) return ToGrpcStatus(InvalidField("name", "version must be a number or latest"));
    version = static_cast<int>(*parsed);
  }
  auto stored = store_.GetGuidance(name->shortage_id, version);
  if (!stored.ok()) return ToGrpcStatus(stored.status());
  *response = *std::move(stored);
  return grpc::Status::OK;
}

grpc::Status ShortageService::ListGuidance(grpc::ServerContext* context, const v1::ListGuidanceRequest* request,
                                           v1::ListGuidanceResponse* response) {
  auto principal = Authorize(*context, "ListGuidance", READERS);
  if (!principal.ok()) return ToGrpcStatus(principal.status());
  auto id = ParseShortageName(request->parent(), "parent");
  if (!id.ok()) return ToGrpcStatus(id.status());
  const uint64_t hash = FilterHash(request->parent());
  auto page = ParsePageRequest(request->page_size(), request->page_token(), hash);
  if (!page.ok()) return ToGrpcStatus(page.status());
  auto result = store_.ListGuidance(*id, *page);
  if (!result.ok()) return ToGrpcStatus(result.status());
  for (v1::Guidance& g : result->items) *response->add_guidance() = std::move(g);
  SetNextPageToken(*result, hash, response->mutable_next_page_token());
  return grpc::Status::OK;
}

// ---- meetings and actions -------------------------------------------------------------------------

grpc::Status ShortageService::CreateMeeting(grpc::ServerContext* context, const v1::CreateMeetingRequest* request,
                                            v1::Meeting* response) {
  auto principal = Authorize(*context, "CreateMeeting", TASK_FORCE_ONLY);
  if (!principal.ok()) return ToGrpcStatus(principal.status());
  if (absl::Status valid = ValidateCreateMeeting(*request); !valid.ok()) return ToGrpcStatus(valid);
  auto id = ParseShortageName(request->parent(), "parent");
  if (!id.ok()) return ToGrpcStatus(id.status());
  auto stored = store_.CreateMeeting(*id, request->meeting(), request->request_id(), ActorOf(*principal, clock_));
  if (!stored.ok()) return ToGrpcStatus(stored.status());
  *response = *std::move(stored);
  return grpc::Status::OK;
}

grpc::Status ShortageService::ListMeetings(grpc::ServerContext* context, const v1::ListMeetingsRequest* request,
                                           v1::ListMeetingsResponse* response) {
  auto principal = Authorize(*context, "ListMeetings", FORUM_READERS);
  if (!principal.ok()) return ToGrpcStatus(principal.status());
  auto id = ParseShortageName(request->parent(), "parent");
  if (!id.ok()) return ToGrpcStatus(id.status());
  const uint64_t hash = FilterHash(request->parent());
  auto page = ParsePageRequest(request->page_size(), request->page_token(), hash);
  if (!page.ok()) return ToGrpcStatus(page.status());
  auto result = store_.ListMeetings(*id, *page);
  if (!result.ok()) return ToGrpcStatus(result.status());
  for (v1::Meeting& m : result->items) *response->add_meetings() = std::move(m);
  SetNextPageToken(*result, hash, response->mutable_next_page_token());
  return grpc::Status::OK;
}

grpc::Status ShortageService::CreateAction(grpc::ServerContext* context, const v1::CreateActionRequest* request,
                                           v1::Action* response) {
  auto principal = Authorize(*context, "CreateAction", TASK_FORCE_ONLY);
  if (!principal.ok()) return ToGrpcStatus(principal.status());
  if (absl::Status valid = ValidateCreateAction(*request); !valid.ok()) return ToGrpcStatus(valid);
  auto id = ParseShortageName(request->parent(), "parent");
  if (!id.ok()) return ToGrpcStatus(id.status());
  auto stored = store_.CreateAction(*id, request->action(), request->request_id(), ActorOf(*principal, clock_));
  if (!stored.ok()) return ToGrpcStatus(stored.status());
  *response = *std::move(stored);
  return grpc::Status::OK;
}

grpc::Status ShortageService::UpdateAction(grpc::ServerContext* context, const v1::UpdateActionRequest* request,
                                           v1::Action* response) {
  auto principal = Authorize(*context, "UpdateAction", TASK_FORCE_ONLY);
  if (!principal.ok()) return ToGrpcStatus(principal.status());
  if (absl::Status valid = ValidateUpdateAction(*request); !valid.ok()) return ToGrpcStatus(valid);
  auto name = ParseChildName(request->action().name(), "actions", "action.name");
  if (!name.ok()) return ToGrpcStatus(name.status());
  auto action_id = ParseNumericId(name->child_id, "action.name");
  if (!action_id.ok()) return ToGrpcStatus(action_id.status());
  std::vector<std::string> paths(request->update_mask().paths().begin(), request->update_mask().paths().end());
  auto stored =
      store_.UpdateAction(name->shortage_id, *action_id, request->action(), paths, ActorOf(*principal, clock_));
  if (!stored.ok()) return ToGrpcStatus(stored.status());
  *response = *std::move(stored);
  return grpc::Status::OK;
}

grpc::Status ShortageService::ListActions(grpc::ServerContext* context, const v1::ListActionsRequest* request,
                                          v1::ListActionsResponse* response) {
  auto principal = Authorize(*context, "ListActions", FORUM_READERS);
  if (!principal.ok()) return ToGrpcStatus(principal.status());
  auto id = ParseShortageName(request->parent(), "parent");
  if (!id.ok()) return ToGrpcStatus(id.status());
  FieldViolations v;
  std::vector<int> statuses;
  for (int i = 0; i < request->statuses_size(); ++i) {
    if (request->statuses(i) == v1::ACTION_STATUS_UNSPECIFIED || !v1::ActionStatus_IsValid(request->statuses(i))) {
      v.Add(absl::StrCat("statuses[", i, "]"), "is not an action status");
    }
    statuses.push_back(request->statuses(i));
  }
  if (!v.empty()) return ToGrpcStatus(v.ToStatus());
  v1::ListActionsRequest filters = *request;
  filters.clear_page_size();
  filters.clear_page_token();
  const uint64_t hash = FilterHash(filters.SerializeAsString());
  auto page = ParsePageRequest(request->page_size(), request->page_token(), hash);
  if (!page.ok()) return ToGrpcStatus(page.status());
  auto result = store_.ListActions(*id, statuses, *page);
  if (!result.ok()) return ToGrpcStatus(result.status());
  for (v1::Action& a : result->items) *response->add_actions() = std::move(a);
  SetNextPageToken(*result, hash, response->mutable_next_page_token());
  return grpc::Status::OK;
}

// ---- live feed ----------------------------------------------------------------------------------------

grpc::ServerWriteReactor<v1::WatchShortagesResponse>* ShortageService::WatchShortages(
    grpc::CallbackServerContext* context, const v1::WatchShortagesRequest* request) {
  auto principal = Authorize(*context, "WatchShortages", READERS);
  if (!principal.ok()) return new RejectedWatch(principal.status());
  auto filter = MakeFeedFilter(*request, *principal);
  if (!filter.ok()) return new RejectedWatch(filter.status());
  if (!hub_.ready()) return new RejectedWatch(absl::UnavailableError("the live feed is starting; retry shortly"));
  std::optional<int64_t> after;
  if (request->has_after_sequence()) after = request->after_sequence();
  return new WatchReactor(hub_, *std::move(filter), after);
}

}  // namespace medkoord::shortage
