#include "services/gateway/audit_log.h"

#include <vector>

#include "common/log.h"
#include "common/metrics.h"

namespace medkoord::gateway {
AuditLog::AuditLog(GatewayStore* store, AuditLogOptions options)
    : store_(store),
      options_(options),
      pending_gauge_(metrics::DefaultRegistry().GetGauge("medkoord_gateway_audit_pending",
                                                          "Audit records handed over but not yet stored")),
      dropped_counter_(metrics::DefaultRegistry().GetCounter("medkoord_gateway_audit_dropped_total",
                                                             "Audit records dropped because the queue was full")) {}

AuditLog::~AuditLog() { Stop(); }

void AuditLog::Start() {
  if (!thread_.joinable()) thread_ = std::thread([this] { Loop(); });
}

void AuditLog::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void AuditLog::Record(AuditRecord record) {
  absl::MutexLock lock(&mu_);
  ++enqueued_;
  if (queue_.size() >= options_.max_queue) {
    queue_.pop_front();
    ++dropped_;
    ++done_;
    dropped_counter_.Inc();
  }
  queue_.push_back(std::move(record));
  pending_gauge_.Set(static_cast<double>(queue_.size()));
}

absl::Status AuditLog::Flush(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  const int64_t target = enqueued_;
  flush_requested_ = true;
  auto reached = [this, target]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return done_ >= target; };
  if (!mu_.AwaitWithTimeout(absl::Condition(&reached), timeout)) {
    return absl::DeadlineExceededError("audit records not stored in time");
  }
  return absl::OkStatus();
}

int64_t AuditLog::dropped() const {
  absl::MutexLock lock(&mu_);
  return dropped_;
}

int64_t AuditLog::stored() const {
  absl::MutexLock lock(&mu_);
  return stored_;
}

bool AuditLog::WriteOneBatch() {
  std::vector<AuditRecord> batch;
  {
    absl::MutexLock lock(&mu_);
    const size_t n = std::min(queue_.size(), options_.max_batch);
    batch.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      batch.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
  }
  if (batch.empty()) return true;
  absl::Status status = store_->InsertAuditRecords(batch);
  absl::MutexLock lock(&mu_);
  if (status.ok()) {
    stored_ += static_cast<int64_t>(batch.size());
    done_ += static_cast<int64_t>(batch.size());
    pending_gauge_.Set(static_cast<double>(queue_.size()));
    return true;
  }
  log::Warn("audit batch not stored, will retry", {{"records", batch.size()}, {"error", std::string(status.message())}});
  // Back to the front, in order, so a retry keeps the hand-over order.
  for (auto it = batch.rbegin(); it != batch.rend(); ++it) queue_.push_front(std::move(*it));
  while (queue_.size() > options_.max_queue) {
    queue_.pop_front();
    ++dropped_;
    ++done_;
    dropped_counter_.Inc();
  }
  return false;
}

void AuditLog::Loop() {
  int failures = 0;
  while (true) {
    bool stopping = false;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
        return stopping_ || flush_requested_ || queue_.size() >= options_.max_batch;
      };
      const absl::Duration wait =
          failures == 0 ? options_.flush_interval : std::min(absl::Seconds(5), options_.flush_interval * (1 << std::min(failures, 5)));
      mu_.AwaitWithTimeout(absl::Condition(&ready), wait);
      flush_requested_ = false;
      stopping = stopping_;
    }
    bool ok = true;
    while (true) {
      {
        absl::MutexLock lock(&mu_);
        if (queue_.empty()) break;
      }
      ok = WriteOneBatch();
      if (!ok) break;
    }
    failures = ok ? 0 : failures + 1;
    if (stopping && (ok || failures >= 3)) return;
  }
}

}  // namespace medkoord::gateway
