// What the recipe tests share: a tiny ConvNeXtV2 (depths 1-1-2-1, dims 8-16-32-64, 32 px), a
// loss with gradients everywhere, fine-tuning settings with a short schedule, and the official
// adjust_learning_rate / cosine_scheduler written out (the expected values are computed from
// them, not with the optim/ functions the recipe uses).
#ifndef CONVNEXTV2_TESTS_TRAIN_RECIPE_TEST_UTIL_H_
#define CONVNEXTV2_TESTS_TRAIN_RECIPE_TEST_UTIL_H_

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/csrc/autograd/generated/variable_factories.h>
#include <torch/optim/optimizer.h>

#include <cmath>
#include <memory>
#include <utility>
#include <vector>

#include "convnextv2/models/convnextv2.h"
#include "convnextv2/optim/param_groups.h"
#include "convnextv2/proto/experiment.pb.h"
#include "convnextv2/train/recipe.h"

namespace convnextv2::train::recipe_test {

inline const c10::Device kCpu(c10::kCPU);
inline const std::vector<int64_t> kDepths = {1, 1, 2, 1};

inline models::ConvNeXtV2 TinyModel() {
  at::manual_seed(3);
  return models::ConvNeXtV2(
      models::ConvNeXtV2Options().num_classes(4).depths(kDepths).dims({8, 16, 32, 64}));
}

// A loss with gradients of order one everywhere (the head starts near zero).
inline at::Tensor Loss(models::ConvNeXtV2& model, int64_t seed) {
  at::manual_seed(seed);
  return (model->forward(torch::randn({2, 3, 32, 32})) - 1.0).pow(2).mean();
}

// Fine-tuning settings with a short schedule; tests change what they check.
inline ExperimentConfig Config() {
  ExperimentConfig c;
  c.mutable_train()->set_batch_size(16);
  c.mutable_train()->set_epochs(3);
  c.mutable_schedule()->set_warmup_epochs(1);
  c.mutable_schedule()->set_min_lr(1e-5);
  c.mutable_optim()->set_lr(1e-2);
  return c;
}

// The recipe fine-tuning builds for a ConvNeXtV2 (apps/finetune.cc's recipe_options): its
// parameter groups are optim::FinetuneParamGroups.
inline absl::StatusOr<std::unique_ptr<TrainingRecipe>> CreateFinetuneRecipe(
    const ExperimentConfig& c, models::ConvNeXtV2 model, c10::Device device,
    int64_t steps_per_epoch, int world_size) {
  RecipeOptions options;
  options.groups = [&c, model] {
    return optim::FinetuneParamGroups(c, model->named_parameters(), model->options.depths());
  };
  return TrainingRecipe::Create(c, model.ptr(), device, steps_per_epoch, world_size,
                                std::move(options));
}

// The EMA copy of a ConvNeXtV2 (null without model_ema).
inline std::shared_ptr<models::ConvNeXtV2Impl> EmaModel(const TrainingRecipe& r) {
  return std::dynamic_pointer_cast<models::ConvNeXtV2Impl>(r.ema_model());
}

inline std::unique_ptr<TrainingRecipe> Create(const ExperimentConfig& c, models::ConvNeXtV2 model,
                                       int64_t steps_per_epoch, int world_size = 1) {
  absl::StatusOr<std::unique_ptr<TrainingRecipe>> r =
      CreateFinetuneRecipe(c, model, kCpu, steps_per_epoch, world_size);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *std::move(r) : nullptr;
}

// The official code, written out.

// utils.adjust_learning_rate at fractional epoch e.
inline double OfficialLr(double e, const ExperimentConfig& c, double lr) {
  const double warmup = c.schedule().warmup_epochs(), epochs = c.train().epochs();
  const double min_lr = c.schedule().min_lr();
  if (e < warmup) return lr * e / warmup;
  return min_lr + (lr - min_lr) * 0.5 * (1.0 + std::cos(M_PI * (e - warmup) / (epochs - warmup)));
}

// utils.cosine_scheduler(base_value, final_value, epochs, niter_per_ep) (no warmup).
inline std::vector<double> OfficialCosineScheduler(double base_value, double final_value, int epochs,
                                            int niter_per_ep) {
  const int n = epochs * niter_per_ep;
  std::vector<double> schedule;
  for (int i = 0; i < n; ++i) {
    schedule.push_back(final_value +
                       0.5 * (base_value - final_value) * (1.0 + std::cos(M_PI * i / n)));
  }
  return schedule;
}

inline double TorchLr(torch::optim::Optimizer& opt, size_t group) {
  return opt.param_groups()[group].options().get_lr();
}

}  // namespace convnextv2::train::recipe_test

#endif  // CONVNEXTV2_TESTS_TRAIN_RECIPE_TEST_UTIL_H_
