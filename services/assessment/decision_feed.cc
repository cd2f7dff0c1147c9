#include "services/assessment/decision_feed.h"

#include <algorithm>
#include <utility>

#include <pqxx/pqxx>

#include "common/log.h"

namespace medkoord::assessment {
namespace {

constexpr int kBatch = 500;

// Counts notifications; the payload (the sequence) is not needed because the
// feed always reads everything after what it has.
class Receiver final : public pqxx::notification_receiver {
 public:
  Receiver(pqxx::connection_base& conn, const std::string& channel)
      : pqxx::notification_receiver(conn, channel) {}
  void operator()(const std::string&, int) override { ++received; }
  int received = 0;
};

}  // namespace

DecisionFeed::DecisionFeed(db::Pool& pool, AssessmentStore& store, Options options)
    : pool_(pool), store_(store), options_(options) {}

DecisionFeed::~DecisionFeed() { Stop(); }

void DecisionFeed::Start() {
  if (started_.exchange(true)) return;
  thread_ = std::thread([this] { Loop(); });
}

void DecisionFeed::Stop() {
  if (!started_.load()) return;
  if (!stop_.HasBeenNotified()) stop_.Notify();
  if (thread_.joinable()) thread_.join();
}

void DecisionFeed::Subscribe(const std::shared_ptr<Listener>& listener) {
  absl::MutexLock lock(&mu_);
  listeners_.push_back(listener);
}

void DecisionFeed::Unsubscribe(const Listener* listener) {
  absl::MutexLock lock(&mu_);
  listeners_.erase(std::remove_if(listeners_.begin(), listeners_.end(),
                                  [&](const std::weak_ptr<Listener>& w) {
                                    std::shared_ptr<Listener> l = w.lock();
                                    return !l || l.get() == listener;
                                  }),
                   listeners_.end());
}

absl::Status DecisionFeed::Poll() {
  absl::MutexLock poll_lock(&poll_mu_);
  int64_t after;
  bool primed;
  {
    absl::MutexLock lock(&mu_);
    after = latest_;
    primed = primed_;
  }
  if (!primed) {
    // Start at the present: history is served from the database on demand.
    absl::StatusOr<int64_t> latest = store_.LatestDecisionSeq();
    if (!latest.ok()) return latest.status();
    {
      absl::MutexLock lock(&mu_);
      latest_ = std::max(latest_, *latest);
      primed_ = true;
    }
    // A watch that started before this first read may be waiting for
    // decisions committed in between: they are history to the feed (never in
    // its window, never announced), so wake every watcher to read them
    // (After() serves them from the database).
    NotifyListeners();
    return absl::OkStatus();
  }
  bool any = false;
  for (;;) {
    absl::StatusOr<std::vector<CaseRecord>> batch = store_.DecisionsAfter(after, 0, kBatch);
    if (!batch.ok()) return batch.status();
    if (batch->empty()) break;
    any = true;
    after = batch->back().decision_seq;
    const bool full = static_cast<int>(batch->size()) == kBatch;
    {
      absl::MutexLock lock(&mu_);
      for (CaseRecord& c : *batch) window_.push_back(std::move(c));
      while (window_.size() > options_.window) window_.pop_front();
      latest_ = after;
    }
    if (!full) break;
  }
  if (any) NotifyListeners();
  return absl::OkStatus();
}

void DecisionFeed::NotifyListeners() {
  std::vector<std::shared_ptr<Listener>> live;
  {
    absl::MutexLock lock(&mu_);
    for (const std::weak_ptr<Listener>& w : listeners_) {
      if (std::shared_ptr<Listener> l = w.lock()) live.push_back(std::move(l));
    }
  }
  for (const std::shared_ptr<Listener>& l : live) l->OnDecisions();
}

absl::StatusOr<std::vector<CaseRecord>> DecisionFeed::After(int64_t after, int region, int limit) {
  {
    absl::MutexLock lock(&mu_);
    const bool covered = primed_ && (window_.empty() ? after >= latest_
                                                     : after >= window_.front().decision_seq - 1);
    if (covered) {
      std::vector<CaseRecord> out;
      auto it = std::upper_bound(window_.begin(), window_.end(), after,
                                 [](int64_t seq, const CaseRecord& c) { return seq < c.decision_seq; });
      for (; it != window_.end() && static_cast<int>(out.size()) < limit; ++it) {
        if (region == 0 || it->region == region) out.push_back(*it);
      }
      return out;
    }
  }
  // Resuming from before the window: the stored decisions are the truth.
  return store_.DecisionsAfter(after, region, limit);
}

void DecisionFeed::Loop() {
  absl::Duration backoff = absl::Milliseconds(100);
  while (!stop_.HasBeenNotified()) {
    try {
      absl::StatusOr<std::unique_ptr<pqxx::connection>> conn = pool_.Connect();
      if (!conn.ok()) throw std::runtime_error(std::string(conn.status().message()));
      Receiver receiver(**conn, AssessmentStore::kDecisionChannel);
      // LISTEN is active now: anything committed from here on is notified,
      // anything before is caught by this read.
      if (absl::Status s = Poll(); !s.ok()) throw std::runtime_error(std::string(s.message()));
      backoff = absl::Milliseconds(100);
      absl::Time next_poll = absl::Now() + options_.poll_interval;
      while (!stop_.HasBeenNotified()) {
        // Short waits so Stop() is honoured promptly.
        (*conn)->await_notification(0, 200000);
        if (receiver.received > 0 || absl::Now() >= next_poll) {
          receiver.received = 0;
          if (absl::Status s = Poll(); !s.ok()) throw std::runtime_error(std::string(s.message()));
          next_poll = absl::Now() + options_.poll_interval;
        }
      }
    } catch (const std::exception& e) {
      log::Warn("decision feed: reconnecting", {{"error", e.what()}});
      stop_.WaitForNotificationWithTimeout(backoff);
      backoff = std::min(backoff * 2, absl::Seconds(5));
    }
  }
}

}  // namespace medkoord::assessment
