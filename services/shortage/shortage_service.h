#pragma once
// The public gRPC API of the shortage service: thin handlers that verify the
// signed principal, check roles and region scope, validate, and call the
// domain code and the store. WatchShortages uses the callback API (a
// ServerWriteReactor per stream, no thread per subscriber); the other
// methods are synchronous.

#include <functional>
#include <memory>

#include "common/clock.h"
#include "common/principal.h"
#include "medkoord/shortage/v1/shortage.grpc.pb.h"
#include "services/shortage/event_feed.h"
#include "services/shortage/shortage_store.h"

namespace medkoord::shortage {

class ShortageService final : public v1::Shortage::WithCallbackMethod_WatchShortages<v1::Shortage::Service> {
 public:
  ShortageService(ShortageStore& store, EventHub& hub, const PrincipalSigner& signer, const Clock& clock)
      : store_(store), hub_(hub), signer_(signer), clock_(clock) {}

  grpc::Status AnnounceShortage(grpc::ServerContext* context, const v1::AnnounceShortageRequest* request,
                                v1::ShortageRecord* response) override;
  grpc::Status GetShortage(grpc::ServerContext* context, const v1::GetShortageRequest* request,
                           v1::ShortageRecord* response) override;
  grpc::Status ListShortages(grpc::ServerContext* context, const v1::ListShortagesRequest* request,
                             v1::ListShortagesResponse* response) override;
  grpc::Status UpdateShortage(grpc::ServerContext* context, const v1::UpdateShortageRequest* request,
                              v1::ShortageRecord* response) override;
  grpc::Status ActivateShortage(grpc::ServerContext* context, const v1::TransitionShortageRequest* request,
                                v1::ShortageRecord* response) override;
  grpc::Status ResolveShortage(grpc::ServerContext* context, const v1::TransitionShortageRequest* request,
                               v1::ShortageRecord* response) override;
  grpc::Status CancelShortage(grpc::ServerContext* context, const v1::TransitionShortageRequest* request,
                              v1::ShortageRecord* response) override;

  grpc::Status ReportPosition(grpc::ServerContext* context, const v1::ReportPositionRequest* request,
                              v1::RegionalPosition* response) override;
  grpc::Status ListPositions(grpc::ServerContext* context, const v1::ListPositionsRequest* request,
                             v1::ListPositionsResponse* response) override;
  grpc::Status GetCoverage(grpc::ServerContext* context, const v1::GetCoverageRequest* request,
                           v1::Coverage* response) override;

  grpc::Status ProposeAllocation(grpc::ServerContext* context, const v1::ProposeAllocationRequest* request,
                                 v1::Allocation* response) override;
  grpc::Status ApproveAllocation(grpc::ServerContext* context, const v1::ApproveAllocationRequest* request,
                                 v1::Allocation* response) override;
  grpc::Status GetAllocation(grpc::ServerContext* context, const v1::GetAllocationRequest* request,
                             v1::Allocation* response) override;
  grpc::Status ListAllocations(grpc::ServerContext* context, const v1::ListAllocationsRequest* request,
                               v1::ListAllocationsResponse* response) override;

  grpc::Status PublishGuidance(grpc::ServerContext* context, const v1::PublishGuidanceRequest* request,
                               v1::Guidance* response) override;
  grpc::Status GetGuidance(grpc::ServerContext* context, const v1::GetGuidanceRequest* request,
                           v1::Guidance* response) override;
  grpc::Status ListGuidance(grpc::ServerContext* context, const v1::ListGuidanceRequest* request,
                            v1::ListGuidanceResponse* response) override;

  grpc::Status CreateMeeting(grpc::ServerContext* context, const v1::CreateMeetingRequest* request,
                             v1::Meeting* response) override;
  grpc::Status ListMeetings(grpc::ServerContext* context, const v1::ListMeetingsRequest* request,
                            v1::ListMeetingsResponse* response) override;
  grpc::Status CreateAction(grpc::ServerContext* context, const v1::CreateActionRequest* request,
                            v1::Action* response) override;
  grpc::Status UpdateAction(grpc::ServerContext* context, const v1::UpdateActionRequest* request,
                            v1::Action* response) override;
  grpc::Status ListActions(grpc::ServerContext* context, const v1::ListActionsRequest* request,
                           v1::ListActionsResponse* response) override;

  grpc::ServerWriteReactor<v1::WatchShortagesResponse>* WatchShortages(
      grpc::CallbackServerContext* context, const v1::WatchShortagesRequest* request) override;

 private:
  absl::StatusOr<Principal> Authorize(const grpc::ServerContextBase& context, const char* method,
                                      std::initializer_list<common::v1::Role> roles) const;
  // Verifies the principal and its roles, runs `body`, maps its status.
  grpc::Status Handle(const grpc::ServerContextBase& context, const char* method,
                      std::initializer_list<common::v1::Role> roles,
                      const std::function<absl::Status(const Principal&)>& body) const;
  grpc::Status Transition(grpc::ServerContext* context, const char* method, const v1::TransitionShortageRequest& request,
                          v1::ShortageStatus to, v1::ShortageRecord* response);

  ShortageStore& store_;
  EventHub& hub_;
  const PrincipalSigner& signer_;
  const Clock& clock_;
};

}  // namespace medkoord::shortage
