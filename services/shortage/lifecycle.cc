#include "services/shortage/lifecycle.h"

#include "absl/strings/str_cat.h"

namespace medkoord::shortage {

using v1::ShortageStatus;

const char* StatusName(ShortageStatus status) {
  switch (status) {
    case v1::SHORTAGE_STATUS_ANNOUNCED: return "announced";
    case v1::SHORTAGE_STATUS_ACTIVE: return "active";
    case v1::SHORTAGE_STATUS_RESOLVED: return "resolved";
    case v1::SHORTAGE_STATUS_CANCELLED: return "cancelled";
    default: return "unspecified";
  }
}

absl::Status CheckTransition(ShortageStatus from, ShortageStatus to) {
  const bool ok = (from == v1::SHORTAGE_STATUS_ANNOUNCED && to == v1::SHORTAGE_STATUS_ACTIVE) ||
                  (from == v1::SHORTAGE_STATUS_ACTIVE && to == v1::SHORTAGE_STATUS_RESOLVED) ||
                  ((from == v1::SHORTAGE_STATUS_ANNOUNCED || from == v1::SHORTAGE_STATUS_ACTIVE) &&
                   to == v1::SHORTAGE_STATUS_CANCELLED);
  if (ok) return absl::OkStatus();
  return absl::FailedPreconditionError(
      absl::StrCat("a shortage that is ", StatusName(from), " cannot become ", StatusName(to)));
}

bool IsTerminal(ShortageStatus status) {
  return status == v1::SHORTAGE_STATUS_RESOLVED || status == v1::SHORTAGE_STATUS_CANCELLED;
}

absl::Status CheckOpen(ShortageStatus status, absl::string_view what) {
  if (!IsTerminal(status)) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat("the shortage is ", StatusName(status), ": no new ", std::string(what)));
}

bool IsTerminal(ActionStatus status) {
  return status == v1::ACTION_STATUS_DONE || status == v1::ACTION_STATUS_CANCELLED;
}

}  // namespace medkoord::shortage
