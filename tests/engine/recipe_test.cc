// The training-step recipe: losses, gradient accumulation, clipping, loss scaling, EMA, autocast.
#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>
#include <c10/core/GradMode.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/csrc/autograd/generated/variable_factories.h>
#include <torch/optim/sgd.h>
#include <torch/types.h>

#include <cmath>
#include <limits>

#include "convnextv2/engine/amp.h"
#include "convnextv2/engine/ema.h"
#include "convnextv2/engine/loss_scaler.h"
#include "convnextv2/engine/losses.h"
#include "convnextv2/engine/train_step.h"
#include "convnextv2/models/registry.h"
#include "convnextv2/util/torch_compat.h"

namespace convnextv2::engine {
namespace {

using ::testing::HasSubstr;

// ---- losses -----------------------------------------------------------------------------------

TEST(Losses, LabelSmoothingByHand) {
  const at::Tensor logits = torch::tensor({{2.0, 0.0, 0.0}});
  const at::Tensor labels = torch::tensor({1}, torch::kLong);
  const double lse = std::log(std::exp(2.0) + 2.0);
  EXPECT_NEAR(CrossEntropy(logits, labels).item<double>(), lse, 1e-6);
  // 0.9 * nll + 0.1 * mean_c(-log p) = 0.9 * lse + 0.1 * (lse - 2/3).
  EXPECT_NEAR(CrossEntropy(logits, labels, 0.1).item<double>(), lse - 0.2 / 3, 1e-6);
}

TEST(Losses, AgreeWithEachOtherAndWithATen) {
  at::manual_seed(0);
  const at::Tensor logits = torch::randn({6, 5});
  const at::Tensor labels = torch::tensor({0, 4, 2, 2, 1, 3}, torch::kLong);
  for (double s : {0.0, 0.1, 0.3}) {
    const double ours = CrossEntropy(logits, labels, s).item<double>();
    const double aten = at::cross_entropy_loss(logits, labels, {}, at::Reduction::Mean, -100, s)
                            .item<double>();
    EXPECT_NEAR(ours, aten, 1e-6) << s;
    // Smoothed one-hot targets, as Mixup builds them with mixing off.
    const at::Tensor soft = at::one_hot(labels, 5).to(at::kFloat) * (1 - s) + s / 5;
    EXPECT_NEAR(SoftTargetCrossEntropy(logits, soft).item<double>(), ours, 1e-6) << s;
  }
  // A two-image mix: the mean of the per-target losses weighted by lambda.
  const at::Tensor a = at::one_hot(labels, 5).to(at::kFloat);
  const at::Tensor b = at::one_hot(labels.flip(0), 5).to(at::kFloat);
  EXPECT_NEAR(SoftTargetCrossEntropy(logits, 0.7 * a + 0.3 * b).item<double>(),
              0.7 * CrossEntropy(logits, labels).item<double>() +
                  0.3 * CrossEntropy(logits, labels.flip(0)).item<double>(),
              1e-5);
}

// ---- clipping and accumulation -----------------------------------------------------------------

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

// ---- loss scaler -------------------------------------------------------------------------------

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

// ---- EMA ---------------------------------------------------------------------------------------

TEST(Ema, FormulaAndDecayZero) {
  models::ConvNeXtV2 model = TinyModel();
  ModelEma ema(model.ptr(), 0.9, /*force_cpu=*/false);
  ModelEma follower(model.ptr(), 0.0, /*force_cpu=*/true);
  const at::Tensor w0 = model->head->weight.detach().clone();
  {
    c10::NoGradGuard no_grad;
    for (at::Tensor& p : model->parameters()) p.add_(1.0);
  }
  // A deep copy: changing the model does not move the average before Update.
  auto ema_model = ema.As<models::ConvNeXtV2Impl>();
  ASSERT_NE(ema_model, nullptr);
  EXPECT_TRUE(at::equal(ema_model->head->weight, w0));
  ema.Update(*model);
  follower.Update(*model);
  EXPECT_TRUE(at::allclose(ema_model->head->weight, 0.9 * w0 + 0.1 * (w0 + 1.0), 1e-6, 1e-6));
  const auto live = model->named_parameters();
  for (const auto& item : follower.StateDict()) {
    EXPECT_TRUE(at::equal(item.value(), live[item.key()])) << item.key();
  }
  for (const at::Tensor& p : ema_model->parameters()) EXPECT_FALSE(p.requires_grad());
  EXPECT_FALSE(ema_model->is_training());
}

TEST(Ema, StateDictByNameRoundTrip) {
  models::ConvNeXtV2 model = TinyModel();
  ModelEma ema(model.ptr(), 0.99, false);
  const auto sd = ema.StateDict();
  EXPECT_EQ(sd.size(), model->named_parameters().size());
  ASSERT_NE(sd.find("stages.2.5.grn.gamma"), nullptr);
  torch::OrderedDict<std::string, at::Tensor> changed;
  for (const auto& item : sd) changed.insert(item.key(), item.value().detach().clone() + 2.0);
  ASSERT_TRUE(ema.LoadStateDict(changed).ok());
  EXPECT_TRUE(at::equal(ema.StateDict()["head.bias"], changed["head.bias"]));
  torch::OrderedDict<std::string, at::Tensor> missing;
  missing.insert("head.bias", changed["head.bias"]);
  const absl::Status s = ema.LoadStateDict(missing);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.message()), HasSubstr("lacks"));
}

// ---- autocast ----------------------------------------------------------------------------------

TEST(Amp, DtypeChoice) {
  ExperimentConfig c;
  EXPECT_EQ(*AmpDtype(c, c10::Device(c10::kCPU)), c10::ScalarType::BFloat16);
  EXPECT_EQ(*AmpDtype(c, c10::Device(c10::kCUDA)), c10::ScalarType::Half);
  c.mutable_train()->set_amp_dtype("float16");
  EXPECT_FALSE(AmpDtype(c, c10::Device(c10::kCPU)).ok());
  c.mutable_train()->set_amp_dtype("bfloat16");
  EXPECT_EQ(*AmpDtype(c, c10::Device(c10::kCUDA)), c10::ScalarType::BFloat16);
}

TEST(Amp, CpuAutocastRunsTheModelInBfloat16AndRestores) {
  const at::Tensor a = torch::randn({4, 4});
  {
    AutocastGuard guard(c10::DeviceType::CPU, c10::ScalarType::BFloat16, true);
    EXPECT_EQ(at::mm(a, a).scalar_type(), c10::ScalarType::BFloat16);
    {
      AutocastGuard off(c10::DeviceType::CPU, c10::ScalarType::BFloat16, false);  // no-op
      EXPECT_EQ(at::mm(a, a).scalar_type(), c10::ScalarType::BFloat16);
    }
  }
  EXPECT_EQ(at::mm(a, a).scalar_type(), c10::ScalarType::Float);
  EXPECT_FALSE(compat::AutocastEnabled(c10::DeviceType::CPU));

  models::ConvNeXtV2 model = TinyModel();
  const at::Tensor images = torch::randn({2, 3, 32, 32});
  const at::Tensor labels = torch::tensor({1, 3}, torch::kLong);
  at::Tensor loss, logits;
  {
    AutocastGuard guard(c10::DeviceType::CPU, c10::ScalarType::BFloat16, true);
    logits = model->forward(images);
    loss = CrossEntropy(logits, labels);
  }
  EXPECT_EQ(logits.scalar_type(), c10::ScalarType::BFloat16);
  EXPECT_EQ(loss.scalar_type(), c10::ScalarType::Float);
  EXPECT_TRUE(std::isfinite(loss.item<double>()));
  loss.backward();
  EXPECT_EQ(model->head->weight.grad().scalar_type(), c10::ScalarType::Float);
  EXPECT_GT(GradNorm(model->parameters()), 0.0);
  // Close to the float32 loss.
  const double fp32 = CrossEntropy(model->forward(images), labels).item<double>();
  EXPECT_NEAR(loss.item<double>(), fp32, 0.05 * std::abs(fp32) + 0.02);
}

}  // namespace
}  // namespace convnextv2::engine
