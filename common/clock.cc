#include "common/clock.h"

namespace medkoord {
namespace {

class RealClock final : public Clock {
 public:
  absl::Time Now() const override { return absl::Now(); }
};

}  // namespace

const Clock* SystemClock() {
  static const RealClock* clock = new RealClock();
  return clock;
}

const absl::TimeZone& DanishTimeZone() {
  static const absl::TimeZone* tz = [] {
    auto* zone = new absl::TimeZone();
    // tzdata is a dependency of every Debian system; fall back to a fixed
    // CET offset only if it is missing, rather than to UTC.
    if (!absl::LoadTimeZone("Europe/Copenhagen", zone)) *zone = absl::FixedTimeZone(3600);
    return zone;
  }();
  return *tz;
}

absl::CivilDay DanishToday(const Clock& clock) {
  return absl::ToCivilDay(clock.Now(), DanishTimeZone());
}

}  // namespace medkoord
