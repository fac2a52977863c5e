// Dynamic loss scaling, alone and inside the optimizer stepper (train/loss_scaler.h).
#include "convnextv2/train/loss_scaler.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/csrc/autograd/generated/variable_factories.h>
#include <torch/optim/sgd.h>
#include <torch/types.h>

#include <cmath>
#include <limits>

#include "convnextv2/train/train_step.h"

namespace convnextv2::train {
namespace {

TEST(LossScaler, SkipsAStepWithAnInfGradientAndBacksOff) {
  at::Tensor p = torch::ones({3}, torch::requires_grad());
  torch::optim::SGD opt({p}, torch::optim::SGDOptions(0.1));
  OptimizerStepper stepper(&opt, {p}, {.update_freq = 1, .use_scaler = true});
  EXPECT_DOUBLE_EQ(stepper.scaler().scale(), 65536.0);
  const float inf = std::numeric_limits<float>::infinity();
  MicroStepResult r = stepper.Backward((p * torch::tensor({1.0f, inf, 1.0f})).sum(), 0);
  EXPECT_TRUE(r.boundary);
  EXPECT_FALSE(r.stepped);
  EXPECT_TRUE(at::equal(p, torch::ones({3})));  // untouched
  EXPECT_DOUBLE_EQ(stepper.scaler().scale(), 32768.0);
  EXPECT_EQ(stepper.scaler().state().growth_tracker, 0);
  // A clean step: gradients arrive unscaled (grad 2 -> p = 1 - 0.1 * 2).
  r = stepper.Backward((p * 2.0).sum(), 0);
  EXPECT_TRUE(r.stepped);
  EXPECT_NEAR(r.grad_norm, 2.0 * std::sqrt(3.0), 1e-5);
  EXPECT_TRUE(at::allclose(p, torch::full({3}, 0.8f), 1e-6, 1e-7)) << p;
  EXPECT_EQ(stepper.scaler().state().growth_tracker, 1);
  // NaN counts as well.
  const float nan = std::numeric_limits<float>::quiet_NaN();
  r = stepper.Backward((p * torch::tensor({nan, 1.0f, 1.0f})).sum(), 0);
  EXPECT_FALSE(r.stepped);
  EXPECT_DOUBLE_EQ(stepper.scaler().scale(), 16384.0);
}

TEST(LossScaler, DoublesAfter2000CleanStepsAndRestoresItsState) {
  LossScaler scaler;
  for (int i = 0; i < 1999; ++i) scaler.Update(false);
  EXPECT_DOUBLE_EQ(scaler.scale(), 65536.0);
  EXPECT_EQ(scaler.state().growth_tracker, 1999);
  scaler.Update(false);
  EXPECT_DOUBLE_EQ(scaler.scale(), 131072.0);
  EXPECT_EQ(scaler.state().growth_tracker, 0);
  scaler.Update(false);
  scaler.Update(true);
  EXPECT_DOUBLE_EQ(scaler.scale(), 65536.0);
  LossScaler restored;
  restored.set_state({1024.0, 17});
  EXPECT_DOUBLE_EQ(restored.scale(), 1024.0);
  EXPECT_DOUBLE_EQ(restored.Scale(torch::tensor({2.0f})).item<double>(), 2048.0);
  at::Tensor p = torch::zeros({1}, torch::requires_grad());
  p.mutable_grad() = torch::tensor({512.0f});
  EXPECT_TRUE(restored.Unscale({p}));
  EXPECT_DOUBLE_EQ(p.grad().item<double>(), 0.5);
}

}  // namespace
}  // namespace convnextv2::train
