#include "services/shortage/feed_filter.h"

#include "absl/strings/match.h"
#include "services/shortage/validation.h"

namespace medkoord::shortage {

bool IsRegionScoped(const Principal& principal) {
  return HasRole(principal, common::v1::ROLE_REGION) &&
         !HasAnyRole(principal, {common::v1::ROLE_TASK_FORCE, common::v1::ROLE_FORUM_MEMBER,
                                 common::v1::ROLE_FORUM_SECRETARIAT});
}

bool FeedFilter::Matches(const EventKey& e) const {
  if (!shortage_ids.empty() && !shortage_ids.count(e.shortage_id)) return false;
  if (!types.empty() && !types.count(e.type)) return false;
  if (!atc_prefix.empty() && !absl::StartsWith(e.atc_code, atc_prefix)) return false;
  if (region_scope != 0) {
    switch (e.type) {
      case v1::EVENT_TYPE_POSITION_REPORTED:
        return e.region == region_scope;
      case v1::EVENT_TYPE_ALLOCATION_PROPOSED:
      case v1::EVENT_TYPE_MEETING_CREATED:
      case v1::EVENT_TYPE_ACTION_CREATED:
      case v1::EVENT_TYPE_ACTION_UPDATED:
        return false;
      default:
        return true;
    }
  }
  return true;
}

absl::StatusOr<FeedFilter> MakeFeedFilter(const v1::WatchShortagesRequest& request, const Principal& principal) {
  RETURN_IF_ERROR(ValidateWatch(request));
  FeedFilter filter;
  for (const std::string& name : request.shortages()) {
    ASSIGN_OR_RETURN(std::string id, ParseShortageName(name, "shortages"));
    filter.shortage_ids.insert(std::move(id));
  }
  for (int type : request.event_types()) filter.types.insert(type);
  filter.atc_prefix = request.atc_prefix();
  if (IsRegionScoped(principal)) {
    if (principal.region() == common::v1::REGION_UNSPECIFIED) {
      return absl::PermissionDeniedError("a regional caller must be bound to a region");
    }
    filter.region_scope = principal.region();
  }
  return filter;
}

}  // namespace medkoord::shortage
