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
    SetWeeksOfCover(line->mutable_weeks_of_cover_before(), plan.shares[i].cover_before);
    SetWeeksOfCover(line->mutable_weeks_of_cover_after(), plan.shares[i].cover_after);
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

grpc::Status ShortageService::Handle(const grpc::ServerContextBase& context, const char* method,
                                     std::initializer_list<common::v1::Role> roles,
                                     const std::function<absl::Status(const Principal&)>& body) const {
  absl::StatusOr<Principal> principal = Authorize(context, method, roles);
  if (!principal.ok()) return ToGrpcStatus(principal.status());
  return ToGrpcStatus(body(*principal));
}

namespace {

// The filters of a List request without its paging fields, hashed so that a
// page token only works with the filters it was made for.
template <typename Request>
uint64_t FiltersHash(Request filters) {
  filters.clear_page_size();
  filters.clear_page_token();
  return FilterHash(filters.SerializeAsString());
}

// One page of a List: parses the token, fetches, copies, sets the next token.
template <typename T>
absl::Status ListPage(uint64_t hash, int32_t page_size, const std::string& page_token,
                      const std::function<absl::StatusOr<Page<T>>(const PageRequest&)>& fetch,
                      google::protobuf::RepeatedPtrField<T>* out, std::string* next_page_token) {
  ASSIGN_OR_RETURN(PageRequest page, ParsePageRequest(page_size, page_token, hash));
  ASSIGN_OR_RETURN(Page<T> result, fetch(page));
  for (T& item : result.items) *out->Add() = std::move(item);
  if (!result.next_after.empty()) *next_page_token = EncodePageToken(result.next_after, hash);
  return absl::OkStatus();
}

struct ChildId {
  std::string shortage_id;
  int64_t id = 0;
};

// "shortages/{id}/{collection}/{n}" with a numeric n.
absl::StatusOr<ChildId> ParseNumericChild(const std::string& name, const char* collection, const char* field) {
  ASSIGN_OR_RETURN(ChildName child, ParseChildName(name, collection, field));
  ASSIGN_OR_RETURN(int64_t id, ParseNumericId(child.child_id, field));
  return ChildId{child.shortage_id, id};
}

}  // namespace

// ---- shortages ----------------------------------------------------------------------

grpc::Status ShortageService::AnnounceShortage(grpc::ServerContext* context, const v1::AnnounceShortageRequest* request,
                                               v1::ShortageRecord* response) {
  return Handle(*context, "AnnounceShortage", TASK_FORCE_ONLY, [&](const Principal& principal) -> absl::Status {
    RETURN_IF_ERROR(ValidateAnnounce(*request));
    ASSIGN_OR_RETURN(*response, store_.Announce(*request, ActorOf(principal, clock_)));
    return absl::OkStatus();
  });
}

grpc::Status ShortageService::GetShortage(grpc::ServerContext* context, const v1::GetShortageRequest* request,
                                          v1::ShortageRecord* response) {
  return Handle(*context, "GetShortage", READERS, [&](const Principal&) -> absl::Status {
    ASSIGN_OR_RETURN(std::string id, ParseShortageName(request->name(), "name"));
    ASSIGN_OR_RETURN(*response, store_.GetShortage(id));
    return absl::OkStatus();
  });
}

grpc::Status ShortageService::ListShortages(grpc::ServerContext* context, const v1::ListShortagesRequest* request,
                                            v1::ListShortagesResponse* response) {
  return Handle(*context, "ListShortages", READERS, [&](const Principal&) -> absl::Status {
    RETURN_IF_ERROR(ValidateListShortages(*request));
    return ListPage<v1::ShortageRecord>(
        FiltersHash(*request), request->page_size(), request->page_token(),
        [&](const PageRequest& page) { return store_.ListShortages(*request, page); },
        response->mutable_shortages(), response->mutable_next_page_token());
  });
}

grpc::Status ShortageService::UpdateShortage(grpc::ServerContext* context, const v1::UpdateShortageRequest* request,
                                             v1::ShortageRecord* response) {
  return Handle(*context, "UpdateShortage", TASK_FORCE_ONLY, [&](const Principal& principal) -> absl::Status {
    RETURN_IF_ERROR(ValidateUpdateShortage(*request));
    ASSIGN_OR_RETURN(std::string id, ParseShortageName(request->shortage().name(), "shortage.name"));
    ASSIGN_OR_RETURN(*response, store_.UpdateShortage(id, *request, ActorOf(principal, clock_)));
    return absl::OkStatus();
  });
}

grpc::Status ShortageService::Transition(grpc::ServerContext* context, const char* method,
                                         const v1::TransitionShortageRequest& request, v1::ShortageStatus to,
                                         v1::ShortageRecord* response) {
  return Handle(*context, method, TASK_FORCE_ONLY, [&](const Principal& principal) -> absl::Status {
    ASSIGN_OR_RETURN(std::string id, ParseShortageName(request.name(), "name"));
    if (request.reason().size() > 2000) return InvalidField("reason", "must be at most 2000 bytes");
    ASSIGN_OR_RETURN(*response, store_.Transition(
                                    id, to, request.reason(),
                                    [to](v1::ShortageStatus from) { return CheckTransition(from, to); },
                                    ActorOf(principal, clock_)));
    return absl::OkStatus();
  });
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
  return Handle(*context, "ReportPosition", {ROLE_TASK_FORCE, ROLE_REGION}, [&](const Principal& principal) -> absl::Status {
    ASSIGN_OR_RETURN(int scope, RegionScope(principal));
    RETURN_IF_ERROR(ValidateReportPosition(*request, clock_.Now()));
    if (scope != 0 && request->position().region() != scope) {
      return absl::PermissionDeniedError(absl::StrCat("a regional caller reports only its own region (",
                                                      std::string(RegionSlug(principal.region())), ")"));
    }
    ASSIGN_OR_RETURN(std::string id, ParseShortageName(request->parent(), "parent"));
    ASSIGN_OR_RETURN(*response, store_.ReportPosition(id, request->position(), request->request_id(),
                                                      ActorOf(principal, clock_)));
    return absl::OkStatus();
  });
}

grpc::Status ShortageService::ListPositions(grpc::ServerContext* context, const v1::ListPositionsRequest* request,
                                            v1::ListPositionsResponse* response) {
  return Handle(*context, "ListPositions", READERS, [&](const Principal& principal) -> absl::Status {
    ASSIGN_OR_RETURN(int scope, RegionScope(principal));
    ASSIGN_OR_RETURN(std::string id, ParseShortageName(request->parent(), "parent"));
    int region = request->region();
    if (region != 0 && !common::v1::Region_IsValid(region)) return InvalidField("region", "is not a region");
    if (scope != 0) {
      if (region != 0 && region != scope) {
        return absl::PermissionDeniedError("a regional caller sees only its own region's positions");
      }
      region = scope;
    }
    v1::ListPositionsRequest filters = *request;
    filters.set_region(static_cast<Region>(region));
    return ListPage<v1::RegionalPosition>(
        FiltersHash(filters), request->page_size(), request->page_token(),
        [&](const PageRequest& page) { return store_.ListPositions(id, region, request->current_only(), page); },
        response->mutable_positions(), response->mutable_next_page_token());
  });
}

grpc::Status ShortageService::GetCoverage(grpc::ServerContext* context, const v1::GetCoverageRequest* request,
                                          v1::Coverage* response) {
  return Handle(*context, "GetCoverage", READERS, [&](const Principal& principal) -> absl::Status {
    ASSIGN_OR_RETURN(int scope, RegionScope(principal));
    ASSIGN_OR_RETURN(std::string id, ParseShortageName(request->name(), "name"));
    ASSIGN_OR_RETURN(std::vector<v1::RegionalPosition> positions, store_.CurrentPositions(id));
    std::map<int, const v1::RegionalPosition*> by_region;
    for (const v1::RegionalPosition& p : positions) by_region[p.region()] = &p;
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
      if (scope != 0 && r != scope) continue;
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
    SetWeeksOfCover(response->mutable_national_weeks_of_cover(), WeeksOfCover(stock, millipacks));
    return absl::OkStatus();
  });
}

// ---- allocations ----------------------------------------------------------------------------

grpc::Status ShortageService::ProposeAllocation(grpc::ServerContext* context,
                                                const v1::ProposeAllocationRequest* request,
                                                v1::Allocation* response) {
  return Handle(*context, "ProposeAllocation", TASK_FORCE_ONLY, [&](const Principal& principal) -> absl::Status {
    RETURN_IF_ERROR(ValidateProposeAllocation(*request));
    ASSIGN_OR_RETURN(std::string id, ParseShortageName(request->parent(), "parent"));
    ASSIGN_OR_RETURN(*response, store_.ProposeAllocation(
                                    id, *request,
                                    [request](const std::vector<v1::RegionalPosition>& positions) {
                                      return Plan(*request, positions);
                                    },
                                    ActorOf(principal, clock_)));
    return absl::OkStatus();
  });
}

grpc::Status ShortageService::ApproveAllocation(grpc::ServerContext* context,
                                                const v1::ApproveAllocationRequest* request,
                                                v1::Allocation* response) {
  return Handle(*context, "ApproveAllocation", TASK_FORCE_ONLY, [&](const Principal& principal) -> absl::Status {
    ASSIGN_OR_RETURN(ChildId allocation, ParseNumericChild(request->name(), "allocations", "name"));
    ASSIGN_OR_RETURN(*response, store_.ApproveAllocation(
                                    allocation.shortage_id, allocation.id, *request,
                                    [request](int64_t quantity) { return ValidateAmendment(*request, quantity); },
                                    ActorOf(principal, clock_)));
    return absl::OkStatus();
  });
}

grpc::Status ShortageService::GetAllocation(grpc::ServerContext* context, const v1::GetAllocationRequest* request,
                                            v1::Allocation* response) {
  return Handle(*context, "GetAllocation", READERS, [&](const Principal& principal) -> absl::Status {
    ASSIGN_OR_RETURN(int scope, RegionScope(principal));
    ASSIGN_OR_RETURN(ChildId allocation, ParseNumericChild(request->name(), "allocations", "name"));
    ASSIGN_OR_RETURN(v1::Allocation stored, store_.GetAllocation(allocation.shortage_id, allocation.id));
    if (scope != 0 && stored.state() != v1::ALLOCATION_STATE_APPROVED) {
      return absl::PermissionDeniedError("regions see approved allocations only");
    }
    *response = std::move(stored);
    return absl::OkStatus();
  });
}

grpc::Status ShortageService::ListAllocations(grpc::ServerContext* context, const v1::ListAllocationsRequest* request,
                                              v1::ListAllocationsResponse* response) {
  return Handle(*context, "ListAllocations", READERS, [&](const Principal& principal) -> absl::Status {
    ASSIGN_OR_RETURN(int scope, RegionScope(principal));
    ASSIGN_OR_RETURN(std::string id, ParseShortageName(request->parent(), "parent"));
    v1::AllocationState state = request->state();
    if (!v1::AllocationState_IsValid(state)) return InvalidField("state", "is not an allocation state");
    if (scope != 0) {
      if (state == v1::ALLOCATION_STATE_PROPOSED) {
        return absl::PermissionDeniedError("regions see approved allocations only");
      }
      state = v1::ALLOCATION_STATE_APPROVED;
    }
    v1::ListAllocationsRequest filters = *request;
    filters.set_state(state);
    return ListPage<v1::Allocation>(
        FiltersHash(filters), request->page_size(), request->page_token(),
        [&](const PageRequest& page) { return store_.ListAllocations(id, state, page); },
        response->mutable_allocations(), response->mutable_next_page_token());
  });
}

// ---- guidance ---------------------------------------------------------------------------------

grpc::Status ShortageService::PublishGuidance(grpc::ServerContext* context, const v1::PublishGuidanceRequest* request,
                                              v1::Guidance* response) {
  return Handle(*context, "PublishGuidance", TASK_FORCE_ONLY, [&](const Principal& principal) -> absl::Status {
    RETURN_IF_ERROR(ValidatePublishGuidance(*request));
    ASSIGN_OR_RETURN(std::string id, ParseShortageName(request->parent(), "parent"));
    ASSIGN_OR_RETURN(*response, store_.PublishGuidance(id, request->guidance(), request->request_id(),
                                                       ActorOf(principal, clock_)));
    return absl::OkStatus();
  });
}

grpc::Status ShortageService::GetGuidance(grpc::ServerContext* context, const v1::GetGuidanceRequest* request,
                                          v1::Guidance* response) {
  return Handle(*context, "GetGuidance", READERS, [&](const Principal&) -> absl::Status {
    ASSIGN_OR_RETURN(ChildName name, ParseChildName(request->name(), "guidance", "name"));
    int version = 0;  // latest
    if (name.child_id != "latest") {
      absl::StatusOr<int64_t> parsed = ParseNumericId(name.child_id, "name");
      if (!parsed.ok() || *parsed > 1000000) return InvalidField("name", "version must be a number or latest");
      version = static_cast<int>(*parsed);
    }
    ASSIGN_OR_RETURN(*response, store_.GetGuidance(name.shortage_id, version));
    return absl::OkStatus();
  });
}

grpc::Status ShortageService::ListGuidance(grpc::ServerContext* context, const v1::ListGuidanceRequest* request,
                                           v1::ListGuidanceResponse* response) {
  return Handle(*context, "ListGuidance", READERS, [&](const Principal&) -> absl::Status {
    ASSIGN_OR_RETURN(std::string id, ParseShortageName(request->parent(), "parent"));
    return ListPage<v1::Guidance>(
        FiltersHash(*request), request->page_size(), request->page_token(),
        [&](const PageRequest& page) { return store_.ListGuidance(id, page); }, response->mutable_guidance(),
        response->mutable_next_page_token());
  });
}

// ---- meetings and actions -------------------------------------------------------------------------

grpc::Status ShortageService::CreateMeeting(grpc::ServerContext* context, const v1::CreateMeetingRequest* request,
                                            v1::Meeting* response) {
  return Handle(*context, "CreateMeeting", TASK_FORCE_ONLY, [&](const Principal& principal) -> absl::Status {
    RETURN_IF_ERROR(ValidateCreateMeeting(*request));
    ASSIGN_OR_RETURN(std::string id, ParseShortageName(request->parent(), "parent"));
    ASSIGN_OR_RETURN(*response, store_.CreateMeeting(id, request->meeting(), request->request_id(),
                                                     ActorOf(principal, clock_)));
    return absl::OkStatus();
  });
}

grpc::Status ShortageService::ListMeetings(grpc::ServerContext* context, const v1::ListMeetingsRequest* request,
                                           v1::ListMeetingsResponse* response) {
  return Handle(*context, "ListMeetings", FORUM_READERS, [&](const Principal&) -> absl::Status {
    ASSIGN_OR_RETURN(std::string id, ParseShortageName(request->parent(), "parent"));
    return ListPage<v1::Meeting>(
        FiltersHash(*request), request->page_size(), request->page_token(),
        [&](const PageRequest& page) { return store_.ListMeetings(id, page); }, response->mutable_meetings(),
        response->mutable_next_page_token());
  });
}

grpc::Status ShortageService::CreateAction(grpc::ServerContext* context, const v1::CreateActionRequest* request,
                                           v1::Action* response) {
  return Handle(*context, "CreateAction", TASK_FORCE_ONLY, [&](const Principal& principal) -> absl::Status {
    RETURN_IF_ERROR(ValidateCreateAction(*request));
    ASSIGN_OR_RETURN(std::string id, ParseShortageName(request->parent(), "parent"));
    ASSIGN_OR_RETURN(*response, store_.CreateAction(id, request->action(), request->request_id(),
                                                    ActorOf(principal, clock_)));
    return absl::OkStatus();
  });
}

grpc::Status ShortageService::UpdateAction(grpc::ServerContext* context, const v1::UpdateActionRequest* request,
                                           v1::Action* response) {
  return Handle(*context, "UpdateAction", TASK_FORCE_ONLY, [&](const Principal& principal) -> absl::Status {
    RETURN_IF_ERROR(ValidateUpdateAction(*request));
    ASSIGN_OR_RETURN(ChildId action, ParseNumericChild(request->action().name(), "actions", "action.name"));
    std::vector<std::string> paths(request->update_mask().paths().begin(), request->update_mask().paths().end());
    ASSIGN_OR_RETURN(*response, store_.UpdateAction(action.shortage_id, action.id, request->action(), paths,
                                                    ActorOf(principal, clock_)));
    return absl::OkStatus();
  });
}

grpc::Status ShortageService::ListActions(grpc::ServerContext* context, const v1::ListActionsRequest* request,
                                          v1::ListActionsResponse* response) {
  return Handle(*context, "ListActions", FORUM_READERS, [&](const Principal&) -> absl::Status {
    ASSIGN_OR_RETURN(std::string id, ParseShortageName(request->parent(), "parent"));
    FieldViolations v;
    std::vector<int> statuses;
    for (int i = 0; i < request->statuses_size(); ++i) {
      if (request->statuses(i) == v1::ACTION_STATUS_UNSPECIFIED || !v1::ActionStatus_IsValid(request->statuses(i))) {
        v.Add(absl::StrCat("statuses[", i, "]"), "is not an action status");
      }
      statuses.push_back(request->statuses(i));
    }
    RETURN_IF_ERROR(v.ToStatus());
    return ListPage<v1::Action>(
        FiltersHash(*request), request->page_size(), request->page_token(),
        [&](const PageRequest& page) { return store_.ListActions(id, statuses, page); }, response->mutable_actions(),
        response->mutable_next_page_token());
  });
}

// ---- live feed ----------------------------------------------------------------------------------------

grpc::ServerWriteReactor<v1::WatchShortagesResponse>* ShortageService::WatchShortages(
    grpc::CallbackServerContext* context, const v1::WatchShortagesRequest* request) {
  auto principal = Authorize(*context, "WatchShortages", READERS);
  if (!principal.ok()) return new RejectedWatch(principal.status());
  auto filter = MakeFeedFilter(*request, *principal);
  if (!filter.ok()) return new RejectedWatch(filter.status());
  std::optional<int64_t> after;
  if (request->has_after_sequence()) after = request->after_sequence();
  absl::Status admitted = hub_.Admit(after);
  if (!admitted.ok()) return new RejectedWatch(admitted);
  return new WatchReactor(hub_, *std::move(filter), after);
}

}  // namespace medkoord::shortage
