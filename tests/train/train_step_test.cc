// Gradient clipping and accumulation over update_freq micro-batches (train/train_step.h).
#include "convnextv2/train/train_step.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/csrc/autograd/generated/variable_factories.h>
#include <torch/optim/sgd.h>
#include <torch/types.h>

#include <vector>

#include "convnextv2/models/registry.h"
#include "convnextv2/train/losses.h"

namespace convnextv2::train {
namespace {

TEST(Clip, CapsTheGlobalNormAndReportsTheNormBefore) {
  at::Tensor a = torch::zeros({2}, torch::requires_grad());
  at::Tensor b = torch::zeros({1}, torch::requires_grad());
  a.mutable_grad() = torch::tensor({3.0f, 0.0f});
  b.mutable_grad() = torch::tensor({4.0f});
  EXPECT_NEAR(GradNorm({a, b}), 5.0, 1e-6);
  EXPECT_NEAR(ClipGradNorm({a, b}, 1.0), 5.0, 1e-6);
  EXPECT_NEAR(GradNorm({a, b}), 1.0, 1e-5);
  EXPECT_NEAR(a.grad()[0].item<double>(), 0.6, 1e-5);
  EXPECT_NEAR(ClipGradNorm({a, b}, 10.0), 1.0, 1e-5);  // below the cap: untouched
  EXPECT_NEAR(GradNorm({a, b}), 1.0, 1e-5);
}

models::ConvNeXtV2 TinyModel() {
  at::manual_seed(3);
  return *models::CreateConvNeXtV2("convnextv2_atto", 4);
}

std::vector<at::Tensor> Params(models::ConvNeXtV2& m) { return m->parameters(); }

TEST(Accumulation, TwoMicroBatchesOfNEqualOneBatchOf2N) {
  models::ConvNeXtV2 accumulated = TinyModel();
  models::ConvNeXtV2 whole = TinyModel();
  at::manual_seed(7);
  const at::Tensor images = torch::randn({8, 3, 32, 32});
  const at::Tensor labels = torch::tensor({0, 1, 2, 3, 3, 2, 1, 0}, torch::kLong);
  torch::optim::SGD opt_a(Params(accumulated), torch::optim::SGDOptions(0.5));
  torch::optim::SGD opt_w(Params(whole), torch::optim::SGDOptions(0.5));
  OptimizerStepper acc(&opt_a, Params(accumulated), {.update_freq = 2});
  OptimizerStepper one(&opt_w, Params(whole), {.update_freq = 1});
  const at::Tensor before = accumulated->head->weight.detach().clone();

  MicroStepResult r = acc.Backward(
      CrossEntropy(accumulated->forward(images.slice(0, 0, 4)), labels.slice(0, 0, 4)), 0);
  EXPECT_FALSE(r.boundary);
  EXPECT_TRUE(at::equal(accumulated->head->weight, before));  // no step mid-group
  r = acc.Backward(
      CrossEntropy(accumulated->forward(images.slice(0, 4, 8)), labels.slice(0, 4, 8)), 1);
  EXPECT_TRUE(r.boundary);
  EXPECT_TRUE(r.stepped);
  const MicroStepResult w = one.Backward(CrossEntropy(whole->forward(images), labels), 0);
  EXPECT_NEAR(r.grad_norm, w.grad_norm, 1e-4 * w.grad_norm);
  EXPECT_FALSE(at::equal(accumulated->head->weight, before));
  const auto pa = accumulated->named_parameters(), pw = whole->named_parameters();
  for (const auto& item : pa) {
    EXPECT_TRUE(at::allclose(item.value(), pw[item.key()], 1e-5, 1e-6)) << item.key();
  }
  // Gradients are zeroed after the step.
  for (const at::Tensor& p : Params(accumulated)) {
    EXPECT_TRUE(!p.grad().defined() || p.grad().abs().max().item<double>() == 0.0);
  }
}

TEST(Accumulation, ClippingInTheStepper) {
  at::Tensor p = torch::zeros({2}, torch::requires_grad());
  torch::optim::SGD opt({p}, torch::optim::SGDOptions(1.0));
  OptimizerStepper stepper(&opt, {p}, {.update_freq = 1, .clip_grad = 0.5});
  const MicroStepResult r = stepper.Backward((p * torch::tensor({3.0f, 4.0f})).sum(), 0);
  EXPECT_NEAR(r.grad_norm, 5.0, 1e-6);
  // Clipped to norm 0.5: the step moves by (0.3, 0.4).
  EXPECT_TRUE(at::allclose(p, torch::tensor({-0.3f, -0.4f}), 1e-5, 1e-6)) << p;
}

}  // namespace
}  // namespace convnextv2::train
