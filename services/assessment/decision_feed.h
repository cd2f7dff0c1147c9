#pragma once
// The live decision feed behind WatchDecisions. Decisions are stored rows with
// a national sequence number (AssessmentStore::RecordDecision) and announced
// with PostgreSQL NOTIFY, so every replica sees every decision, whichever
// replica recorded it. One LISTEN connection and one reader per process poll
// the new rows into a bounded in-memory window; watchers (gRPC callback
// reactors, no thread each) pull from that window, or from the database when
// they resume from further back.

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/background_task.h"
#include "common/db/pool.h"
#include "services/assessment/assessment_store.h"

namespace medkoord::assessment {

class DecisionFeed final : public BackgroundTask {
 public:
  // Told that decisions newer than it may have seen are available. Called on
  // the feed's thread; must not block.
  class Listener {
   public:
    virtual ~Listener() = default;
    virtual void OnDecisions() = 0;
  };

  struct Options {
    // Safety net: re-read even without a notification (a NOTIFY is lost while
    // the LISTEN connection is being re-established).
    absl::Duration poll_interval = absl::Seconds(1);
    size_t window = 4096;  // recent decisions kept in memory
  };

  DecisionFeed(db::Pool& pool, AssessmentStore& store, Options options);
  DecisionFeed(db::Pool& pool, AssessmentStore& store) : DecisionFeed(pool, store, Options{}) {}
  ~DecisionFeed() override;

  void Start() override;
  void Stop() override;

  void Subscribe(const std::shared_ptr<Listener>& listener);
  void Unsubscribe(const Listener* listener);

  // Up to `limit` decisions with sequence > `after` (region 0: all regions),
  // in sequence order.
  absl::StatusOr<std::vector<CaseRecord>> After(int64_t after, int region, int limit);

  // Reads new decisions now (the loop calls it; tests may too).
  absl::Status Poll();

 private:
  void Loop();
  void NotifyListeners();

  db::Pool& pool_;
  AssessmentStore& store_;
  Options options_;
  std::thread thread_;
  absl::Notification stop_;
  std::atomic<bool> started_{false};

  absl::Mutex poll_mu_;  // one reader at a time
  absl::Mutex mu_;
  bool primed_ ABSL_GUARDED_BY(mu_) = false;
  int64_t latest_ ABSL_GUARDED_BY(mu_) = 0;
  std::deque<CaseRecord> window_ ABSL_GUARDED_BY(mu_);
  std::vector<std::weak_ptr<Listener>> listeners_ ABSL_GUARDED_BY(mu_);
};

}  // namespace medkoord::assessment
