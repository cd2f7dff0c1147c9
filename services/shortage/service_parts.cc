#include "services/shortage/service_parts.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status.h"
#include "services/shortage/shortage_service.h"
#include "services/shortage/shortage_store.h"

namespace medkoord::shortage {

absl::StatusOr<FeedSettings> ReadFeedSettings(Config& config) {
  FeedSettings feed;
  feed.hub.max_lag = config.Int("feed_max_lag", feed.hub.max_lag);
  feed.hub.poll_interval = config.Duration("feed_poll_interval", feed.hub.poll_interval);
  feed.retention.retention = config.Duration("feed_retention", feed.retention.retention);
  feed.retention.interval = config.Duration("feed_prune_interval", feed.retention.interval);
  std::vector<std::string> problems;
  if (feed.hub.max_lag < 1) problems.push_back("--feed_max_lag must be at least 1");
  // Shorter than an hour is a mistake (a unit left off), not a policy: the
  // log is what lets clients resume after an outage.
  if (feed.retention.retention < absl::Hours(1)) problems.push_back("--feed_retention must be at least 1h");
  if (feed.retention.interval < absl::Seconds(1)) problems.push_back("--feed_prune_interval must be at least 1s");
  if (!problems.empty()) return absl::FailedPreconditionError(absl::StrCat("config: ", absl::StrJoin(problems, "; ")));
  feed.hub.ring_capacity = std::max<size_t>(feed.hub.ring_capacity, static_cast<size_t>(feed.hub.max_lag));
  return feed;
}

absl::StatusOr<ServiceParts> BuildShortageService(ServiceContext& context) {
  ASSIGN_OR_RETURN(FeedSettings feed, ReadFeedSettings(context.config));
  return BuildShortageService(context, feed);
}

absl::StatusOr<ServiceParts> BuildShortageService(ServiceContext& context, const FeedSettings& feed,
                                                  ShortageHandles* handles) {
  auto store = std::make_shared<ShortageStore>(context.pool);
  auto hub = std::make_unique<EventHub>(*store, feed.hub);
  EventPruner::Options retention = feed.retention;
  // Never prune what the ring may still hand out: a live subscriber that
  // falls out of the ring must find the rest in the log.
  retention.keep_last = std::max<int64_t>(retention.keep_last, static_cast<int64_t>(feed.hub.ring_capacity));
  auto pruner = std::make_unique<EventPruner>(*store, context.clock, retention);
  if (handles != nullptr) *handles = ShortageHandles{hub.get(), pruner.get()};
  ServiceParts parts;
  parts.services.push_back(std::make_unique<ShortageService>(*store, *hub, context.signer, context.clock));
  parts.on_shutdown.push_back([hub = hub.get()] { hub->EndStreams(); });
  parts.background.push_back(std::move(hub));
  parts.background.push_back(std::move(pruner));
  parts.keep_alive.push_back(store);
  return parts;
}

}  // namespace medkoord::shortage
