#pragma once
// A fixed-size pool of libpqxx connections with reconnect. All SQL of a
// service lives in its *_store and goes through Pool::Run, which turns libpqxx
// exceptions into absl::Status (see db/errors.h).

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <pqxx/pqxx>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace medkoord::db {

struct PoolOptions {
  std::string url;                  // libpq connection string or URI
  int size = 8;
  absl::Duration acquire_timeout = absl::Seconds(5);
  // PostgreSQL's statement_timeout on every connection (zero: none). A
  // statement stuck on a lock or running away is cancelled and answers
  // DEADLINE_EXCEEDED, so it does not hold its connection and its callers
  // for ever. Migrations run without it.
  absl::Duration statement_timeout = absl::ZeroDuration();
  // Called once on each new connection: prepare the store's statements.
  std::function<void(pqxx::connection&)> prepare;
};

class Pool {
 public:
  explicit Pool(PoolOptions options);
  ~Pool();
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  // Runs `fn` in a transaction on a pooled connection and commits if it
  // returns OK; rolls back otherwise. A broken connection is replaced and the
  // transaction retried once when it failed before committing; after that
  // UNAVAILABLE. Serialization failures and deadlocks are retried (3 times).
  absl::Status Run(const std::function<absl::Status(pqxx::work&)>& fn);

  // Runs `fn` on a pooled connection without BEGIN/COMMIT: every statement
  // commits on its own (autocommit). For a write that is a single statement
  // (a CTE may write several tables, still atomically) this saves two round
  // trips per call. A statement that fails leaves nothing behind and the
  // connection usable, so `fn` may inspect an error and go on. `fn` is run
  // again (deadlock or serialization failure: 3 times; broken connection,
  // replaced: once) only when `repeatable` says that a second run is
  // harmless even if statements of the first one committed (e.g. it is
  // idempotent by a request id); otherwise the error is returned (a broken
  // connection as UNAVAILABLE).
  absl::Status RunAutocommit(const std::function<absl::Status(pqxx::nontransaction&)>& fn, bool repeatable);

  // Read-only variant (still a transaction, for a consistent snapshot).
  absl::Status Read(const std::function<absl::Status(pqxx::work&)>& fn) { return Run(fn); }

  // A dedicated connection outside the pool (LISTEN, long-lived streams,
  // advisory locks held across calls). Prepared with `prepare`.
  absl::StatusOr<std::unique_ptr<pqxx::connection>> Connect() const;

  // OK if a connection can be made and answers `SELECT 1`.
  absl::Status Ping();

  struct Stats {
    int size = 0;
    int in_use = 0;
    int64_t waits = 0;
    int64_t reconnects = 0;
  };
  Stats stats() const;

  const std::string& url() const { return options_.url; }

 private:
  struct Slot;
  absl::StatusOr<Slot*> Acquire();
  void Release(Slot* slot);
  // Opens the slot's connection if it has none or it is closed.
  absl::Status EnsureConnected(Slot* slot);
  void CountReconnect();

  PoolOptions options_;
  mutable absl::Mutex mu_;
  std::vector<std::unique_ptr<Slot>> slots_ ABSL_GUARDED_BY(mu_);
  std::vector<Slot*> free_ ABSL_GUARDED_BY(mu_);
  int64_t waits_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t reconnects_ ABSL_GUARDED_BY(mu_) = 0;
};

// Maps a libpqxx / PostgreSQL exception to a status: unique violation ->
// ALREADY_EXISTS, check/foreign-key violation -> FAILED_PRECONDITION,
// broken connection -> UNAVAILABLE, serialization failure -> ABORTED, other
// SQL errors -> INTERNAL. Call only inside a catch block.
absl::Status StatusFromCurrentException();

}  // namespace medkoord::db
