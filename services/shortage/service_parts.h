#pragma once
// Wiring of the shortage service, shared by main.cc and the tests: the
// store, the live feed (a background task) and the gRPC service.
//
// Settings beyond the common ones (all optional):
//   --feed_max_lag        MEDKOORD_FEED_MAX_LAG        events a live subscriber may trail (8192)
//   --feed_poll_interval  MEDKOORD_FEED_POLL_INTERVAL  safety poll of the event log (1s)

#include "absl/status/statusor.h"
#include "common/service_main.h"
#include "services/shortage/event_feed.h"

namespace medkoord::shortage {

const std::vector<db::Migration>& Migrations();

absl::StatusOr<ServiceParts> BuildShortageService(ServiceContext& context);
// The same with explicit feed options (tests).
absl::StatusOr<ServiceParts> BuildShortageService(ServiceContext& context, EventHub::Options feed_options,
                                                  EventHub** hub_out = nullptr);

}  // namespace medkoord::shortage
