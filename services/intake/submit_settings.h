#pragma once
// Intake's group-commit settings (docs/OPERATIONS.md): how many submit
// batches are written at once, how large one may be, and how small one may
// be under load and for how long a call waits for company. Refused at start-up
// (exit code 2 in RunService) when they cannot work with the pool.

#include <algorithm>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "common/config.h"
#include "services/intake/group_commit.h"

namespace medkoord::intake {

inline absl::StatusOr<GroupCommitOptions> ReadSubmitBatching(Config& config, int pool_size) {
  GroupCommitOptions options;
  // Each writer holds a pool connection while it writes; by default at most
  // half the pool, so reads and the outbox relay keep connections.
  const int64_t writers =
      config.Int("submit_writers", std::clamp(pool_size / 2, 1, options.max_writers));
  const int64_t max_batch = config.Int("submit_max_batch", static_cast<int64_t>(options.max_batch));
  const int64_t min_batch = config.Int("submit_min_batch", static_cast<int64_t>(options.min_batch));
  const absl::Duration max_wait = config.Duration("submit_max_wait", options.max_wait);
  std::vector<std::string> problems;
  if (writers < 1 || writers > pool_size) {
    problems.push_back(absl::StrCat("--submit_writers must be between 1 and --db_pool_size (", pool_size, "), got ",
                                    writers));
  }
  if (max_batch < 1 || max_batch > 1000) {
    problems.push_back(absl::StrCat("--submit_max_batch must be between 1 and 1000, got ", max_batch));
  }
  if (min_batch < 1 || min_batch > std::max<int64_t>(max_batch, 1)) {
    problems.push_back(absl::StrCat("--submit_min_batch must be between 1 and --submit_max_batch (", max_batch,
                                    "), got ", min_batch));
  }
  if (max_wait < absl::ZeroDuration() || max_wait > absl::Milliseconds(100)) {
    problems.push_back(absl::StrCat("--submit_max_wait must be between 0s and 100ms, got ", absl::FormatDuration(max_wait)));
  }
  if (!problems.empty()) return absl::FailedPreconditionError(absl::StrCat("config: ", absl::StrJoin(problems, "; ")));
  options.max_writers = static_cast<int>(writers);
  options.max_batch = static_cast<size_t>(max_batch);
  options.min_batch = static_cast<size_t>(min_batch);
  options.max_wait = max_wait;
  return options;
}

}  // namespace medkoord::intake
