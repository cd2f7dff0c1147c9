#pragma once
// Group commit for concurrent single-row writes: callers that arrive while a
// batch is being written queue up, and the next writer takes everything
// queued (up to `max_batch`) into one write. No timer: a caller that finds a
// writer slot free writes at once, alone if nobody else is waiting, so an
// idle service answers as fast as without batching; under load the batch
// grows with the number of callers waiting during one write.
//
// The writer is one of the callers (its own item first, then the queue in
// arrival order), so no thread is handed the work and a waiting caller
// holds only its own thread. Each caller gets the result of its own item.
// No I/O here: `write` does it.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace medkoord::intake {

struct GroupCommitOptions {
  size_t max_batch = 64;
  // Batches written at the same time (each holds a database connection).
  int max_writers = 2;
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

  GroupCommit(GroupCommitOptions options, WriteFn write) : options_(options), write_(std::move(write)) {}

  // Blocks until `in` has been written (in some batch) and returns its result.
  Out Run(const In& in) {
    Slot slot;
    slot.in = &in;
    absl::MutexLock lock(&mu_);
    queue_.push_back(&slot);
    Waiter waiter{this, &slot};
    while (true) {
      mu_.Await(absl::Condition(&Waiter::Ready, &waiter));
      if (slot.out) return std::move(*slot.out);
      WriteOneBatch(&slot);
    }
  }

  // Callers waiting for a writer (for tests).
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
    const In* in = nullptr;
    bool queued = true;
    std::optional<Out> out;
  };
  struct Waiter {
    GroupCommit* self;
    Slot* slot;
    // Done, or still queued with a writer slot free: become the writer.
    static bool Ready(Waiter* w) ABSL_NO_THREAD_SAFETY_ANALYSIS {  // called with mu_ held
      return w->slot->out.has_value() || (w->slot->queued && w->self->writers_ < w->self->options_.max_writers);
    }
  };

  // Called with mu_ held by a caller whose own slot is still queued.
  void WriteOneBatch(Slot* own) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    ++writers_;
    std::vector<Slot*> batch;
    batch.reserve(std::min(queue_.size(), options_.max_batch));
    // Its own item first (its caller is the one doing the work), then the
    // others in arrival order.
    own->queued = false;
    batch.push_back(own);
    queue_.erase(std::find(queue_.begin(), queue_.end(), own));
    while (!queue_.empty() && batch.size() < options_.max_batch) {
      queue_.front()->queued = false;
      batch.push_back(queue_.front());
      queue_.pop_front();
    }
    Count(batch.size());
    std::vector<const In*> inputs;
    inputs.reserve(batch.size());
    for (Slot* s : batch) inputs.push_back(s->in);
    mu_.Unlock();
    std::vector<Out> outs = write_(inputs);
    mu_.Lock();
    for (size_t i = 0; i < batch.size(); ++i) batch[i]->out = std::move(outs[i]);
    --writers_;
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
  std::deque<Slot*> queue_ ABSL_GUARDED_BY(mu_);
  int writers_ ABSL_GUARDED_BY(mu_) = 0;
  GroupCommitStats stats_ ABSL_GUARDED_BY(mu_);
};

}  // namespace medkoord::intake
