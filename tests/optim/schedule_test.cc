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
  const LrSchedule s = *LrSchedule::FromConfig(c, 2e-3, 100);
  EXPECT_DOUBLE_EQ(s.warmup_epochs(), 0.5);
  EXPECT_DOUBLE_EQ(s.At(25), 1e-3);
  EXPECT_DOUBLE_EQ(s.At(50), 2e-3);
  c.mutable_schedule()->set_warmup_steps(-1);
  EXPECT_DOUBLE_EQ(LrSchedule::FromConfig(c, 2e-3, 100)->At(250), 1e-3);
}

// warmup_epochs >= epochs (the official defaults, warmup 20, with --epochs 1): the official
// adjust_learning_rate stays in its warmup branch, lr * e / warmup_epochs, for the whole run.
TEST(LrSchedule, WarmupLongerThanTheRunIsTheRampCutOff) {
  ExperimentConfig c;  // main_finetune.py's defaults: warmup_epochs 20, min_lr 1e-6
  c.mutable_train()->set_epochs(1);
  const LrSchedule s = *LrSchedule::FromConfig(c, 4e-3, 100);
  EXPECT_DOUBLE_EQ(s.At(0), 0.0);
  EXPECT_DOUBLE_EQ(s.At(50), 4e-3 * 0.5 / 20);
  EXPECT_DOUBLE_EQ(s.At(99), 4e-3 * 0.99 / 20);  // the last step: still ramping, 1/20 of lr
  // Pre-training's defaults (warmup 40) with 2 epochs.
  const LrSchedule p(1.5e-4, 0.0, 40, 2, 10);
  EXPECT_DOUBLE_EQ(p.At(10), 1.5e-4 * 1.0 / 40);
  EXPECT_DOUBLE_EQ(p.At(19), 1.5e-4 * 1.9 / 40);
  // Equal: warmup ends where training ends.
  const LrSchedule e(1e-3, 1e-6, 3, 3, 10);
  EXPECT_DOUBLE_EQ(e.At(15), 1e-3 * 1.5 / 3);
  EXPECT_DOUBLE_EQ(e.At(29), 1e-3 * 2.9 / 3);
  // warmup_steps past the end: the same ramp in steps.
  c.mutable_schedule()->set_warmup_steps(400);
  EXPECT_DOUBLE_EQ(LrSchedule::FromConfig(c, 4e-3, 100)->At(99), 4e-3 * 99 / 400);
}

TEST(CosineValue, EndsAtTheFinalValue) {
  EXPECT_DOUBLE_EQ(CosineValue(0.05, 0.5, 0, 100), 0.05);
  EXPECT_NEAR(CosineValue(0.05, 0.5, 50, 100), 0.275, 1e-15);
  EXPECT_DOUBLE_EQ(CosineValue(0.05, 0.5, 100, 100), 0.5);
}

TEST(WeightDecaySchedule, ConstantWithoutWeightDecayEnd) {
  ExperimentConfig c;
  c.mutable_train()->set_epochs(3);
  c.mutable_optim()->set_weight_decay(0.05);
  const WeightDecaySchedule s = WeightDecaySchedule::FromConfig(c, 10);
  EXPECT_DOUBLE_EQ(s.At(0), 0.05);
  EXPECT_DOUBLE_EQ(s.At(29), 0.05);
}

TEST(WeightDecaySchedule, OfficialCosineToWeightDecayEnd) {
  ExperimentConfig c;
  c.mutable_train()->set_epochs(4);
  c.mutable_optim()->set_weight_decay(0.04);
  c.mutable_optim()->set_weight_decay_end(0.4);
  // Warmup does not apply to weight decay: the official call passes no warmup.
  c.mutable_schedule()->set_warmup_epochs(2);
  const WeightDecaySchedule s = WeightDecaySchedule::FromConfig(c, 25);
  EXPECT_EQ(s.total_steps(), 100);
  EXPECT_DOUBLE_EQ(s.At(0), 0.04);
  EXPECT_NEAR(s.At(50), 0.22, 1e-15);  // half way: the mean
  EXPECT_NEAR(s.At(25), 0.4 + 0.5 * (0.04 - 0.4) * (1 + std::cos(M_PI * 0.25)), 1e-15);
  // The official array's last entry (i = 99 of 100), then the end value.
  EXPECT_NEAR(s.At(99), 0.4 + 0.5 * (0.04 - 0.4) * (1 + std::cos(M_PI * 99 / 100)), 1e-15);
  EXPECT_LT(s.At(99), 0.4);
  EXPECT_GT(s.At(99), 0.3999);
  EXPECT_DOUBLE_EQ(s.At(100), 0.4);
  EXPECT_DOUBLE_EQ(s.At(1000), 0.4);
  // Pure function of (config, step): a second schedule agrees at every step.
  const WeightDecaySchedule again = WeightDecaySchedule::FromConfig(c, 25);
  for (int64_t i = 0; i < 100; i += 7) EXPECT_EQ(s.At(i), again.At(i));
}

}  // namespace
}  // namespace convnextv2::optim
