// Learning-rate schedule values at named steps against the official formula.
#include "convnextv2/optim/schedule.h"

#include <gtest/gtest.h>

#include <cmath>

namespace convnextv2::optim {
namespace {

// lr 4e-3, min_lr 1e-6, 2 warmup epochs of 10 epochs, 100 steps per epoch.
LrSchedule Make() { return LrSchedule(4e-3, 1e-6, 2, 10, 100); }

TEST(LrSchedule, StartsAtZero) { EXPECT_DOUBLE_EQ(Make().At(0), 0.0); }

TEST(LrSchedule, LinearDuringWarmup) {
  EXPECT_DOUBLE_EQ(Make().At(50), 4e-3 * 0.5 / 2);   // a quarter into warmup
  EXPECT_DOUBLE_EQ(Make().At(100), 4e-3 * 1.0 / 2);  // halfway
  EXPECT_DOUBLE_EQ(Make().At(199), 4e-3 * 1.99 / 2);
}

TEST(LrSchedule, PeakAtEndOfWarmup) { EXPECT_DOUBLE_EQ(Make().At(200), 4e-3); }

TEST(LrSchedule, HalfCosineAfterwards) {
  // Mid-cosine: epoch 6 is half of the 8 cosine epochs -> (lr + min_lr) / 2.
  EXPECT_NEAR(Make().At(600), (4e-3 + 1e-6) / 2, 1e-15);
  // A quarter: min + (lr - min) * (1 + cos(pi / 4)) / 2.
  EXPECT_NEAR(Make().At(400), 1e-6 + (4e-3 - 1e-6) * (1 + std::cos(M_PI / 4)) / 2, 1e-15);
}

TEST(LrSchedule, LastStepApproachesMinLr) {
  const double last = Make().At(999);
  const double expected = 1e-6 + (4e-3 - 1e-6) * 0.5 * (1 + std::cos(M_PI * 7.99 / 8));
  EXPECT_NEAR(last, expected, 1e-15);
  EXPECT_DOUBLE_EQ(Make().At(1000), 1e-6);  // never below the floor, even past the end
  EXPECT_DOUBLE_EQ(Make().At(5000), 1e-6);
}

TEST(LrSchedule, NoWarmup) {
  const LrSchedule s(1e-3, 0.0, 0, 4, 10);
  EXPECT_DOUBLE_EQ(s.At(0), 1e-3);
  EXPECT_NEAR(s.At(20), 5e-4, 1e-15);
}

TEST(LrSchedule, WarmupStepsOverrideWarmupEpochs) {
  ExperimentConfig c;
  c.mutable_train()->set_epochs(10);
  c.mutable_schedule()->set_warmup_epochs(5);
  c.mutable_schedule()->set_warmup_steps(50);
  c.mutable_schedule()->set_min_lr(0.0);
  const LrSchedule s = LrSchedule::FromConfig(c, 2e-3, 100);
  EXPECT_DOUBLE_EQ(s.warmup_epochs(), 0.5);
  EXPECT_DOUBLE_EQ(s.At(25), 1e-3);
  EXPECT_DOUBLE_EQ(s.At(50), 2e-3);
  c.mutable_schedule()->set_warmup_steps(-1);
  EXPECT_DOUBLE_EQ(LrSchedule::FromConfig(c, 2e-3, 100).At(250), 1e-3);
}

TEST(CosineValue, EndsAtTheFinalValue) {
  EXPECT_DOUBLE_EQ(CosineValue(0.05, 0.5, 0, 100), 0.05);
  EXPECT_NEAR(CosineValue(0.05, 0.5, 50, 100), 0.275, 1e-15);
  EXPECT_DOUBLE_EQ(CosineValue(0.05, 0.5, 100, 100), 0.5);
}

}  // namespace
}  // namespace convnextv2::optim
