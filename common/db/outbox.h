#pragma once
// Transactional outbox (ARCHITECTURE.md). A state change and the event that
// announces it are written in one transaction (Outbox::Enqueue inside the
// caller's pqxx::work); OutboxRelay delivers undelivered rows in id order,
// retrying with exponential backoff while the consumer is down, and marks
// them delivered. One relay per database delivers at a time (advisory lock),
// so order holds with any number of replicas. Consumers are idempotent, keyed
// by event id.
//
// The table (each service's first migration creates it, see
// common/db/outbox.sql for the DDL to copy):
//   outbox(id bigserial primary key, event_id uuid unique, topic text,
//          payload bytea, traceparent text, created_at timestamptz,
//          delivered_at timestamptz, attempts int, last_error text)

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include <pqxx/pqxx>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/background_task.h"
#include "common/db/pool.h"
#include "common/metrics.h"

namespace medkoord::db {

struct OutboxEvent {
  int64_t id = 0;
  std::string event_id;     // uuid, the consumer's idempotency key
  std::string topic;        // e.g. "intake.application.submitted"
  std::string payload;      // serialized protobuf
  std::string traceparent;  // W3C trace context of the call that wrote it
  int attempts = 0;
};

// Writes an event in the caller's transaction. Returns the event id.
std::string EnqueueOutboxEvent(pqxx::work& tx, const std::string& topic, const std::string& payload);

// A consumer's final answer that it will never accept an event (it names
// something the consumer does not have, or cannot be read). Returned from a
// Deliver function, the relay records it on the row (delivered_at set,
// last_error = the reason, so an operator can find it), logs an error,
// counts it in medkoord_outbox_refused_total, and goes on with the later
// events instead of holding them back forever. Every other error is retried
// in order.
absl::Status OutboxRefused(const absl::Status& cause);
bool IsOutboxRefused(const absl::Status& status);

struct OutboxRelayOptions {
  std::string name = "outbox";         // advisory-lock key and metrics label
  absl::Duration poll_interval = absl::Milliseconds(200);
  absl::Duration initial_backoff = absl::Milliseconds(100);
  absl::Duration max_backoff = absl::Seconds(10);
  int batch_size = 100;
};

class OutboxRelay final : public BackgroundTask {
 public:
  // `deliver` sends one event; OK marks it delivered, OutboxRefused(...)
  // settles it as refused, any other error keeps it for a retry (in order:
  // nothing after it is delivered first).
  using Deliver = std::function<absl::Status(const OutboxEvent&)>;

  OutboxRelay(Pool& pool, Deliver deliver, OutboxRelayOptions options = {});
  ~OutboxRelay() override;  // stops

  void Start() override;
  void Stop() override;

  // Delivers what is pending now, on the caller's thread (tests, shutdown).
  // Returns the number delivered; stops at the first failure.
  absl::StatusOr<int> DeliverPending();

  int64_t pending() const { return pending_.load(); }
  int64_t delivered_total() const { return delivered_total_.load(); }

  // Whether this relay holds the database's relay lock (is the active one).
  bool active() const { return active_.load(); }

 private:
  void Loop();
  // Takes (or checks it still holds) the advisory lock on its own
  // connection: OK when active, FAILED_PRECONDITION while another relay is,
  // UNAVAILABLE when the database cannot be reached.
  absl::Status EnsureActive() ABSL_EXCLUSIVE_LOCKS_REQUIRED(deliver_mu_);
  // One batch in id order; the count delivered, or the first failure.
  absl::StatusOr<int> DeliverBatch() ABSL_EXCLUSIVE_LOCKS_REQUIRED(deliver_mu_);
  absl::StatusOr<int> DeliverPendingLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(deliver_mu_);
  void RefreshPending();

  Pool& pool_;
  Deliver deliver_;
  OutboxRelayOptions options_;
  std::thread thread_;
  absl::Notification stop_;
  std::atomic<int64_t> pending_{0};
  std::atomic<int64_t> delivered_total_{0};
  std::atomic<bool> active_{false};
  // Exported at /metrics, labelled with options_.name. Owned by the registry,
  // so a scrape after this relay is gone is safe.
  metrics::Gauge* pending_gauge_;
  metrics::Gauge* lag_gauge_;
  metrics::Counter* delivered_counter_;
  metrics::Counter* failed_counter_;
  metrics::Counter* refused_counter_;
  // Serialises the background loop and DeliverPending() in this process.
  absl::Mutex deliver_mu_;
  std::unique_ptr<pqxx::connection> lock_conn_ ABSL_GUARDED_BY(deliver_mu_);
  int lock_backend_pid_ ABSL_GUARDED_BY(deliver_mu_) = 0;
};

}  // namespace medkoord::db
