#include "services/shortage/lifecycle.h"

#include <gtest/gtest.h>

namespace medkoord::shortage {
namespace {

using v1::SHORTAGE_STATUS_ACTIVE;
using v1::SHORTAGE_STATUS_ANNOUNCED;
using v1::SHORTAGE_STATUS_CANCELLED;
using v1::SHORTAGE_STATUS_RESOLVED;

TEST(LifecycleTest, AllowedSteps) {
  EXPECT_TRUE(CheckTransition(SHORTAGE_STATUS_ANNOUNCED, SHORTAGE_STATUS_ACTIVE).ok());
  EXPECT_TRUE(CheckTransition(SHORTAGE_STATUS_ACTIVE, SHORTAGE_STATUS_RESOLVED).ok());
  EXPECT_TRUE(CheckTransition(SHORTAGE_STATUS_ANNOUNCED, SHORTAGE_STATUS_CANCELLED).ok());
  EXPECT_TRUE(CheckTransition(SHORTAGE_STATUS_ACTIVE, SHORTAGE_STATUS_CANCELLED).ok());
}

TEST(LifecycleTest, WrongStepsAreFailedPrecondition) {
  const v1::ShortageStatus all[] = {SHORTAGE_STATUS_ANNOUNCED, SHORTAGE_STATUS_ACTIVE, SHORTAGE_STATUS_RESOLVED,
                                    SHORTAGE_STATUS_CANCELLED};
  int allowed = 0;
  for (auto from : all) {
    for (auto to : all) {
      absl::Status s = CheckTransition(from, to);
      if (s.ok()) {
        ++allowed;
      } else {
        EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
      }
    }
  }
  EXPECT_EQ(allowed, 4);
  absl::Status s = CheckTransition(SHORTAGE_STATUS_ANNOUNCED, SHORTAGE_STATUS_RESOLVED);
  EXPECT_EQ(s.message(), "a shortage that is announced cannot become resolved");
}

TEST(LifecycleTest, TerminalStatusesAreClosed) {
  EXPECT_TRUE(CheckOpen(SHORTAGE_STATUS_ACTIVE, "positions").ok());
  EXPECT_EQ(CheckOpen(SHORTAGE_STATUS_RESOLVED, "positions").code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(IsTerminal(SHORTAGE_STATUS_CANCELLED));
  EXPECT_TRUE(IsTerminal(v1::ACTION_STATUS_DONE));
  EXPECT_FALSE(IsTerminal(v1::ACTION_STATUS_IN_PROGRESS));
}

}  // namespace
}  // namespace medkoord::shortage
