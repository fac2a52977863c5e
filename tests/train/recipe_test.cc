// What TrainingRecipe (train/recipe.h) builds from a config: the optimizer and its parameter
// groups (official get_parameter_groups with layer decay), the lr per micro-batch (official
// adjust_learning_rate at the first micro-batch of each accumulation group), the weight decay per
// optimizer step (official cosine_scheduler), update_freq boundaries, clip_grad, AMP, EMA, and
// the errors of bad input. The expected values are computed here from the official formulas, not
// with the optim/ functions the recipe uses. Model: a tiny ConvNeXtV2 (depths 1-1-2-1, dims
// 8-16-32-64, 32 px), at most six micro-batches per test.
#include "convnextv2/train/recipe.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/csrc/autograd/generated/variable_factories.h>
#include <torch/optim/adam.h>
#include <torch/optim/adamw.h>
#include <torch/optim/sgd.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "convnextv2/models/convnextv2.h"
#include "convnextv2/optim/optimizer.h"
#include "convnextv2/optim/param_groups.h"
#include "convnextv2/proto/experiment.pb.h"
#include "convnextv2/util/torch_compat.h"

namespace convnextv2::train {
namespace {

const c10::Device kCpu(c10::kCPU);
const std::vector<int64_t> kDepths = {1, 1, 2, 1};

models::ConvNeXtV2 TinyModel() {
  at::manual_seed(3);
  return models::ConvNeXtV2(
      models::ConvNeXtV2Options().num_classes(4).depths(kDepths).dims({8, 16, 32, 64}));
}

// A loss with gradients of order one everywhere (the head starts near zero).
at::Tensor Loss(models::ConvNeXtV2& model, int64_t seed) {
  at::manual_seed(seed);
  return (model->forward(torch::randn({2, 3, 32, 32})) - 1.0).pow(2).mean();
}

// Fine-tuning settings with a short schedule; tests change what they check.
ExperimentConfig Config() {
  ExperimentConfig c;
  c.mutable_train()->set_batch_size(16);
  c.mutable_train()->set_epochs(3);
  c.mutable_schedule()->set_warmup_epochs(1);
  c.mutable_schedule()->set_min_lr(1e-5);
  c.mutable_optim()->set_lr(1e-2);
  return c;
}

std::unique_ptr<TrainingRecipe> Create(const ExperimentConfig& c, models::ConvNeXtV2 model,
                                       int64_t steps_per_epoch, int world_size = 1) {
  absl::StatusOr<std::unique_ptr<TrainingRecipe>> r =
      TrainingRecipe::Create(c, model, kCpu, steps_per_epoch, world_size);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *std::move(r) : nullptr;
}

// --- The official code, written out -------------------------------------------------------

// utils.adjust_learning_rate at fractional epoch e.
double OfficialLr(double e, const ExperimentConfig& c, double lr) {
  const double warmup = c.schedule().warmup_epochs(), epochs = c.train().epochs();
  const double min_lr = c.schedule().min_lr();
  if (e < warmup) return lr * e / warmup;
  return min_lr + (lr - min_lr) * 0.5 * (1.0 + std::cos(M_PI * (e - warmup) / (epochs - warmup)));
}

// utils.cosine_scheduler(base_value, final_value, epochs, niter_per_ep) (no warmup).
std::vector<double> OfficialCosineScheduler(double base_value, double final_value, int epochs,
                                            int niter_per_ep) {
  const int n = epochs * niter_per_ep;
  std::vector<double> schedule;
  for (int i = 0; i < n; ++i) {
    schedule.push_back(final_value +
                       0.5 * (base_value - final_value) * (1.0 + std::cos(M_PI * i / n)));
  }
  return schedule;
}

std::vector<std::string> Parts(const std::string& name) { return absl::StrSplit(name, '.'); }
int Int(const std::string& s) {
  int v = -1;
  EXPECT_TRUE(absl::SimpleAtoi(s, &v)) << s;
  return v;
}
int64_t SumDepths(int stages) {
  int64_t s = 0;
  for (int i = 0; i < stages; ++i) s += kDepths[i];
  return s;
}

// optim_factory.get_num_layer_for_convnext_single.
int OfficialLayerIdSingle(const std::string& name) {
  const std::vector<std::string> p = Parts(name);
  if (absl::StartsWith(name, "downsample_layers")) return SumDepths(Int(p[1])) + 1;
  if (absl::StartsWith(name, "stages")) return SumDepths(Int(p[1])) + Int(p[2]) + 1;
  return SumDepths(4) + 1;
}

// optim_factory.get_num_layer_for_convnext (the "group" strategy).
int OfficialLayerIdGroup(const std::string& name) {
  const std::vector<std::string> p = Parts(name);
  if (absl::StartsWith(name, "downsample_layers")) {
    const int stage = Int(p[1]);
    return stage == 0 ? 0 : stage == 3 ? 12 : stage + 1;
  }
  if (absl::StartsWith(name, "stages")) {
    const int stage = Int(p[1]), block = Int(p[2]);
    return stage <= 1 ? stage + 1 : stage == 2 ? 3 + block / 3 : 12;
  }
  return 13;
}

struct OfficialGroup {
  std::string name;
  double weight_decay;
  double lr_scale;
  std::vector<std::string> params;
};

// optim_factory.get_parameter_groups, with main_finetune.py's LayerDecayValueAssigner when
// layer_decay != 1: values[i] = layer_decay ** (num_layers + 1 - i).
std::vector<OfficialGroup> OfficialGroups(models::ConvNeXtV2& model, const ExperimentConfig& c) {
  const double ld = c.optim().layer_decay();
  const bool group_type = c.optim().layer_decay_type() == "group";
  const int num_layers = group_type ? 12 : static_cast<int>(SumDepths(4));
  std::vector<OfficialGroup> groups;
  std::map<std::string, size_t> index;
  for (const auto& item : model->named_parameters()) {
    const std::string& name = item.key();
    const bool no_decay = item.value().dim() == 1 || absl::EndsWith(name, ".bias") ||
                          absl::EndsWith(name, ".gamma") || absl::EndsWith(name, ".beta");
    std::string group = no_decay ? "no_decay" : "decay";
    double scale = 1.0;
    if (ld != 1.0) {
      const int id = group_type ? OfficialLayerIdGroup(name) : OfficialLayerIdSingle(name);
      group = absl::StrCat("layer_", id, "_", group);
      scale = std::pow(ld, num_layers + 1 - id);
    }
    if (index.count(group) == 0) {
      index[group] = groups.size();
      groups.push_back({group, no_decay ? 0.0 : c.optim().weight_decay(), scale, {}});
    }
    groups[index[group]].params.push_back(name);
  }
  return groups;
}

double TorchLr(torch::optim::Optimizer& opt, size_t group) {
  return opt.param_groups()[group].options().get_lr();
}

// The groups the recipe made are the official ones, in the official order, and the optimizer
// holds exactly their tensors at their weight decay.
void ExpectOfficialGroups(models::ConvNeXtV2& model, const ExperimentConfig& c,
                          TrainingRecipe& recipe) {
  const std::vector<OfficialGroup> want = OfficialGroups(model, c);
  const std::vector<optim::ParamGroup>& got = recipe.groups();
  ASSERT_EQ(got.size(), want.size());
  ASSERT_EQ(recipe.optimizer().param_groups().size(), want.size());
  const auto named = model->named_parameters();
  for (size_t i = 0; i < want.size(); ++i) {
    SCOPED_TRACE(want[i].name);
    EXPECT_EQ(got[i].name, want[i].name);
    EXPECT_EQ(got[i].param_names, want[i].params);
    EXPECT_DOUBLE_EQ(got[i].weight_decay, want[i].weight_decay);
    EXPECT_NEAR(got[i].lr_scale, want[i].lr_scale, 1e-12 * want[i].lr_scale);
    EXPECT_DOUBLE_EQ(optim::GetWeightDecay(recipe.optimizer(), i), want[i].weight_decay);
    const std::vector<at::Tensor>& held = recipe.optimizer().param_groups()[i].params();
    ASSERT_EQ(held.size(), want[i].params.size());
    for (size_t k = 0; k < held.size(); ++k) {
      EXPECT_TRUE(held[k].is_same(named[want[i].params[k]])) << want[i].params[k];
    }
  }
}

// --- Optimizer and parameter groups -------------------------------------------------------

TEST(RecipeOptimizer, OptKindAndItsOptions) {
  ExperimentConfig c = Config();
  c.mutable_optim()->set_opt_eps(1e-6);
  c.mutable_optim()->add_opt_betas(0.8);
  c.mutable_optim()->add_opt_betas(0.95);
  auto r = Create(c, TinyModel(), 4);
  auto* adamw = dynamic_cast<torch::optim::AdamW*>(&r->optimizer());
  ASSERT_NE(adamw, nullptr);  // the default, as main_finetune.py's
  const auto& ao =
      static_cast<const torch::optim::AdamWOptions&>(adamw->param_groups()[0].options());
  EXPECT_DOUBLE_EQ(ao.eps(), 1e-6);
  EXPECT_DOUBLE_EQ(std::get<0>(ao.betas()), 0.8);
  EXPECT_DOUBLE_EQ(std::get<1>(ao.betas()), 0.95);

  c.mutable_optim()->set_opt("adam");
  r = Create(c, TinyModel(), 4);
  EXPECT_NE(dynamic_cast<torch::optim::Adam*>(&r->optimizer()), nullptr);
  EXPECT_EQ(dynamic_cast<torch::optim::AdamW*>(&r->optimizer()), nullptr);

  for (const bool nesterov : {true, false}) {
    c.mutable_optim()->set_opt(nesterov ? "sgd" : "momentum");
    c.mutable_optim()->set_momentum(0.7);
    r = Create(c, TinyModel(), 4);
    auto* sgd = dynamic_cast<torch::optim::SGD*>(&r->optimizer());
    ASSERT_NE(sgd, nullptr) << c.optim().opt();
    for (auto& g : sgd->param_groups()) {
      const auto& so = static_cast<const torch::optim::SGDOptions&>(g.options());
      EXPECT_EQ(so.nesterov(), nesterov) << c.optim().opt();
      EXPECT_DOUBLE_EQ(so.momentum(), 0.7);
    }
  }
}

TEST(RecipeGroups, DecayAndNoDecayWithoutLayerDecay) {
  ExperimentConfig c = Config();
  c.mutable_optim()->set_weight_decay(0.07);
  models::ConvNeXtV2 model = TinyModel();
  auto r = Create(c, model, 4);
  ExpectOfficialGroups(model, c, *r);
  ASSERT_EQ(r->groups().size(), 2u);
  EXPECT_EQ(r->groups()[0].name, "decay");
  EXPECT_EQ(r->groups()[1].name, "no_decay");
  // GRN's gamma/beta have shape (1, 1, 1, C) but take no weight decay.
  const std::vector<std::string>& nd = r->groups()[1].param_names;
  EXPECT_NE(std::find(nd.begin(), nd.end(), "stages.2.1.grn.gamma"), nd.end());
  EXPECT_NE(std::find(nd.begin(), nd.end(), "head.bias"), nd.end());
}

TEST(RecipeGroups, LayerDecaySingleScalesAndGroups) {
  ExperimentConfig c = Config();
  c.mutable_optim()->set_layer_decay(0.8);
  models::ConvNeXtV2 model = TinyModel();
  auto r = Create(c, model, 4);
  ExpectOfficialGroups(model, c, *r);
  // 5 blocks: the stem is layer 1 (scale 0.8^5), norm and head layer 6 (scale 1).
  EXPECT_EQ(r->groups().front().name, "layer_1_decay");
  EXPECT_NEAR(r->groups().front().lr_scale, std::pow(0.8, 5), 1e-12);
  EXPECT_EQ(r->groups().back().name, "layer_6_decay");  // head.weight comes after norm.*
  EXPECT_DOUBLE_EQ(r->groups().back().lr_scale, 1.0);
}

TEST(RecipeGroups, LayerDecayGroupStrategy) {
  ExperimentConfig c = Config();
  c.mutable_optim()->set_layer_decay(0.9);
  c.mutable_optim()->set_layer_decay_type("group");
  models::ConvNeXtV2 model = TinyModel();
  auto r = Create(c, model, 4);
  ExpectOfficialGroups(model, c, *r);
  EXPECT_EQ(r->groups().front().name, "layer_0_decay");  // the stem
  EXPECT_NEAR(r->groups().front().lr_scale, std::pow(0.9, 13), 1e-12);
}

TEST(RecipeGroups, ATaskSuppliesItsOwnGroups) {
  ExperimentConfig c = Config();
  c.mutable_optim()->set_weight_decay(0.05);
  c.mutable_optim()->set_weight_decay_end(0.25);
  models::ConvNeXtV2 model = TinyModel();
  RecipeOptions options;
  options.groups = [model]() -> absl::StatusOr<std::vector<optim::ParamGroup>> {
    optim::ParamGroup head{"head_only", 0.3, 0.5, -1, {}, {}};
    optim::ParamGroup rest{"rest", 0.0, 1.0, -1, {}, {}};
    for (const auto& item : model->named_parameters()) {
      optim::ParamGroup& g = absl::StartsWith(item.key(), "head.") ? head : rest;
      g.param_names.push_back(item.key());
      g.params.push_back(item.value());
    }
    return std::vector<optim::ParamGroup>{head, rest};
  };
  absl::StatusOr<std::unique_ptr<TrainingRecipe>> r =
      TrainingRecipe::Create(c, model.ptr(), kCpu, 4, 1, options);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ((*r)->groups().size(), 2u);
  EXPECT_EQ((*r)->groups()[0].name, "head_only");
  ASSERT_EQ((*r)->optimizer().param_groups().size(), 2u);
  EXPECT_EQ((*r)->optimizer().param_groups()[0].params().size(), 2u);  // head weight and bias
  (*r)->BeginMicroBatch(1, 2);
  const double lr = OfficialLr(1.5, c, 1e-2);
  EXPECT_NEAR(TorchLr((*r)->optimizer(), 0), 0.5 * lr, 1e-12);
  EXPECT_NEAR(TorchLr((*r)->optimizer(), 1), lr, 1e-12);
  // The weight-decay schedule reaches the group that decays; the other stays at 0.
  const double wd = OfficialCosineScheduler(0.05, 0.25, 3, 4)[4 + 2];
  EXPECT_NEAR(optim::GetWeightDecay((*r)->optimizer(), 0), wd, 1e-12);
  EXPECT_DOUBLE_EQ(optim::GetWeightDecay((*r)->optimizer(), 1), 0.0);
}

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
  ASSERT_NE(r->ema_model(), nullptr);
  EXPECT_TRUE(r->ema_device().is_cpu());
  const at::Tensor before = model->head->weight.detach().clone();
  r->BeginMicroBatch(0, 0);
  r->Backward(Loss(model, 1), 0);
  EXPECT_TRUE(at::equal(r->ema_model()->head->weight, before));  // mid-group: no update
  r->Backward(Loss(model, 2), 1);
  const at::Tensor after = model->head->weight.detach();
  ASSERT_FALSE(at::equal(after, before));
  EXPECT_TRUE(at::allclose(r->ema_model()->head->weight, 0.5 * before + 0.5 * after));
  const at::Tensor averaged = r->ema_model()->head->weight.detach().clone();
  r->Backward(Loss(model, 3), 0);  // the next group's first micro-batch: the average stays
  EXPECT_TRUE(at::equal(r->ema_model()->head->weight, averaged));

  // ResetEmaFromModel copies the current weights.
  ASSERT_TRUE(r->ResetEmaFromModel().ok());
  EXPECT_TRUE(at::equal(r->ema_model()->head->weight, after));

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
  ExpectInvalid(TrainingRecipe::Create(c, TinyModel(), kCpu, 3, 1), {"train.update_freq 4", "3"});
  EXPECT_TRUE(TrainingRecipe::Create(c, TinyModel(), kCpu, 4, 1).ok());  // exactly one group
}

TEST(RecipeErrors, UnknownOptimizer) {
  ExperimentConfig c = Config();
  c.mutable_optim()->set_opt("lamb");
  ExpectInvalid(TrainingRecipe::Create(c, TinyModel(), kCpu, 4, 1), {"lamb"});
}

TEST(RecipeErrors, AmpDtypeTheDeviceLacks) {
  ExperimentConfig c = Config();
  c.mutable_train()->set_use_amp(true);
  c.mutable_train()->set_amp_dtype("float16");
  ExpectInvalid(TrainingRecipe::Create(c, TinyModel(), kCpu, 4, 1), {"train.amp_dtype", "float16"});
  c.mutable_train()->set_use_amp(false);  // only read with use_amp
  EXPECT_TRUE(TrainingRecipe::Create(c, TinyModel(), kCpu, 4, 1).ok());
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
