#pragma once
// The live feed behind WatchShortages, one EventHub per replica.
//
// Events reach every replica through PostgreSQL: a writer commits its event
// row and NOTIFYs `shortage_events`; each hub LISTENs on a dedicated
// connection, reads the new rows in sequence order and appends them to a
// bounded in-memory ring shared by its subscribers. A poll every
// `poll_interval` and a full catch-up after every reconnect cover lost
// notifications and database restarts.
//
// Each Subscription only holds a cursor (the last sequence it has passed),
// so a slow subscriber costs nothing to the others: the hub never waits for
// anyone. Its backlog is bounded: a live subscriber more than `max_lag`
// events behind the head (or whose next event has left the ring) is ended
// with RESOURCE_EXHAUSTED naming the after_sequence to resume from. A
// subscriber resuming from an older sequence replays from the event log on a
// small pool of replay threads, page by page, then continues from the ring;
// one resuming from before the oldest event the log still keeps (see
// EventPruner) is ended with OUT_OF_RANGE naming after_sequence and the
// oldest available, never handed a silent gap.
// Writes use the gRPC callback API, so subscribers need no thread each.

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/service_main.h"
#include "medkoord/shortage/v1/shortage.pb.h"
#include "services/shortage/feed_filter.h"
#include "services/shortage/shortage_store.h"

namespace medkoord::shortage {

// An event as the hub holds it: the filter key and the message to send,
// shared by every subscriber.
struct FeedEvent {
  EventKey key;
  std::shared_ptr<const v1::WatchShortagesResponse> message;
};

// Where a subscription's messages go: the gRPC stream in production. Send
// is asynchronous; the sink reports completion via Subscription::OnSendDone.
class FeedSink {
 public:
  virtual ~FeedSink() = default;
  virtual void Send(const v1::WatchShortagesResponse* message) = 0;
  // Ends the stream. Called exactly once, never while a Send is pending.
  virtual void Close(const absl::Status& status) = 0;
};

class EventHub;

class Subscription : public std::enable_shared_from_this<Subscription> {
 public:
  // `after`: resume point; nullopt = from the hub's current head.
  Subscription(EventHub& hub, FeedFilter filter, std::optional<int64_t> after, FeedSink* sink);

  void Start();
  void OnSendDone(bool ok);
  // The client went away.
  void Cancel();

  int64_t cursor() const;
  // Blocks until the subscription decided to end (tests); true if it did.
  bool AwaitClosing(absl::Duration timeout) const;

 private:
  friend class EventHub;
  struct Step;
  // New events in the hub.
  void Wake();
  void OnReplay(absl::StatusOr<std::vector<FeedEvent>> events);
  void Pump();
  // Decides the next thing to do, under mu_.
  Step NextStep() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RequestClose(absl::Status status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  EventHub& hub_;
  const FeedFilter filter_;
  FeedSink* const sink_;
  mutable absl::Mutex mu_;
  int64_t cursor_ ABSL_GUARDED_BY(mu_) = 0;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool caught_up_sent_ ABSL_GUARDED_BY(mu_) = false;
  bool send_in_flight_ ABSL_GUARDED_BY(mu_) = false;
  bool replay_pending_ ABSL_GUARDED_BY(mu_) = false;
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<absl::Status> close_status_ ABSL_GUARDED_BY(mu_);
  std::deque<FeedEvent> replay_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<const v1::WatchShortagesResponse> in_flight_ ABSL_GUARDED_BY(mu_);
  bool pumping_ ABSL_GUARDED_BY(mu_) = false;
  bool pump_again_ ABSL_GUARDED_BY(mu_) = false;
};

class EventHub final : public BackgroundTask {
 public:
  struct Options {
    size_t ring_capacity = 16384;
    int64_t max_lag = 8192;                      // <= ring_capacity
    absl::Duration poll_interval = absl::Seconds(1);
    absl::Duration reconnect_backoff = absl::Milliseconds(200);
    int replay_batch = 500;
    int replay_threads = 2;
  };

  explicit EventHub(ShortageStore& store) : EventHub(store, Options{}) {}
  EventHub(ShortageStore& store, Options options);
  ~EventHub() override;

  void Start() override;
  void Stop() override;

  // Graceful shutdown has begun (ServiceParts::on_shutdown): ends every open
  // stream at once with UNAVAILABLE naming the after_sequence to resume
  // from (on another replica), and refuses new ones, so that shutdown does
  // not wait out its grace period on streams that never end by themselves.
  void EndStreams();
  // Whether a stream resuming after `after` (nullopt: from now on) may
  // start here: UNAVAILABLE while the hub is starting or once EndStreams ran
  // (naming the resume point), OUT_OF_RANGE when `after` is beyond the last
  // number ever committed (a restored database, another installation's
  // number), where waiting would silently skip the events up to it.
  absl::Status Admit(std::optional<int64_t> after) const;

  // False until the hub has read the head of the log after start.
  bool ready() const;
  int64_t head() const;
  const Options& options() const { return options_; }
  size_t subscriber_count() const;
  // Blocks until the hub has seen `sequence` or `timeout` passed (tests,
  // benchmarks). True when seen.
  bool AwaitHead(int64_t sequence, absl::Duration timeout) const;

  enum class Lookup { kFound, kNotYet, kEvicted };
  Lookup Get(int64_t sequence, FeedEvent* out) const;

 private:
  friend class Subscription;
  // False (and not added) once the hub no longer accepts subscribers.
  bool Add(const std::shared_ptr<Subscription>& subscription);
  void Remove(const Subscription* subscription);
  void ScheduleReplay(std::weak_ptr<Subscription> subscription, int64_t after);

  void ListenLoop();
  // Reads every committed event after head_; false on a database error.
  bool CatchUp();
  // When the log no longer holds head_ + 1 (pruned while this replica was
  // cut off), moves the head past the hole so the feed does not stall.
  void SkipPruned(int64_t from);
  void ReplayLoop();

  ShortageStore& store_;
  const Options options_;

  mutable absl::Mutex mu_;
  bool ready_ ABSL_GUARDED_BY(mu_) = false;
  bool accepting_ ABSL_GUARDED_BY(mu_) = true;
  int64_t head_ ABSL_GUARDED_BY(mu_) = 0;
  std::deque<FeedEvent> ring_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<const Subscription*, std::shared_ptr<Subscription>> subscribers_ ABSL_GUARDED_BY(mu_);

  absl::Mutex replay_mu_;
  std::deque<std::pair<std::weak_ptr<Subscription>, int64_t>> replay_queue_ ABSL_GUARDED_BY(replay_mu_);
  bool stopping_ ABSL_GUARDED_BY(replay_mu_) = false;

  absl::Notification stop_;
  std::thread listener_;
  std::vector<std::thread> replayers_;
  bool started_ = false;
};

// Parses stored events into feed events (payload -> message).
absl::StatusOr<std::vector<FeedEvent>> ToFeedEvents(std::vector<StoredEvent> stored);

}  // namespace medkoord::shortage
