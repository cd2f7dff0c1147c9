#pragma once
// Retention of the event log behind WatchShortages. The log is what lets a
// client resume from its last sequence number after a disconnect, so it is
// kept for a long time (90 days by default), but not forever: a background
// task removes the oldest events once they are older than the retention, and
// never one the in-memory ring may still hand out (the last
// `keep_last` numbers), so a live subscriber that falls out of the ring can
// always replay from the log. A client resuming from before the oldest
// event kept is told so with OUT_OF_RANGE (see Subscription), not given a
// silent gap.

#include <cstdint>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/background_task.h"
#include "common/clock.h"
#include "services/shortage/shortage_store.h"

namespace medkoord::shortage {

class EventPruner final : public BackgroundTask {
 public:
  struct Options {
    absl::Duration retention = absl::Hours(90 * 24);  // InfiniteDuration(): keep everything
    absl::Duration interval = absl::Hours(1);
    int64_t keep_last = 0;  // raised to the hub's ring capacity by BuildShortageService
  };

  EventPruner(ShortageStore& store, const Clock& clock, Options options)
      : store_(store), clock_(clock), options_(options) {}
  ~EventPruner() override;

  // Prunes once at start, then every `interval`.
  void Start() override;
  void Stop() override;

  // One pass: the number of events removed.
  absl::StatusOr<int64_t> PruneOnce();

  // Passes finished since start, and waiting for a number of them (tests).
  int64_t passes() const;
  bool AwaitPasses(int64_t passes, absl::Duration timeout) const;

 private:
  void Loop();

  ShortageStore& store_;
  const Clock& clock_;
  const Options options_;
  mutable absl::Mutex mu_;
  int64_t passes_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Notification stop_;
  std::thread thread_;
};

}  // namespace medkoord::shortage
