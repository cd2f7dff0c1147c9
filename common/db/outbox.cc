#include "common/db/outbox.h"

#include <algorithm>
#include <exception>
#include <utility>
#include <vector>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/status.h"

namespace medkoord::db {
namespace {

// First key of the two-int advisory lock that makes one relay per database
// active; the second is hashtext(options.name).
constexpr int kRelayLockClass = 0x6d6b6f62;  // "mkob"

}  // namespace

std::string EnqueueOutboxEvent(pqxx::work& tx, const std::string& topic, const std::string& payload) {
  pqxx::binarystring bytes(payload.data(), payload.size());
  pqxx::row row = tx.exec_params1(
      "INSERT INTO outbox (event_id, topic, payload, traceparent) "
      "VALUES (gen_random_uuid(), $1, $2, $3) RETURNING event_id::text",
      topic, bytes, log::CurrentTraceparent());
  return row[0].as<std::string>();
}

namespace {
constexpr char kRefusedPayload[] = "type.medkoord.dev/outbox.refused";
}  // namespace

absl::Status OutboxRefused(const absl::Status& cause) {
  absl::Status refused(cause.ok() ? absl::StatusCode::kFailedPrecondition : cause.code(), cause.message());
  refused.SetPayload(kRefusedPayload, absl::Cord("1"));
  return refused;
}

bool IsOutboxRefused(const absl::Status& status) { return status.GetPayload(kRefusedPayload).has_value(); }

OutboxRelay::OutboxRelay(Pool& pool, Deliver deliver, OutboxRelayOptions options)
    : pool_(pool), deliver_(std::move(deliver)), options_(std::move(options)) {
  if (options_.batch_size < 1) options_.batch_size = 1;
  auto& registry = metrics::DefaultRegistry();
  const metrics::Labels labels = {{"relay", options_.name}};
  pending_gauge_ = &registry.GetGauge("medkoord_outbox_pending", "Outbox events not yet delivered", labels);
  lag_gauge_ = &registry.GetGauge("medkoord_outbox_oldest_pending_seconds",
                                  "Age of the oldest undelivered outbox event (0 when none)", labels);
  delivered_counter_ = &registry.GetCounter("medkoord_outbox_delivered_total", "Outbox events delivered", labels);
  failed_counter_ = &registry.GetCounter("medkoord_outbox_delivery_failures_total",
                                         "Outbox delivery attempts that failed and will be retried", labels);
  refused_counter_ = &registry.GetCounter(
      "medkoord_outbox_refused_total",
      "Outbox events the consumer refused for good (kept with last_error, not retried)", labels);
}

OutboxRelay::~OutboxRelay() { Stop(); }

void OutboxRelay::Start() {
  if (thread_.joinable() || stop_.HasBeenNotified()) return;
  thread_ = std::thread([this] { Loop(); });
}

void OutboxRelay::Stop() {
  if (!stop_.HasBeenNotified()) stop_.Notify();
  if (thread_.joinable()) thread_.join();
  absl::MutexLock lock(&deliver_mu_);
  if (lock_conn_ != nullptr && active_) {
    // Unlock before closing: the server releases a closed session's locks
    // only once its backend has exited, so a successor could still find the
    // lock taken for a moment.
    try {
      pqxx::nontransaction n(*lock_conn_);
      n.exec("SELECT pg_advisory_unlock_all()");
    } catch (const std::exception&) {
      // The session is gone, and its lock with it.
    }
  }
  lock_conn_.reset();
  active_ = false;
}

absl::Status OutboxRelay::EnsureActive() {
  try {
    if (lock_conn_ == nullptr || !lock_conn_->is_open()) {
      lock_conn_.reset();
      active_ = false;
      ASSIGN_OR_RETURN(lock_conn_, pool_.Connect());
    }
    pqxx::nontransaction n(*lock_conn_);
    if (active_) {
      // A session advisory lock dies with its session; libpqxx could have
      // reconnected under us, so check that the session is still the one
      // that took the lock.
      int backend = n.exec("SELECT pg_backend_pid()")[0][0].as<int>();
      if (backend == lock_backend_pid_) return absl::OkStatus();
      log::Warn("outbox relay lost its lock (database session ended)", {{"relay", options_.name}});
      active_ = false;
    }
    pqxx::row row = n.exec_params1("SELECT pg_try_advisory_lock($1, hashtext($2)), pg_backend_pid()",
                                   kRelayLockClass, options_.name);
    if (!row[0].as<bool>()) {
      return absl::FailedPreconditionError(
          absl::StrCat("outbox relay ", options_.name, ": another relay is active on this database"));
    }
    lock_backend_pid_ = row[1].as<int>();
    active_ = true;
    log::Info("outbox relay active", {{"relay", options_.name}});
    return absl::OkStatus();
  } catch (...) {
    if (active_) log::Warn("outbox relay lost its lock", {{"relay", options_.name}});
    lock_conn_.reset();
    active_ = false;
    return StatusFromCurrentException();
  }
}

absl::StatusOr<int> OutboxRelay::DeliverBatch() {
  std::vector<OutboxEvent> batch;
  RETURN_IF_ERROR(pool_.Run([&](pqxx::work& tx) {
    batch.clear();
    pqxx::result rows = tx.exec_params(
        "SELECT id, event_id::text, topic, payload, traceparent, attempts FROM outbox "
        "WHERE delivered_at IS NULL ORDER BY id LIMIT $1",
        options_.batch_size);
    for (const auto& row : rows) {
      OutboxEvent ev;
      ev.id = row[0].as<int64_t>();
      ev.event_id = row[1].as<std::string>();
      ev.topic = row[2].as<std::string>();
      ev.payload = pqxx::binarystring(row[3]).str();
      ev.traceparent = row[4].is_null() ? "" : row[4].as<std::string>();
      ev.attempts = row[5].as<int>();
      batch.push_back(std::move(ev));
    }
    return absl::OkStatus();
  }));

  int delivered = 0;
  for (const OutboxEvent& ev : batch) {
    if (stop_.HasBeenNotified()) break;
    absl::Status sent;
    {
      log::ScopedTrace trace(ev.traceparent);
      try {
        sent = deliver_(ev);
      } catch (const std::exception& e) {
        sent = absl::InternalError(absl::StrCat("outbox deliver threw: ", e.what()));
      }
    }
    if (IsOutboxRefused(sent)) {
      const std::string reason = absl::StrCat("refused: ", sent.ToString(absl::StatusToStringMode::kWithNoExtraData));
      RETURN_IF_ERROR(pool_.Run([&](pqxx::work& tx) {
        tx.exec_params(
            "UPDATE outbox SET delivered_at = now(), attempts = attempts + 1, last_error = $2 WHERE id = $1",
            ev.id, reason.substr(0, 1000));
        return absl::OkStatus();
      }));
      log::Error("outbox event refused by its consumer; kept with last_error, later events go on",
                 {{"relay", options_.name}, {"topic", ev.topic}, {"event_id", ev.event_id},
                  {"code", absl::StatusCodeToString(sent.code())}});
      refused_counter_->Inc();
      if (pending_.load() > 0) --pending_;
      pending_gauge_->Set(static_cast<double>(pending_.load()));
      continue;
    }
    if (!sent.ok()) {
      // Kept for a retry; nothing after it goes first, so order holds.
      (void)pool_.Run([&](pqxx::work& tx) {
        tx.exec_params("UPDATE outbox SET attempts = attempts + 1, last_error = $2 WHERE id = $1", ev.id,
                       std::string(sent.ToString()).substr(0, 1000));
        return absl::OkStatus();
      });
      log::Warn("outbox delivery failed",
                {{"relay", options_.name}, {"topic", ev.topic}, {"event_id", ev.event_id},
                 {"attempts", ev.attempts + 1}, {"code", absl::StatusCodeToString(sent.code())}});
      return sent;
    }
    // If this fails the event goes again later: at-least-once, and the
    // consumer deduplicates by event id.
    RETURN_IF_ERROR(pool_.Run([&](pqxx::work& tx) {
      tx.exec_params(
          "UPDATE outbox SET delivered_at = now(), attempts = attempts + 1, last_error = NULL WHERE id = $1",
          ev.id);
      return absl::OkStatus();
    }));
    ++delivered;
    ++delivered_total_;
    delivered_counter_->Inc();
    if (pending_.load() > 0) --pending_;
    pending_gauge_->Set(static_cast<double>(pending_.load()));
  }
  return delivered;
}

absl::StatusOr<int> OutboxRelay::DeliverPendingLocked() {
  int total = 0;
  while (!stop_.HasBeenNotified()) {
    absl::StatusOr<int> n = DeliverBatch();
    if (!n.ok()) {
      failed_counter_->Inc();
      RefreshPending();
      return n.status();
    }
    total += *n;
    if (*n < options_.batch_size) break;
  }
  RefreshPending();
  return total;
}

absl::StatusOr<int> OutboxRelay::DeliverPending() {
  absl::MutexLock lock(&deliver_mu_);
  RETURN_IF_ERROR(EnsureActive());
  return DeliverPendingLocked();
}

void OutboxRelay::RefreshPending() {
  (void)pool_.Run([&](pqxx::work& tx) {
    pqxx::row row = tx.exec1(
        "SELECT count(*), coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8 "
        "FROM outbox WHERE delivered_at IS NULL");
    pending_ = row[0].as<int64_t>();
    pending_gauge_->Set(static_cast<double>(pending_.load()));
    lag_gauge_->Set(row[1].as<double>());
    return absl::OkStatus();
  });
}

void OutboxRelay::Loop() {
  absl::Duration backoff = options_.initial_backoff;
  while (!stop_.HasBeenNotified()) {
    absl::Duration wait = options_.poll_interval;
    {
      absl::MutexLock lock(&deliver_mu_);
      if (EnsureActive().ok()) {
        absl::StatusOr<int> delivered = DeliverPendingLocked();
        if (delivered.ok()) {
          backoff = options_.initial_backoff;
        } else {
          // The consumer (or the database) is down: back off exponentially.
          wait = backoff;
          backoff = std::min(backoff * 2, options_.max_backoff);
        }
      } else {
        RefreshPending();  // the gauge stays meaningful on passive replicas
      }
    }
    stop_.WaitForNotificationWithTimeout(wait);
  }
}

}  // namespace medkoord::db
