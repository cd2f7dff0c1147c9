#pragma once
// Injectable time, so results that depend on "now" are testable.

#include <atomic>

#include "absl/time/civil_time.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace medkoord {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() const = 0;
};

// The process's real clock (a singleton that lives forever).
const Clock* SystemClock();

// A clock tests set by hand.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(absl::Time now) : now_(absl::ToUnixNanos(now)) {}
  absl::Time Now() const override { return absl::FromUnixNanos(now_.load()); }
  void Set(absl::Time t) { now_ = absl::ToUnixNanos(t); }
  void Advance(absl::Duration d) { now_ += absl::ToInt64Nanoseconds(d); }

 private:
  std::atomic<int64_t> now_;
};

// Europe/Copenhagen: "today" and calendar years in medkoord are Danish.
const absl::TimeZone& DanishTimeZone();
absl::CivilDay DanishToday(const Clock& clock);

}  // namespace medkoord
