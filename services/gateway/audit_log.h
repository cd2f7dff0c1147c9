#pragma once
// The audit log's writer: calls hand their record over without waiting, and a
// background thread stores them in batches (one INSERT per batch) at least
// every `flush_interval`, so a record is durable within a second without the
// database being on any call's path. If the database is down, records wait in
// memory (up to `max_queue`, then the oldest are dropped and counted).

#include <cstdint>
#include <deque>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/metrics.h"
#include "services/gateway/gateway_store.h"

namespace medkoord::gateway {

struct AuditLogOptions {
  absl::Duration flush_interval = absl::Milliseconds(200);
  size_t max_batch = 500;
  size_t max_queue = 200000;
};

class AuditLog {
 public:
  AuditLog(GatewayStore* store, AuditLogOptions options = {});
  ~AuditLog();

  void Start();
  // Stores what is queued (best effort, a few attempts), then stops.
  void Stop();

  void Record(AuditRecord record);
  // Waits until every record handed over before this call is stored, or
  // `timeout` passes (DEADLINE_EXCEEDED).
  absl::Status Flush(absl::Duration timeout = absl::Seconds(10));

  int64_t dropped() const;
  int64_t stored() const;

 private:
  void Loop();
  // Takes one batch off the queue and writes it; puts it back on failure.
  bool WriteOneBatch();

  GatewayStore* store_;
  const AuditLogOptions options_;
  metrics::Gauge& pending_gauge_;
  metrics::Counter& dropped_counter_;
  mutable absl::Mutex mu_;
  std::deque<AuditRecord> queue_ ABSL_GUARDED_BY(mu_);
  int64_t enqueued_ ABSL_GUARDED_BY(mu_) = 0;   // records ever handed over
  int64_t done_ ABSL_GUARDED_BY(mu_) = 0;       // stored or dropped, in hand-over order
  int64_t stored_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t dropped_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool flush_requested_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};


}  // namespace medkoord::gateway
