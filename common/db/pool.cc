#include "common/db/pool.h"

#include <algorithm>
#include <string_view>
#include <utility>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"

namespace medkoord::db {
namespace {

// PostgreSQL puts the offending values in a DETAIL line ("Key (cpr)=(...)
// already exists"); only the first line goes into a status, so that no
// patient data reaches a client or a log through an error message.
std::string FirstLine(std::string_view what) {
  size_t nl = what.find('\n');
  std::string_view line = what.substr(0, nl);
  if (line.rfind("ERROR:  ", 0) == 0) line.remove_prefix(8);
  return std::string(line);
}

std::string Describe(const pqxx::sql_error& e) {
  std::string state = e.sqlstate();
  return absl::StrCat("database: ", FirstLine(e.what()), state.empty() ? "" : " (SQLSTATE " + state + ")");
}

constexpr int kMaxAbortedRetries = 3;
constexpr int kMaxBrokenRetries = 1;

// When RunAttempts runs `attempt` again after an exception.
struct Retries {
  bool after_broken;   // the connection broke (it is replaced first)
  bool after_aborted;  // serialization failure or deadlock
  bool after_closed;   // a statement failed and the server closed the connection (admin shutdown)
};

// The retry loop of Pool::Run and Pool::RunAutocommit on one pooled
// connection `conn`; `attempt` runs the caller's function in a transaction
// or without one.
absl::Status RunAttempts(std::unique_ptr<pqxx::connection>& conn, const std::function<absl::Status()>& ensure_connected,
                         const std::function<void()>& count_reconnect, Retries retries,
                         const std::function<absl::Status(pqxx::connection&)>& attempt) {
  int broken_retries = 0;
  int aborted_retries = 0;
  while (true) {
    RETURN_IF_ERROR(ensure_connected());
    absl::Status status;
    try {
      return attempt(*conn);
    } catch (const pqxx::in_doubt_error&) {
      // The connection broke during COMMIT: it may have committed. Not
      // retried, since the change might then happen twice.
      conn.reset();
      return StatusFromCurrentException();
    } catch (const pqxx::statement_completion_unknown&) {
      conn.reset();
      return StatusFromCurrentException();
    } catch (const pqxx::broken_connection&) {
      status = StatusFromCurrentException();
      conn.reset();
      count_reconnect();
      if (retries.after_broken && broken_retries++ < kMaxBrokenRetries) continue;
      return status;
    } catch (const pqxx::transaction_rollback&) {
      status = StatusFromCurrentException();
      if (retries.after_aborted && aborted_retries++ < kMaxAbortedRetries) continue;
      return status;
    } catch (...) {
      status = StatusFromCurrentException();
      // A statement can fail because the server went away in the middle of
      // it (admin shutdown); then the connection is useless.
      if (conn != nullptr && !conn->is_open()) {
        conn.reset();
        if (retries.after_closed && broken_retries++ < kMaxBrokenRetries) {
          count_reconnect();
          continue;
        }
      }
      return status;
    }
  }
}

}  // namespace

absl::Status StatusFromCurrentException() {
  try {
    throw;
  } catch (const pqxx::unique_violation& e) {
    return absl::AlreadyExistsError(Describe(e));
  } catch (const pqxx::foreign_key_violation& e) {
    return absl::FailedPreconditionError(Describe(e));
  } catch (const pqxx::check_violation& e) {
    return absl::FailedPreconditionError(Describe(e));
  } catch (const pqxx::not_null_violation& e) {
    return absl::FailedPreconditionError(Describe(e));
  } catch (const pqxx::restrict_violation& e) {
    return absl::FailedPreconditionError(Describe(e));
  } catch (const pqxx::statement_completion_unknown& e) {
    // The server may or may not have done it: not safe to retry blindly.
    return absl::UnavailableError(absl::StrCat("database: outcome unknown: ", FirstLine(e.what())));
  } catch (const pqxx::transaction_rollback& e) {
    // serialization_failure, deadlock_detected: the caller may retry.
    return absl::AbortedError(absl::StrCat("database: ", FirstLine(e.what())));
  } catch (const pqxx::in_doubt_error& e) {
    return absl::UnavailableError(absl::StrCat("database: commit outcome unknown: ", FirstLine(e.what())));
  } catch (const pqxx::broken_connection& e) {
    return absl::UnavailableError(absl::StrCat("database unavailable: ", FirstLine(e.what())));
  } catch (const pqxx::sql_error& e) {
    const std::string state = e.sqlstate();
    if (state == "57014") return absl::DeadlineExceededError(Describe(e));  // query_canceled
    if (state == "55P03") return absl::AbortedError(Describe(e));           // lock_not_available
    if (state.rfind("08", 0) == 0 || state.rfind("57P", 0) == 0) {
      // connection exception, admin shutdown, cannot connect now
      return absl::UnavailableError(Describe(e));
    }
    return absl::InternalError(Describe(e));
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("database: ", FirstLine(e.what())));
  } catch (...) {
    return absl::UnknownError("database: unknown exception");
  }
}

struct Pool::Slot {
  std::unique_ptr<pqxx::connection> conn;
};

Pool::Pool(PoolOptions options) : options_(std::move(options)) {
  if (options_.size < 1) options_.size = 1;
  absl::MutexLock lock(&mu_);
  for (int i = 0; i < options_.size; ++i) {
    slots_.push_back(std::make_unique<Slot>());
    free_.push_back(slots_.back().get());
  }
}

Pool::~Pool() = default;

absl::StatusOr<std::unique_ptr<pqxx::connection>> Pool::Connect() const {
  try {
    auto conn = std::make_unique<pqxx::connection>(options_.url);
    if (options_.statement_timeout > absl::ZeroDuration()) {
      pqxx::nontransaction set(*conn);
      set.exec0(absl::StrCat("SET statement_timeout = ",
                             std::max<int64_t>(1, absl::ToInt64Milliseconds(options_.statement_timeout))));
    }
    if (options_.prepare) options_.prepare(*conn);
    return conn;
  } catch (...) {
    return StatusFromCurrentException();
  }
}

absl::StatusOr<Pool::Slot*> Pool::Acquire() {
  absl::MutexLock lock(&mu_);
  if (free_.empty()) ++waits_;
  auto has_free = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return !free_.empty(); };
  if (!mu_.AwaitWithTimeout(absl::Condition(&has_free), options_.acquire_timeout)) {
    return absl::UnavailableError(absl::StrCat("database pool: no connection free within ",
                                               absl::FormatDuration(options_.acquire_timeout)));
  }
  Slot* slot = free_.back();
  free_.pop_back();
  return slot;
}

void Pool::Release(Slot* slot) {
  absl::MutexLock lock(&mu_);
  free_.push_back(slot);
}

absl::Status Pool::Run(const std::function<absl::Status(pqxx::work&)>& fn) {
  ASSIGN_OR_RETURN(Slot * slot, Acquire());
  // The slot goes back to the pool however we leave.
  absl::Cleanup release = [this, slot] { Release(slot); };
  // A broken connection failed before COMMIT, so nothing happened: safe to
  // run again, as after a serialization failure.
  return RunAttempts(
      slot->conn, [&] { return EnsureConnected(slot); }, [&] { CountReconnect(); },
      {.after_broken = true, .after_aborted = true, .after_closed = false}, [&](pqxx::connection& conn) {
        pqxx::work tx(conn);
        absl::Status status = fn(tx);
        if (status.ok()) {
          tx.commit();
        } else {
          tx.abort();
        }
        return status;
      });
}

absl::Status Pool::EnsureConnected(Slot* slot) {
  if (slot->conn != nullptr && slot->conn->is_open()) return absl::OkStatus();
  const bool replacing = slot->conn != nullptr;
  slot->conn.reset();
  ASSIGN_OR_RETURN(slot->conn, Connect());
  if (replacing) CountReconnect();
  return absl::OkStatus();
}

void Pool::CountReconnect() {
  absl::MutexLock lock(&mu_);
  ++reconnects_;
}

absl::Status Pool::RunAutocommit(const std::function<absl::Status(pqxx::nontransaction&)>& fn, bool repeatable) {
  ASSIGN_OR_RETURN(Slot * slot, Acquire());
  absl::Cleanup release = [this, slot] { Release(slot); };
  // Unlike in Run, statements of `fn` may have committed before it failed:
  // run it again only when that is harmless.
  return RunAttempts(
      slot->conn, [&] { return EnsureConnected(slot); }, [&] { CountReconnect(); },
      {.after_broken = repeatable, .after_aborted = repeatable, .after_closed = repeatable},
      [&](pqxx::connection& conn) {
        pqxx::nontransaction tx(conn);
        return fn(tx);
      });
}

absl::Status Pool::Ping() {
  return Run([](pqxx::work& tx) {
    tx.exec("SELECT 1");
    return absl::OkStatus();
  });
}

Pool::Stats Pool::stats() const {
  absl::MutexLock lock(&mu_);
  Stats s;
  s.size = static_cast<int>(slots_.size());
  s.in_use = static_cast<int>(slots_.size() - free_.size());
  s.waits = waits_;
  s.reconnects = reconnects_;
  return s;
}

}  // namespace medkoord::db
