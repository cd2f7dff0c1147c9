#include "services/shortage/service_parts.h"

#include "services/shortage/shortage_service.h"
#include "services/shortage/shortage_store.h"

namespace medkoord::shortage {

absl::StatusOr<ServiceParts> BuildShortageService(ServiceContext& context) {
  EventHub::Options options;
  options.max_lag = context.config.Int("feed_max_lag", options.max_lag);
  options.poll_interval = context.config.Duration("feed_poll_interval", options.poll_interval);
  if (options.max_lag < 1) return absl::FailedPreconditionError("config: --feed_max_lag must be at least 1");
  options.ring_capacity = std::max<size_t>(options.ring_capacity, static_cast<size_t>(options.max_lag));
  return BuildShortageService(context, options);
}

absl::StatusOr<ServiceParts> BuildShortageService(ServiceContext& context, EventHub::Options feed_options,
                                                  EventHub** hub_out) {
  auto store = std::make_shared<ShortageStore>(context.pool);
  auto hub = std::make_unique<EventHub>(*store, feed_options);
  if (hub_out != nullptr) *hub_out = hub.get();
  ServiceParts parts;
  parts.services.push_back(std::make_unique<ShortageService>(*store, *hub, context.signer, context.clock));
  parts.background.push_back(std::move(hub));
  parts.keep_alive.push_back(store);
  return parts;
}

}  // namespace medkoord::shortage
