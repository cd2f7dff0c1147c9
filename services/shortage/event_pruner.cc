#include "services/shortage/event_pruner.h"

#include "common/log.h"
#include "common/metrics.h"

namespace medkoord::shortage {
namespace {

metrics::Counter& PrunedCounter() {
  static metrics::Counter& c = metrics::DefaultRegistry().GetCounter(
      "medkoord_shortage_feed_pruned_total", "Events removed from the feed's log by retention");
  return c;
}

}  // namespace

EventPruner::~EventPruner() { Stop(); }

void EventPruner::Start() {
  if (thread_.joinable()) return;
  thread_ = std::thread([this] { Loop(); });
}

void EventPruner::Stop() {
  if (!stop_.HasBeenNotified()) stop_.Notify();
  if (thread_.joinable()) thread_.join();
}

absl::StatusOr<int64_t> EventPruner::PruneOnce() {
  if (options_.retention == absl::InfiniteDuration()) return 0;
  const absl::Time cutoff = clock_.Now() - options_.retention;
  absl::StatusOr<int64_t> pruned = store_.PruneEvents(cutoff, options_.keep_last);
  if (pruned.ok() && *pruned > 0) {
    PrunedCounter().Inc(static_cast<double>(*pruned));
    log::Info("feed log pruned", {{"events", *pruned}, {"before", absl::FormatTime(cutoff)}});
  }
  return pruned;
}

int64_t EventPruner::passes() const {
  absl::MutexLock lock(&mu_);
  return passes_;
}

bool EventPruner::AwaitPasses(int64_t passes, absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  auto done = [this, passes]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return passes_ >= passes; };
  return mu_.AwaitWithTimeout(absl::Condition(&done), timeout);
}

void EventPruner::Loop() {
  do {
    absl::StatusOr<int64_t> pruned = PruneOnce();
    // A failed pass (database away) is simply tried again next time.
    if (!pruned.ok()) log::Warn("feed log not pruned", {{"error", std::string(pruned.status().message())}});
    absl::MutexLock lock(&mu_);
    ++passes_;
  } while (!stop_.WaitForNotificationWithTimeout(options_.interval));
}

}  // namespace medkoord::shortage
