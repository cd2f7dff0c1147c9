#pragma once
// A token bucket per principal: `rate` calls per second on average, bursts of
// up to `burst`. One replica's view: with N replicas a principal gets up to N
// times the rate, which is what a per-replica limit in front of a
// Kubernetes Service gives and is enough to stop a runaway client.

#include <string>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"

namespace medkoord::gateway {

class RateLimiter {
 public:
  // rate <= 0 disables the limit.
  RateLimiter(double rate_per_second, double burst, const Clock* clock);

  // OK and takes a token, or RESOURCE_EXHAUSTED with a google.rpc.RetryInfo
  // saying when the next token will be there.
  absl::Status Acquire(std::string_view principal_id);

 private:
  struct Bucket {
    double tokens;
    absl::Time updated;
  };
  const double rate_;
  const double burst_;
  const Clock* clock_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, Bucket> buckets_ ABSL_GUARDED_BY(mu_);
};

}  // namespace medkoord::gateway
