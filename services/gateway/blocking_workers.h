#pragma once
// A few threads for work that blocks (database calls) but is started on
// gRPC's callback threads, which must not block: those threads also poll the
// sockets and run every other call's reactions. Used by GatewayAdmin.

#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace medkoord::gateway {

class BlockingWorkers {
 public:
  explicit BlockingWorkers(int threads);
  // Runs what is still queued, then joins.
  ~BlockingWorkers();
  BlockingWorkers(const BlockingWorkers&) = delete;
  BlockingWorkers& operator=(const BlockingWorkers&) = delete;

  void Post(std::function<void()> work);

 private:
  void Loop();

  absl::Mutex mu_;
  std::deque<std::function<void()>> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace medkoord::gateway
