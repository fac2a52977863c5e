// What TrainingRecipe (train/recipe.h) does per micro-batch: the lr (official
// adjust_learning_rate at the first micro-batch of each accumulation group), the weight decay per
// optimizer step (official cosine_scheduler), update_freq boundaries, clip_grad, AMP, EMA, and
// the errors of bad input (recipe_groups_test.cc: the optimizer and its parameter groups).
// Model and formulas: recipe_test_util.h; at most six micro-batches per test.
#include "convnextv2/train/recipe.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/csrc/autograd/generated/variable_factories.h>

#include <cmath>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "convnextv2/models/convnextv2.h"
#include "convnextv2/optim/optimizer.h"
#include "convnextv2/optim/param_groups.h"
#include "convnextv2/proto/experiment.pb.h"
#include "convnextv2/util/torch_compat.h"
#include "tests/train/recipe_test_util.h"

namespace convnextv2::train {
namespace {

using namespace recipe_test;  // NOLINT(build/namespaces): the shared fixtures

// --- Schedules ----------------------------------------------------------------------------

TEST(RecipeLr, EffectiveLrFromBlr) {
  ExperimentConfig c = Config();
  c.mutable_optim()->clear_lr();
  c.mutable_optim()->set_blr(4e-3);
  c.mutable_train()->set_update_freq(2);
  // main_finetune.py: lr = blr * batch_size * update_freq * world_size / 256.
  EXPECT_NEAR(Create(c, TinyModel(), 4, /*world_size=*/2)->lr(), 4e-3 * 16 * 2 * 2 / 256, 1e-15);
  c.mutable_optim()->set_lr(0.02);  // an explicit lr wins
  EXPECT_DOUBLE_EQ(Create(c, TinyModel(), 4, 2)->lr(), 0.02);
}

TEST(RecipeLr, EachMicroBatchFollowsAdjustLearningRate) {
  ExperimentConfig c = Config();
  c.mutable_optim()->set_layer_decay(0.5);
  c.mutable_train()->set_update_freq(2);
  const int64_t steps = 6;  // micro-batches per epoch: three accumulation groups
  auto r = Create(c, TinyModel(), steps);
  const double top = r->groups().back().lr_scale, bottom = r->groups().front().lr_scale;
  ASSERT_DOUBLE_EQ(top, 1.0);
  ASSERT_LT(bottom, 0.1);
  double want = -1;
  for (int epoch = 0; epoch < 3; ++epoch) {
    for (int64_t it = 0; it < steps; ++it) {
      SCOPED_TRACE(absl::StrCat("epoch ", epoch, " it ", it));
      r->BeginMicroBatch(epoch, it);
      // engine_finetune.py: at data_iter_step % update_freq == 0 only, at it / len + epoch.
      if (it % 2 == 0) want = OfficialLr(static_cast<double>(it) / steps + epoch, c, 1e-2);
      EXPECT_NEAR(r->max_lr(), want * top, 1e-12);
      EXPECT_NEAR(r->min_lr(), want * bottom, 1e-12);
      for (size_t g = 0; g < r->groups().size(); ++g) {
        EXPECT_NEAR(TorchLr(r->optimizer(), g), want * r->groups()[g].lr_scale, 1e-12);
      }
    }
  }
  EXPECT_DOUBLE_EQ(r->lr(), 1e-2);  // the peak, unchanged by the schedule
}

// schedule.warmup_steps > 0 replaces warmup_epochs by warmup_steps / steps_per_epoch (schedule.h).
TEST(RecipeLr, WarmupStepsReplaceWarmupEpochs) {
  ExperimentConfig c = Config();
  c.mutable_schedule()->set_warmup_steps(3);  // 3 of 4 micro-batches of an epoch
  auto r = Create(c, TinyModel(), 4);
  r->BeginMicroBatch(0, 2);
  EXPECT_NEAR(r->max_lr(), 1e-2 * 2.0 / 3.0, 1e-12);
  r->BeginMicroBatch(0, 3);  // warmup over: the cosine starts at its peak
  EXPECT_NEAR(r->max_lr(), 1e-2, 1e-12);
}

TEST(RecipeWeightDecay, EachOptimizerStepFollowsCosineScheduler) {
  ExperimentConfig c = Config();
  c.mutable_optim()->set_weight_decay(0.04);
  c.mutable_optim()->set_weight_decay_end(0.4);
  c.mutable_train()->set_update_freq(2);
  const int64_t steps = 6;  // 3 optimizer steps per epoch
  auto r = Create(c, TinyModel(), steps);
  const std::vector<double> wd = OfficialCosineScheduler(0.04, 0.4, 3, 3);
  ASSERT_EQ(r->groups()[1].name, "no_decay");
  double want = -1;
  for (int epoch = 0; epoch < 3; ++epoch) {
    for (int64_t it = 0; it < steps; ++it) {
      SCOPED_TRACE(absl::StrCat("epoch ", epoch, " it ", it));
      r->BeginMicroBatch(epoch, it);
      // ConvNeXt's train_one_epoch: wd_schedule_values[epoch * steps_per_epoch + it // update_freq]
      // at the first micro-batch of each group.
      if (it % 2 == 0) want = wd[epoch * 3 + it / 2];
      EXPECT_NEAR(r->weight_decay(), want, 1e-12);
      EXPECT_NEAR(optim::GetWeightDecay(r->optimizer(), 0), want, 1e-12);
      EXPECT_DOUBLE_EQ(optim::GetWeightDecay(r->optimizer(), 1), 0.0);
    }
  }
  EXPECT_GT(r->weight_decay(), 0.38);  // close to the end value by the last step
}

TEST(RecipeWeightDecay, ConstantWithoutWeightDecayEnd) {
  ExperimentConfig c = Config();
  c.mutable_optim()->set_weight_decay(0.03);
  auto r = Create(c, TinyModel(), 4);
  for (int64_t it : {0, 2, 3}) {
    r->BeginMicroBatch(2, it);
    EXPECT_DOUBLE_EQ(r->weight_decay(), 0.03);
    EXPECT_DOUBLE_EQ(optim::GetWeightDecay(r->optimizer(), 0), 0.03);
    EXPECT_DOUBLE_EQ(optim::GetWeightDecay(r->optimizer(), 1), 0.0);
  }
}

// --- Steps --------------------------------------------------------------------------------

// SGD without momentum or weight decay: a step moves the weights by exactly lr * gradient.
ExperimentConfig PlainSgd() {
  ExperimentConfig c = Config();
  c.mutable_optim()->set_opt("momentum");
  c.mutable_optim()->set_momentum(0.0);
  c.mutable_optim()->set_weight_decay(0.0);
  c.mutable_optim()->set_lr(0.5);
  c.mutable_schedule()->set_warmup_epochs(0);
  c.mutable_schedule()->set_min_lr(0.0);
  return c;
}

std::vector<at::Tensor> Snapshot(models::ConvNeXtV2& model) {
  std::vector<at::Tensor> out;
  for (const at::Tensor& p : model->parameters()) out.push_back(p.detach().clone());
  return out;
}

double Distance(models::ConvNeXtV2& model, const std::vector<at::Tensor>& before) {
  double sum = 0;
  const std::vector<at::Tensor> now = model->parameters();
  for (size_t i = 0; i < now.size(); ++i) {
    const at::Tensor d = now[i].detach().to(at::kDouble) - before[i].to(at::kDouble);
    sum += d.pow(2).sum().item<double>();
  }
  return std::sqrt(sum);
}

TEST(RecipeSteps, UpdateFreqBoundaries) {
  ExperimentConfig c = PlainSgd();
  c.mutable_train()->set_update_freq(3);
  models::ConvNeXtV2 model = TinyModel();
  auto r = Create(c, model, 6);
  EXPECT_EQ(r->update_freq(), 3);
  r->StartEpoch();
  for (int64_t it = 0; it < 6; ++it) {
    SCOPED_TRACE(it);
    const std::vector<at::Tensor> before = Snapshot(model);
    r->BeginMicroBatch(0, it);
    const MicroStepResult step = r->Backward(Loss(model, it), it);
    const bool boundary = it % 3 == 2;
    EXPECT_EQ(step.boundary, boundary);
    EXPECT_EQ(step.stepped, boundary);
    if (boundary) {
      EXPECT_GT(step.grad_norm, 0.0);
      EXPECT_GT(Distance(model, before), 0.0);
    } else {
      EXPECT_EQ(Distance(model, before), 0.0);  // gradients accumulate, no step
    }
  }
}

TEST(RecipeSteps, StartEpochDropsLeftoverGradients) {
  ExperimentConfig c = PlainSgd();
  c.mutable_train()->set_update_freq(2);
  models::ConvNeXtV2 model = TinyModel();
  auto r = Create(c, model, 3);
  r->BeginMicroBatch(0, 2);
  r->Backward(Loss(model, 1), 2);  // an epoch's trailing micro-batch: no step
  ASSERT_TRUE(model->head->weight.grad().defined());
  ASSERT_GT(model->head->weight.grad().abs().sum().item<double>(), 0.0);
  r->StartEpoch();
  const at::Tensor g = model->head->weight.grad();
  EXPECT_TRUE(!g.defined() || g.abs().sum().item<double>() == 0.0);
}

TEST(RecipeSteps, ClipGradCapsTheStep) {
  for (const bool clip : {false, true}) {
    SCOPED_TRACE(clip ? "clip_grad 1e-2" : "no clip_grad");
    ExperimentConfig c = PlainSgd();
    if (clip) c.mutable_optim()->set_clip_grad(1e-2);
    models::ConvNeXtV2 model = TinyModel();
    auto r = Create(c, model, 1);
    const std::vector<at::Tensor> before = Snapshot(model);
    r->StartEpoch();
    r->BeginMicroBatch(0, 0);
    ASSERT_DOUBLE_EQ(r->max_lr(), 0.5);
    const MicroStepResult step = r->Backward(Loss(model, 5), 0);
    ASSERT_TRUE(step.stepped);
    ASSERT_GT(step.grad_norm, 1e-1);  // the reported norm is the one before clipping
    const double moved = Distance(model, before) / 0.5;
    const double want = clip ? 1e-2 : step.grad_norm;
    EXPECT_NEAR(moved, want, 1e-3 * want);
  }
}

// --- AMP and EMA --------------------------------------------------------------------------

TEST(RecipeAmp, OffByDefault) {
  ExperimentConfig c = PlainSgd();
  models::ConvNeXtV2 model = TinyModel();
  auto r = Create(c, model, 2);
  EXPECT_FALSE(r->use_amp());
  {
    AutocastGuard autocast = r->Autocast();
    EXPECT_FALSE(compat::AutocastEnabled(c10::DeviceType::CPU));
  }
  r->BeginMicroBatch(0, 0);
  r->Backward(Loss(model, 1), 0);
  EXPECT_EQ(r->scaler().state().growth_tracker, 0);  // no loss scaling without AMP
}

TEST(RecipeAmp, UseAmpAutocastsToBfloat16OnCpuWithTheLossScaler) {
  ExperimentConfig c = PlainSgd();
  c.mutable_train()->set_use_amp(true);
  models::ConvNeXtV2 model = TinyModel();
  auto r = Create(c, model, 2);
  EXPECT_TRUE(r->use_amp());
  at::Tensor loss;
  {
    AutocastGuard autocast = r->Autocast();
    EXPECT_TRUE(compat::AutocastEnabled(c10::DeviceType::CPU));
    EXPECT_EQ(compat::AutocastDtype(c10::DeviceType::CPU), c10::ScalarType::BFloat16);
    loss = Loss(model, 1);
  }
  EXPECT_FALSE(compat::AutocastEnabled(c10::DeviceType::CPU));
  EXPECT_DOUBLE_EQ(r->scaler().scale(), 65536.0);
  r->BeginMicroBatch(0, 0);
  const MicroStepResult step = r->Backward(loss.to(at::kFloat), 0);
  EXPECT_TRUE(step.stepped);
  EXPECT_EQ(r->scaler().state().growth_tracker, 1);  // one clean scaled step
}

TEST(RecipeEma, OnlyWhenConfiguredAndAllowedUpdatedAtBoundaries) {
  ExperimentConfig c = PlainSgd();
  EXPECT_EQ(Create(c, TinyModel(), 2)->ema(), nullptr);

  c.mutable_ema()->set_model_ema(true);
  c.mutable_ema()->set_model_ema_decay(0.5);
  c.mutable_train()->set_update_freq(2);
  models::ConvNeXtV2 model = TinyModel();
  auto r = Create(c, model, 2);
  ASSERT_NE(r->ema(), nullptr);
  EXPECT_DOUBLE_EQ(r->ema()->decay(), 0.5);
  ASSERT_NE(EmaModel(*r), nullptr);
  EXPECT_TRUE(r->ema_device().is_cpu());
  const at::Tensor before = model->head->weight.detach().clone();
  r->BeginMicroBatch(0, 0);
  r->Backward(Loss(model, 1), 0);
  EXPECT_TRUE(at::equal(EmaModel(*r)->head->weight, before));  // mid-group: no update
  r->Backward(Loss(model, 2), 1);
  const at::Tensor after = model->head->weight.detach();
  ASSERT_FALSE(at::equal(after, before));
  EXPECT_TRUE(at::allclose(EmaModel(*r)->head->weight, 0.5 * before + 0.5 * after));
  const at::Tensor averaged = EmaModel(*r)->head->weight.detach().clone();
  r->Backward(Loss(model, 3), 0);  // the next group's first micro-batch: the average stays
  EXPECT_TRUE(at::equal(EmaModel(*r)->head->weight, averaged));

  // ResetEmaFromModel copies the current weights.
  ASSERT_TRUE(r->ResetEmaFromModel().ok());
  EXPECT_TRUE(at::equal(EmaModel(*r)->head->weight, after));

  // A task may refuse EMA (pre-training keeps none).
  RecipeOptions no_ema;
  no_ema.allow_ema = false;
  no_ema.groups = [model] {
    return absl::StatusOr<std::vector<optim::ParamGroup>>(
        optim::BuildParamGroups(model->named_parameters(), 0.0));
  };
  absl::StatusOr<std::unique_ptr<TrainingRecipe>> pretrain =
      TrainingRecipe::Create(c, model.ptr(), kCpu, 2, 1, no_ema);
  ASSERT_TRUE(pretrain.ok()) << pretrain.status();
  EXPECT_EQ((*pretrain)->ema(), nullptr);
  EXPECT_EQ((*pretrain)->ema_model(), nullptr);
}

// --- Bad input ----------------------------------------------------------------------------

void ExpectInvalid(const absl::StatusOr<std::unique_ptr<TrainingRecipe>>& r,
                   const std::vector<std::string>& mentions) {
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << r.status();
  for (const std::string& m : mentions) {
    EXPECT_TRUE(absl::StrContains(r.status().message(), m)) << r.status() << " lacks " << m;
  }
}

TEST(RecipeErrors, UpdateFreqLongerThanAnEpoch) {
  ExperimentConfig c = Config();
  c.mutable_train()->set_update_freq(4);
  ExpectInvalid(CreateFinetuneRecipe(c, TinyModel(), kCpu, 3, 1), {"train.update_freq 4", "3"});
  EXPECT_TRUE(CreateFinetuneRecipe(c, TinyModel(), kCpu, 4, 1).ok());  // exactly one group
}

TEST(RecipeErrors, UnknownOptimizer) {
  ExperimentConfig c = Config();
  c.mutable_optim()->set_opt("lamb");
  ExpectInvalid(CreateFinetuneRecipe(c, TinyModel(), kCpu, 4, 1), {"lamb"});
}

TEST(RecipeErrors, AmpDtypeTheDeviceLacks) {
  ExperimentConfig c = Config();
  c.mutable_train()->set_use_amp(true);
  c.mutable_train()->set_amp_dtype("float16");
  ExpectInvalid(CreateFinetuneRecipe(c, TinyModel(), kCpu, 4, 1), {"train.amp_dtype", "float16"});
  c.mutable_train()->set_use_amp(false);  // only read with use_amp
  EXPECT_TRUE(CreateFinetuneRecipe(c, TinyModel(), kCpu, 4, 1).ok());
}

TEST(RecipeErrors, MissingOrFailingGroups) {
  ExperimentConfig c = Config();
  models::ConvNeXtV2 model = TinyModel();
  ExpectInvalid(TrainingRecipe::Create(c, model.ptr(), kCpu, 4, 1, RecipeOptions{}),
                {"no parameter groups"});
  RecipeOptions failing;
  failing.groups = []() -> absl::StatusOr<std::vector<optim::ParamGroup>> {
    return absl::InvalidArgumentError("mask_token: no group for it");
  };
  ExpectInvalid(TrainingRecipe::Create(c, model.ptr(), kCpu, 4, 1, failing),
                {"mask_token: no group for it"});
}

}  // namespace
}  // namespace convnextv2::train
