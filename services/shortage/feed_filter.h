#pragma once
// Which feed events one WatchShortages subscriber receives: the filters it
// asked for, narrowed by what its role may see. Pure, unit-tested.

#include <set>
#include <string>

#include "absl/status/statusor.h"
#include "common/principal.h"
#include "medkoord/shortage/v1/shortage.pb.h"

namespace medkoord::shortage {

// What the feed knows about an event without parsing its payload.
struct EventKey {
  int64_t sequence = 0;
  medkoord::shortage::v1::EventType type = medkoord::shortage::v1::EVENT_TYPE_UNSPECIFIED;
  std::string shortage_id;
  std::string atc_code;
  int region = 0;  // position events only
};

struct FeedFilter {
  std::set<std::string> shortage_ids;  // empty: all
  std::set<int> types;                 // empty: all
  std::string atc_prefix;              // empty: all
  // A region-bound caller (ARCHITECTURE.md roles): only its own positions,
  // only approved allocations, no meetings or actions. 0: not bound.
  int region_scope = 0;

  bool Matches(const EventKey& event) const;
};

// A regional caller is one whose only reading right comes from ROLE_REGION.
bool IsRegionScoped(const Principal& principal);

// The filter for a request from `principal`; INVALID_ARGUMENT for bad
// request fields.
absl::StatusOr<FeedFilter> MakeFeedFilter(const medkoord::shortage::v1::WatchShortagesRequest& request,
                                          const Principal& principal);

}  // namespace medkoord::shortage
