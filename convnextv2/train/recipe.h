// The training recipe of a run, assembled from its config: the parameter groups a task supplies
// (optim::FinetuneParamGroups with layer decay, optim::PretrainParamGroups), the optimizer,
// per-step lr and weight-decay schedules, accumulation/clipping/loss scaling, autocast and the
// EMA of the weights. The training loop (loop.h) calls it around each micro-batch; fine-tuning
// and FCMAE pre-training use the same object.
//
//   auto recipe = *TrainingRecipe::Create(config, model, device, steps_per_epoch, world_size);
//   recipe->StartEpoch();
//   for (int64_t it = 0; it < steps_per_epoch; ++it) {
//     recipe->BeginMicroBatch(epoch, it);             // lr / wd of this optimizer step
//     at::Tensor loss;
//     { AutocastGuard a = recipe->Autocast(); loss = CrossEntropy(model->forward(x), y, s); }
//     MicroStepResult r = recipe->Backward(loss, it); // EMA updated after each optimizer step
//   }
//
// Semantics of the official main_finetune.py / engine_finetune.py: lr = blr * batch_size *
// update_freq * world_size / 256 unless lr is set; the lr is set at the first micro-batch of
// each accumulation group from the fractional epoch it / steps_per_epoch + epoch, each group at
// lr * lr_scale; the weight decay (when weight_decay_end is set) follows a cosine over optimizer
// steps; gradients are zeroed at the start of each epoch.
#ifndef CONVNEXTV2_TRAIN_RECIPE_H_
#define CONVNEXTV2_TRAIN_RECIPE_H_

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>
#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>

#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "convnextv2/dist/grad_sync.h"
#include "convnextv2/dist/process_group.h"
#include "convnextv2/optim/param_groups.h"
#include "convnextv2/optim/schedule.h"
#include "convnextv2/proto/experiment.pb.h"
#include "convnextv2/train/amp.h"
#include "convnextv2/train/ema.h"
#include "convnextv2/train/train_step.h"

namespace convnextv2::train {

// What a task chooses about its recipe; the rest comes from the config.
struct RecipeOptions {
  // The optimizer's parameter groups, built after the lr lines are logged (e.g.
  // optim::FinetuneParamGroups, optim::PretrainParamGroups); required: Create rejects null.
  std::function<absl::StatusOr<std::vector<optim::ParamGroup>>()> groups;
  // ema.model_ema is honoured (pre-training has no EMA: main_pretrain.py keeps none).
  bool allow_ema = true;
};

class TrainingRecipe {
 public:
  // Any model, with the task's parameter groups (options.groups). Logs what the official script
  // prints at start (base and actual lr, accumulation, effective batch size, assigned layer-decay
  // values, the param group table). steps_per_epoch counts micro-batches (loader batches); it
  // must be >= update_freq.
  static absl::StatusOr<std::unique_ptr<TrainingRecipe>> Create(
      const ExperimentConfig& config, std::shared_ptr<torch::nn::Module> model,
      c10::Device device, int64_t steps_per_epoch, int world_size, RecipeOptions options);

  // Data-parallel: gradients are averaged over `comm`'s ranks (SyncGradients in
  // data_parallel.h), overlapped with backward, at the last micro-batch of each group.
  void EnableDataParallel(std::shared_ptr<dist::Communicator> comm,
                          const DistributedConfig& config);
  // Restarts the EMA from the model's current weights (after loading pre-trained weights, as
  // the official script creates its EMA only then).
  absl::Status ResetEmaFromModel();

  void StartEpoch();
  // Sets lr and weight decay when `it` starts an accumulation group.
  void BeginMicroBatch(int epoch, int64_t it);
  AutocastGuard Autocast() const { return AutocastGuard(device_.type(), amp_dtype_, use_amp_); }
  // Backward of one micro-batch's mean loss; at a group's end: step (or skip), then EMA update.
  MicroStepResult Backward(const at::Tensor& loss, int64_t it);

  double lr() const { return lr_; }  // the run's peak lr (before schedules)
  bool use_amp() const { return use_amp_; }
  int update_freq() const { return stepper_->options().update_freq; }
  // For the log: largest and smallest group lr now, and the current weight decay.
  double max_lr() const;
  double min_lr() const;
  double weight_decay() const { return weight_decay_now_; }

  torch::optim::Optimizer& optimizer() { return *optimizer_; }
  const std::vector<optim::ParamGroup>& groups() const { return groups_; }
  LossScaler& scaler() { return stepper_->scaler(); }
  ModelEma* ema() { return ema_.get(); }  // null without model_ema
  // The EMA model for evaluation, of the trained model's class (null without model_ema), and
  // where it lives.
  std::shared_ptr<torch::nn::Module> ema_model() const;
  c10::Device ema_device() const { return ema_on_cpu_ ? c10::Device(c10::kCPU) : device_; }

 private:
  TrainingRecipe(const ExperimentConfig& config, int64_t steps_per_epoch, double lr,
                 optim::LrSchedule lr_schedule);

  std::shared_ptr<torch::nn::Module> model_;
  c10::Device device_{c10::kCPU};
  bool use_amp_ = false;
  c10::ScalarType amp_dtype_ = c10::ScalarType::BFloat16;
  double lr_;
  int64_t steps_per_epoch_;
  optim::LrSchedule lr_schedule_;
  optim::WeightDecaySchedule wd_schedule_;
  bool schedule_wd_ = false;
  double weight_decay_now_ = 0;
  std::vector<optim::ParamGroup> groups_;
  std::unique_ptr<torch::optim::Optimizer> optimizer_;
  std::unique_ptr<OptimizerStepper> stepper_;
  std::unique_ptr<ModelEma> ema_;
  std::unique_ptr<dist::GradientSync> grad_sync_;
  bool ema_on_cpu_ = false;
};

}  // namespace convnextv2::train

#endif  // CONVNEXTV2_TRAIN_RECIPE_H_
