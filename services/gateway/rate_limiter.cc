#include "services/gateway/rate_limiter.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "common/status.h"

namespace medkoord::gateway {

RateLimiter::RateLimiter(double rate_per_second, double burst, const Clock* clock)
    : rate_(rate_per_second), burst_(std::max(1.0, burst)), clock_(clock) {}

absl::Status RateLimiter::Acquire(std::string_view principal_id) {
  if (rate_ <= 0) return absl::OkStatus();
  const absl::Time now = clock_->Now();
  absl::MutexLock lock(&mu_);
  auto [it, inserted] = buckets_.try_emplace(std::string(principal_id), Bucket{burst_, now});
  Bucket& b = it->second;
  if (!inserted && now > b.updated) {
    b.tokens = std::min(burst_, b.tokens + absl::ToDoubleSeconds(now - b.updated) * rate_);
    b.updated = now;
  }
  if (b.tokens >= 1.0) {
    b.tokens -= 1.0;
    return absl::OkStatus();
  }
  // Round up to the millisecond so a client that waits exactly this long finds a token.
  const double wait_s = (1.0 - b.tokens) / rate_;
  const absl::Duration retry = absl::Milliseconds(std::ceil(wait_s * 1000.0));
  return ResourceExhaustedRetryAfter(
      absl::StrCat("rate limit of ", rate_, " calls/s exceeded for ", std::string(principal_id)), retry);
}

}  // namespace medkoord::gateway
