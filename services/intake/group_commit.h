#pragma once
// Group commit for concurrent single-row writes: calls that arrive while a
// batch is being written queue up, and the next free writer takes
// everything queued (up to `max_batch`) into one write. No linger: a writer
// that is idle takes a call the moment it is queued, alone if nothing else
// waits, so an idle service answers without waiting for company; under load
// the batch grows with the number of calls that arrive during one write.
//
// Under load a lone call is worth waiting for company: a write's fixed cost
// (statement, commit, WAL flush: about 150 µs of PostgreSQL CPU for intake's
// submit, against about 55 µs per row) is paid per batch. So while a batch is
// being written and the calls in the service (queued and being written)
// outnumber the writers, a free writer takes the queue only once it holds
// `min_batch` calls, once no batch is being written any more, or after
// `max_wait` (a batch being written may be stuck on a lock, and a call must
// not wait for it). Measured in docs/BENCHMARKS.md, Intake, session 5: 4
// beat 2 and 1 at 8 and 32 clients. At low concurrency (no more calls than
// writers) every call is taken at once, as before.
//
// Writers are threads of their own (`max_writers`), so that a caller (a
// gRPC callback, say) never blocks on the database: Start() queues and
// returns, and `done` is called on a writer thread once the call's batch is
// written. Run() is the blocking form. Each call gets the result of its own
// item. No I/O here: `write` does it.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

namespace medkoord::intake {

struct GroupCommitOptions {
  size_t max_batch = 64;
  // Batches written at the same time (each holds a database connection).
  int max_writers = 4;
  // Under load (see above), the fewest calls a writer takes while another
  // batch is being written; 1 takes any call at once.
  size_t min_batch = 4;
  // The longest a call waits for company under load (about one commit).
  absl::Duration max_wait = absl::Milliseconds(2);
};

struct GroupCommitStats {
  int64_t batches = 0;
  int64_t items = 0;
  size_t largest = 0;
  // histogram[k]: batches of size in [2^k, 2^(k+1)).
  std::vector<int64_t> histogram;
};

template <typename In, typename Out>
class GroupCommit {
 public:
  // Writes a batch; returns one result per input, in the same order.
  using WriteFn = std::function<std::vector<Out>(const std::vector<const In*>& batch)>;
  // Receives a call's own input and result, on a writer thread.
  using DoneFn = std::function<void(const In& in, Out out)>;

  GroupCommit(GroupCommitOptions options, WriteFn write) : options_(options), write_(std::move(write)) {
    for (int i = 0; i < std::max(1, options_.max_writers); ++i) writers_.emplace_back([this] { WriterLoop(); });
  }
  // Writes what is queued, then stops the writers.
  ~GroupCommit() {
    {
      absl::MutexLock lock(&mu_);
      stopping_ = true;
    }
    for (std::thread& t : writers_) t.join();
  }
  GroupCommit(const GroupCommit&) = delete;
  GroupCommit& operator=(const GroupCommit&) = delete;

  // Queues `in`; `done` gets its result once its batch is written.
  void Start(In in, DoneFn done) {
    auto slot = std::make_unique<Slot>(Slot{std::move(in), std::move(done)});
    absl::MutexLock lock(&mu_);
    queue_.push_back(std::move(slot));
  }

  // Blocks until `in` has been written (in some batch) and returns its result.
  Out Run(In in) {
    absl::Notification written;
    std::optional<Out> result;
    Start(std::move(in), [&](const In&, Out out) {
      result = std::move(out);
      written.Notify();
    });
    written.WaitForNotification();
    return std::move(*result);
  }

  // Calls queued and not yet taken by a writer (for tests).
  size_t queued() const {
    absl::MutexLock lock(&mu_);
    return queue_.size();
  }

  GroupCommitStats stats() const {
    absl::MutexLock lock(&mu_);
    return stats_;
  }

 private:
  struct Slot {
    In in;
    DoneFn done;
  };

  bool HasCalls() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !queue_.empty() || stopping_; }

  bool ReadyToWrite() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (stopping_) return true;
    if (queue_.empty()) return false;
    const bool loaded = queue_.size() + items_writing_ > static_cast<size_t>(options_.max_writers);
    return batches_writing_ == 0 || !loaded || queue_.size() >= options_.min_batch;
  }

  void WriterLoop() {
    absl::MutexLock lock(&mu_);
    while (true) {
      mu_.Await(absl::Condition(this, &GroupCommit::HasCalls));
      if (!ReadyToWrite()) mu_.AwaitWithTimeout(absl::Condition(this, &GroupCommit::ReadyToWrite), options_.max_wait);
      if (queue_.empty()) {
        if (stopping_) return;  // and nothing left
        continue;               // another writer took them
      }
      std::vector<std::unique_ptr<Slot>> batch;
      const size_t n = std::min(queue_.size(), options_.max_batch);
      batch.reserve(n);
      for (size_t i = 0; i < n; ++i) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      Count(n);
      ++batches_writing_;
      items_writing_ += n;
      mu_.Unlock();
      std::vector<const In*> inputs;
      inputs.reserve(n);
      for (const auto& s : batch) inputs.push_back(&s->in);
      std::vector<Out> outs = write_(inputs);
      for (size_t i = 0; i < n; ++i) batch[i]->done(batch[i]->in, std::move(outs[i]));
      batch.clear();
      mu_.Lock();
      --batches_writing_;
      items_writing_ -= n;
    }
  }

  void Count(size_t n) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    ++stats_.batches;
    stats_.items += static_cast<int64_t>(n);
    stats_.largest = std::max(stats_.largest, n);
    size_t bucket = 0;
    while ((size_t{2} << bucket) <= n) ++bucket;
    if (stats_.histogram.size() <= bucket) stats_.histogram.resize(bucket + 1);
    ++stats_.histogram[bucket];
  }

  const GroupCommitOptions options_;
  const WriteFn write_;
  mutable absl::Mutex mu_;
  std::deque<std::unique_ptr<Slot>> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int batches_writing_ ABSL_GUARDED_BY(mu_) = 0;
  size_t items_writing_ ABSL_GUARDED_BY(mu_) = 0;  // calls in those batches
  GroupCommitStats stats_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> writers_;  // last: started once everything above exists
};

}  // namespace medkoord::intake
