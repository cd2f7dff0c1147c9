#pragma once
// Wiring of the shortage service, shared by main.cc and the tests: the
// store, the live feed and the retention of its log (background tasks), and
// the gRPC service. When graceful shutdown begins, the feed ends its open
// streams with a resumable status (ServiceParts::on_shutdown).
//
// Settings beyond the common ones (all optional):
//   --feed_max_lag        MEDKOORD_FEED_MAX_LAG        events a live subscriber may trail (8192)
//   --feed_poll_interval  MEDKOORD_FEED_POLL_INTERVAL  safety poll of the event log (1s)
//   --feed_retention      MEDKOORD_FEED_RETENTION      how long the event log keeps events for
//                                                      resuming clients (2160h = 90 days; at least
//                                                      1h; "inf" keeps everything). The last
//                                                      ring-full of events (16384, or feed_max_lag
//                                                      if larger) is always kept.
//   --feed_prune_interval MEDKOORD_FEED_PRUNE_INTERVAL how often the log is pruned (1h)

#include "absl/status/statusor.h"
#include "common/config.h"
#include "common/service_main.h"
#include "services/shortage/event_feed.h"
#include "services/shortage/event_pruner.h"

namespace medkoord::shortage {

const std::vector<db::Migration>& Migrations();

struct FeedSettings {
  EventHub::Options hub;
  EventPruner::Options retention;
};

// The feed settings from the configuration. Malformed values are recorded on
// `config` (Config::Finish reports them); values out of range give one
// FAILED_PRECONDITION naming each (exit code 2).
absl::StatusOr<FeedSettings> ReadFeedSettings(Config& config);

// What the tests reach into.
struct ShortageHandles {
  EventHub* hub = nullptr;
  EventPruner* pruner = nullptr;
};

absl::StatusOr<ServiceParts> BuildShortageService(ServiceContext& context);
// The same with explicit feed settings (tests).
absl::StatusOr<ServiceParts> BuildShortageService(ServiceContext& context, const FeedSettings& feed,
                                                  ShortageHandles* handles = nullptr);

}  // namespace medkoord::shortage
