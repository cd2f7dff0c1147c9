#pragma once
// The shortage lifecycle: announced -> active -> resolved, or cancelled from
// announced or active. Pure rules, used by the service before it writes.

#include "absl/strings/string_view.h"

#include "absl/status/status.h"
#include "medkoord/shortage/v1/shortage.pb.h"

namespace medkoord::shortage {

using ShortageStatus = medkoord::shortage::v1::ShortageStatus;
using ActionStatus = medkoord::shortage::v1::ActionStatus;

// OK when `from` -> `to` is a lifecycle step; FAILED_PRECONDITION naming both
// otherwise (e.g. resolving an announced shortage).
absl::Status CheckTransition(ShortageStatus from, ShortageStatus to);

// Resolved and cancelled shortages take no new positions, allocations,
// guidance or updates.
bool IsTerminal(ShortageStatus status);
absl::Status CheckOpen(ShortageStatus status, absl::string_view what);

// Done and cancelled actions are closed for changes.
bool IsTerminal(ActionStatus status);

// "announced", "active", ... for messages and the database.
const char* StatusName(ShortageStatus status);

}  // namespace medkoord::shortage
