#include "convnextv2/run/preemption.h"

#include <gtest/gtest.h>

#include <chrono>
#include <csignal>

namespace convnextv2::run {
namespace {

using Clock = dist::TimeLimit::Clock;

TEST(PreemptionWatchTest, NothingRequestedWithoutSignalOrLimit) {
  const PreemptionWatch watch(SIGUSR2);
  for (int i = 0; i < 5; ++i) EXPECT_FALSE(watch.requested());
  EXPECT_EQ(watch.signal(), 0);
}

TEST(PreemptionWatchTest, SignalsSetTheFlagWithoutKillingTheProcess) {
  {
    const PreemptionWatch watch(SIGUSR2);
    std::raise(SIGUSR2);
    EXPECT_TRUE(watch.requested());
    EXPECT_EQ(watch.signal(), SIGUSR2);
    std::raise(SIGTERM);  // the first signal is kept
    EXPECT_EQ(watch.signal(), SIGUSR2);
  }
  const PreemptionWatch watch(0);  // a new watch starts clear; SIGTERM is always watched
  EXPECT_FALSE(watch.requested());
  std::raise(SIGTERM);
  EXPECT_TRUE(watch.requested());
  EXPECT_EQ(watch.signal(), SIGTERM);
}

TEST(PreemptionWatchTest, NearTimeLimitStopsButNeverAtTheFirstBoundary) {
  // 10 s left, 60 s lead: the limit is already near.
  const PreemptionWatch watch(
      0, dist::TimeLimit(Clock::now() + std::chrono::seconds(10), 60, "test"));
  EXPECT_FALSE(watch.requested());  // first boundary: no step done yet in this process
  EXPECT_TRUE(watch.requested());
  EXPECT_TRUE(watch.requested());
  EXPECT_EQ(watch.signal(), 0);
  watch.LogStop(0, 1);
}

TEST(PreemptionWatchTest, FarTimeLimitDoesNotStop) {
  const PreemptionWatch watch(
      0, dist::TimeLimit(Clock::now() + std::chrono::hours(1), 60, "test"));
  for (int i = 0; i < 5; ++i) EXPECT_FALSE(watch.requested());
}

}  // namespace
}  // namespace convnextv2::run
