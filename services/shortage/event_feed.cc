#include "services/shortage/event_feed.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/status.h"

namespace medkoord::shortage {
namespace {

constexpr int kCatchUpBatch = 1000;

metrics::Gauge& SubscriberGauge() {
  static metrics::Gauge& g = metrics::DefaultRegistry().GetGauge(
      "medkoord_shortage_feed_subscribers", "WatchShortages subscribers connected to this replica");
  return g;
}
metrics::Counter& DroppedCounter() {
  static metrics::Counter& c = metrics::DefaultRegistry().GetCounter(
      "medkoord_shortage_feed_dropped_total", "Subscribers ended because they fell too far behind");
  return c;
}
metrics::Gauge& HeadGauge() {
  static metrics::Gauge& g = metrics::DefaultRegistry().GetGauge(
      "medkoord_shortage_feed_head", "Last event sequence this replica's feed has read");
  return g;
}

std::string ResumeHint(int64_t cursor) { return absl::StrCat("; resume with after_sequence=", cursor); }

absl::Status ShuttingDown(int64_t cursor) {
  return absl::UnavailableError(absl::StrCat("this replica is shutting down", ResumeHint(cursor)));
}

// OUT_OF_RANGE for a resume point the log cannot serve, with the field
// named the way validation names it (google.rpc.BadRequest), so a client
// can tell it apart from a transient failure without reading the message.
absl::Status ResumePointOutOfRange(std::string message, std::string violation) {
  FieldViolations violations;
  violations.Add("after_sequence", std::move(violation));
  absl::Status status = absl::OutOfRangeError(std::move(message));
  if (auto details = violations.ToStatus().GetPayload(kBadRequestTypeUrl)) {
    status.SetPayload(kBadRequestTypeUrl, *details);
  }
  return status;
}

absl::Status Pruned(int64_t after, int64_t oldest) {
  return ResumePointOutOfRange(
      absl::StrCat("after_sequence=", after, " is older than the event log keeps (the oldest event kept is ", oldest,
                   "); read the current state again, then resume with after_sequence=", oldest - 1),
      absl::StrCat("events up to ", oldest - 1, " are no longer kept; the oldest is ", oldest));
}

}  // namespace

absl::StatusOr<std::vector<FeedEvent>> ToFeedEvents(std::vector<StoredEvent> stored) {
  std::vector<FeedEvent> out;
  out.reserve(stored.size());
  for (StoredEvent& s : stored) {
    auto message = std::make_shared<v1::WatchShortagesResponse>();
    if (!message->mutable_event()->ParseFromString(s.payload)) {
      return absl::DataLossError(absl::StrCat("event ", s.sequence, " does not parse"));
    }
    out.push_back(FeedEvent{EventKey{s.sequence, s.type, std::move(s.shortage_id), std::move(s.atc_code), s.region},
                            std::move(message)});
  }
  return out;
}

// ---- Subscription ---------------------------------------------------------------

struct Subscription::Step {
  enum Kind { kNone, kSend, kClose, kReplay } kind = kNone;
  const v1::WatchShortagesResponse* message = nullptr;
  absl::Status status;
  int64_t replay_after = 0;
};

Subscription::Subscription(EventHub& hub, FeedFilter filter, std::optional<int64_t> after, FeedSink* sink)
    : hub_(hub), filter_(std::move(filter)), sink_(sink) {
  absl::MutexLock lock(&mu_);
  cursor_ = after.value_or(-1);
}

int64_t Subscription::cursor() const {
  absl::MutexLock lock(&mu_);
  return cursor_;
}

bool Subscription::AwaitClosing(absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  return mu_.AwaitWithTimeout(absl::Condition(&closing_), timeout);
}

void Subscription::Start() {
  {
    absl::MutexLock lock(&mu_);
    if (cursor_ < 0) cursor_ = hub_.head();
    started_ = true;
  }
  SubscriberGauge().Add(1);
  if (!hub_.Add(shared_from_this())) {
    // Shutdown began after the handler looked: refuse, as the handler would.
    absl::MutexLock lock(&mu_);
    RequestClose(ShuttingDown(cursor_));
  }
  Pump();
}

void Subscription::RequestClose(absl::Status status) {
  if (closing_) return;
  closing_ = true;
  close_status_ = std::move(status);
}

Subscription::Step Subscription::NextStep() {
  Step step;
  if (closed_) return step;
  if (closing_) {
    if (send_in_flight_) return step;  // closed when that send completes
    closed_ = true;
    step.kind = Step::kClose;
    step.status = *close_status_;
    return step;
  }
  if (!started_ || send_in_flight_) return step;
  while (true) {
    FeedEvent event;
    if (!replay_.empty()) {
      event = std::move(replay_.front());
      replay_.pop_front();
      if (event.key.sequence <= cursor_) continue;
    } else {
      switch (hub_.Get(cursor_ + 1, &event)) {
        case EventHub::Lookup::kFound:
          break;
        case EventHub::Lookup::kNotYet:
          if (caught_up_sent_) return step;
          // Replay (if any) is over: tell the client where live begins.
          caught_up_sent_ = true;
          {
            auto caught_up = std::make_shared<v1::WatchShortagesResponse>();
            caught_up->mutable_caught_up()->set_head_sequence(cursor_);
            in_flight_ = std::move(caught_up);
          }
          send_in_flight_ = true;
          step.kind = Step::kSend;
          step.message = in_flight_.get();
          return step;
        case EventHub::Lookup::kEvicted:
          if (caught_up_sent_) {
            // A live subscriber whose next event left the ring: too slow.
            DroppedCounter().Inc();
            closing_ = true;
            closed_ = true;
            step.kind = Step::kClose;
            step.status = absl::ResourceExhaustedError(
                absl::StrCat("subscriber fell too far behind the feed", ResumeHint(cursor_)));
            return step;
          }
          if (replay_pending_) return step;
          replay_pending_ = true;
          step.kind = Step::kReplay;
          step.replay_after = cursor_;
          return step;
      }
    }
    cursor_ = event.key.sequence;
    if (!filter_.Matches(event.key)) continue;
    in_flight_ = std::move(event.message);
    send_in_flight_ = true;
    step.kind = Step::kSend;
    step.message = in_flight_.get();
    return step;
  }
}

void Subscription::Pump() {
  Step step;
  {
    absl::MutexLock lock(&mu_);
    step = NextStep();
  }
  switch (step.kind) {
    case Step::kNone:
      return;
    case Step::kSend:
      sink_->Send(step.message);
      return;
    case Step::kReplay:
      hub_.ScheduleReplay(weak_from_this(), step.replay_after);
      return;
    case Step::kClose:
      hub_.Remove(this);
      SubscriberGauge().Add(-1);
      sink_->Close(step.status);
      return;
  }
}

void Subscription::OnSendDone(bool ok) {
  {
    absl::MutexLock lock(&mu_);
    send_in_flight_ = false;
    in_flight_.reset();
    if (!ok) RequestClose(absl::CancelledError("the stream is gone"));
  }
  Pump();
}

void Subscription::Cancel() {
  {
    absl::MutexLock lock(&mu_);
    RequestClose(absl::CancelledError("cancelled by the client"));
  }
  Pump();
}

void Subscription::Wake() {
  const int64_t head = hub_.head();
  {
    absl::MutexLock lock(&mu_);
    // Bounded backlog: a live subscriber this far behind is ended even while
    // a send is stuck, so it never holds the feed's memory or attention.
    if (caught_up_sent_ && !closing_ && head - cursor_ > hub_.options().max_lag) {
      DroppedCounter().Inc();
      RequestClose(absl::ResourceExhaustedError(
          absl::StrCat("subscriber fell more than ", hub_.options().max_lag, " events behind", ResumeHint(cursor_))));
    }
  }
  Pump();
}

void Subscription::OnReplay(absl::StatusOr<std::vector<FeedEvent>> events) {
  {
    absl::MutexLock lock(&mu_);
    replay_pending_ = false;
    if (!events.ok()) {
      RequestClose(absl::UnavailableError(
          absl::StrCat("cannot read the event log (", events.status().message(), ")", ResumeHint(cursor_))));
    } else if (events->empty()) {
      RequestClose(absl::DataLossError(absl::StrCat("event ", cursor_ + 1, " is missing from the log")));
    } else if (events->front().key.sequence > cursor_ + 1) {
      // Numbers are gap-free, so a hole at the start is what retention removed.
      RequestClose(Pruned(cursor_, events->front().key.sequence));
    } else {
      for (FeedEvent& e : *events) replay_.push_back(std::move(e));
    }
  }
  Pump();
}

// ---- EventHub ---------------------------------------------------------------------

EventHub::EventHub(ShortageStore& store, Options options) : store_(store), options_(options) {}

EventHub::~EventHub() { Stop(); }

void EventHub::Start() {
  if (started_) return;
  started_ = true;
  listener_ = std::thread([this] { ListenLoop(); });
  for (int i = 0; i < options_.replay_threads; ++i) replayers_.emplace_back([this] { ReplayLoop(); });
}

void EventHub::Stop() {
  if (!started_ || stop_.HasBeenNotified()) return;
  stop_.Notify();
  if (listener_.joinable()) listener_.join();
  {
    absl::MutexLock lock(&replay_mu_);
    stopping_ = true;
  }
  for (std::thread& t : replayers_) t.join();
  EndStreams();
}

void EventHub::EndStreams() {
  std::vector<std::shared_ptr<Subscription>> subscribers;
  {
    absl::MutexLock lock(&mu_);
    accepting_ = false;
    for (auto& [key, s] : subscribers_) subscribers.push_back(s);
  }
  for (auto& s : subscribers) {
    {
      absl::MutexLock lock(&s->mu_);
      // The cursor is the last event the client was sent (or skipped by its
      // filter): resuming after it elsewhere loses nothing. A send still in
      // flight finishes first, and then the stream is closed.
      s->RequestClose(ShuttingDown(s->cursor_));
    }
    s->Pump();
  }
  log::Info("feed streams ended for shutdown", {{"streams", subscribers.size()}});
}

absl::Status EventHub::Admit(std::optional<int64_t> after) const {
  int64_t head;
  {
    absl::MutexLock lock(&mu_);
    if (!ready_) return absl::UnavailableError("the live feed is starting; retry shortly");
    if (!accepting_) return ShuttingDown(after.value_or(head_));
    head = head_;
  }
  if (!after.has_value() || *after <= head) return absl::OkStatus();
  // This replica may simply not have read the newest events yet; only the
  // database's counter says whether the number was ever given out.
  ASSIGN_OR_RETURN(int64_t committed, store_.HeadSequence());
  if (*after <= committed) return absl::OkStatus();
  return ResumePointOutOfRange(
      absl::StrCat("after_sequence=", *after, " is beyond the newest event (", committed,
                   "); the log was restored or the number comes from another installation: read the current state "
                   "again, then resume with after_sequence=", committed),
      absl::StrCat("no event after ", committed, " exists"));
}

bool EventHub::ready() const {
  absl::MutexLock lock(&mu_);
  return ready_;
}

int64_t EventHub::head() const {
  absl::MutexLock lock(&mu_);
  return head_;
}

size_t EventHub::subscriber_count() const {
  absl::MutexLock lock(&mu_);
  return subscribers_.size();
}

bool EventHub::AwaitHead(int64_t sequence, absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  auto reached = [this, sequence]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return ready_ && head_ >= sequence; };
  return mu_.AwaitWithTimeout(absl::Condition(&reached), timeout);
}

EventHub::Lookup EventHub::Get(int64_t sequence, FeedEvent* out) const {
  absl::MutexLock lock(&mu_);
  if (sequence > head_) return Lookup::kNotYet;
  const int64_t first = ring_.empty() ? head_ + 1 : ring_.front().key.sequence;
  if (sequence < first) return Lookup::kEvicted;
  *out = ring_[static_cast<size_t>(sequence - first)];
  return Lookup::kFound;
}

bool EventHub::Add(const std::shared_ptr<Subscription>& subscription) {
  absl::MutexLock lock(&mu_);
  if (!accepting_) return false;
  subscribers_[subscription.get()] = subscription;
  return true;
}

void EventHub::Remove(const Subscription* subscription) {
  absl::MutexLock lock(&mu_);
  subscribers_.erase(subscription);
}

void EventHub::ScheduleReplay(std::weak_ptr<Subscription> subscription, int64_t after) {
  absl::MutexLock lock(&replay_mu_);
  replay_queue_.emplace_back(std::move(subscription), after);
}

void EventHub::ReplayLoop() {
  while (true) {
    std::pair<std::weak_ptr<Subscription>, int64_t> job;
    {
      absl::MutexLock lock(&replay_mu_);
      auto has_work = [this]() ABSL_SHARED_LOCKS_REQUIRED(replay_mu_) { return stopping_ || !replay_queue_.empty(); };
      replay_mu_.Await(absl::Condition(&has_work));
      if (stopping_) return;
      job = std::move(replay_queue_.front());
      replay_queue_.pop_front();
    }
    std::shared_ptr<Subscription> subscription = job.first.lock();
    if (!subscription) continue;
    auto stored = store_.ReadEventsAfter(job.second, options_.replay_batch);
    if (!stored.ok()) {
      subscription->OnReplay(stored.status());
    } else {
      subscription->OnReplay(ToFeedEvents(*std::move(stored)));
    }
  }
}

bool EventHub::CatchUp() {
  while (true) {
    int64_t from;
    {
      absl::MutexLock lock(&mu_);
      from = head_;
    }
    auto stored = store_.ReadEventsAfter(from, kCatchUpBatch);
    if (!stored.ok()) return false;
    if (stored->empty()) return true;
    if (stored->front().sequence > from + 1) SkipPruned(from);
    const size_t read = stored->size();
    auto events = ToFeedEvents(*std::move(stored));
    if (!events.ok()) {
      log::Error("feed cannot parse events", {{"error", std::string(events.status().message())}});
      return false;
    }
    std::vector<std::shared_ptr<Subscription>> subscribers;
    size_t appended = 0;
    {
      absl::MutexLock lock(&mu_);
      for (FeedEvent& e : *events) {
        // Numbers are gap-free in commit order; a gap is a number whose
        // transaction is not visible yet, so stop there and read again.
        if (e.key.sequence != head_ + 1) break;
        head_ = e.key.sequence;
        ring_.push_back(std::move(e));
        while (ring_.size() > options_.ring_capacity) ring_.pop_front();
        ++appended;
      }
      HeadGauge().Set(static_cast<double>(head_));
      subscribers.reserve(subscribers_.size());
      for (auto& [key, s] : subscribers_) subscribers.push_back(s);
    }
    for (auto& s : subscribers) s->Wake();
    // Stopped at a gap, or read everything: wait for the next wake-up.
    if (appended < read || read < static_cast<size_t>(kCatchUpBatch)) return true;
  }
}

void EventHub::SkipPruned(int64_t from) {
  // Either the next number's transaction is not visible yet (the loop below
  // waits for it) or retention removed it while this replica was cut off;
  // only the latter moves the head.
  absl::StatusOr<int64_t> oldest = store_.OldestSequence();
  if (!oldest.ok() || *oldest <= from + 1) return;
  absl::MutexLock lock(&mu_);
  if (head_ != from) return;
  log::Warn("feed skipped events the log no longer keeps", {{"from", from + 1}, {"to", *oldest - 1}});
  head_ = *oldest - 1;
  // The ring holds consecutive numbers only; its subscribers replay and are
  // told what is missing.
  ring_.clear();
}

void EventHub::ListenLoop() {
  std::unique_ptr<ShortageStore::Listener> listener;
  bool initialised = false;
  while (!stop_.HasBeenNotified()) {
    if (listener == nullptr) {
      auto opened = store_.Listen();
      if (!opened.ok()) {
        log::Warn("feed cannot listen yet", {{"error", std::string(opened.status().message())}});
        stop_.WaitForNotificationWithTimeout(options_.reconnect_backoff);
        continue;
      }
      listener = *std::move(opened);
      // LISTEN first, then read the head: nothing committed in between is lost.
      if (!initialised) {
        auto head = store_.HeadSequence();
        if (!head.ok()) {
          listener.reset();
          stop_.WaitForNotificationWithTimeout(options_.reconnect_backoff);
          continue;
        }
        absl::MutexLock lock(&mu_);
        head_ = *head;
        ready_ = true;
        initialised = true;
      }
      log::Info("feed listening", {{"head", head()}});
    }
    // After every wake-up (notification, poll timeout, reconnect) read
    // everything past the head; notifications only say "look".
    if (!CatchUp()) stop_.WaitForNotificationWithTimeout(options_.reconnect_backoff);
    absl::Status waited = listener->Wait(options_.poll_interval);
    if (!waited.ok()) {
      log::Warn("feed lost its database connection", {{"error", std::string(waited.message())}});
      listener.reset();
    }
  }
}

}  // namespace medkoord::shortage
