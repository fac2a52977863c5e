#include "convnextv2/train/recipe.h"

#include <glog/logging.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "convnextv2/config/config.h"
#include "convnextv2/optim/optimizer.h"
#include "convnextv2/train/data_parallel.h"
#include "convnextv2/util/status_macros.h"

namespace convnextv2::train {

TrainingRecipe::TrainingRecipe(const ExperimentConfig& config, int64_t steps_per_epoch, double lr,
                               optim::LrSchedule lr_schedule)
    : lr_(lr),
      steps_per_epoch_(steps_per_epoch),
      lr_schedule_(std::move(lr_schedule)),
      wd_schedule_(optim::WeightDecaySchedule::FromConfig(
          config, steps_per_epoch / std::max(config.train().update_freq(), 1))),
      schedule_wd_(config.optim().has_weight_decay_end()),
      weight_decay_now_(config.optim().weight_decay()) {}

absl::StatusOr<std::unique_ptr<TrainingRecipe>> TrainingRecipe::Create(
    const ExperimentConfig& config, std::shared_ptr<torch::nn::Module> model, c10::Device device,
    int64_t steps_per_epoch, int world_size, RecipeOptions options) {
  const OptimConfig& o = config.optim();
  const int update_freq = config.train().update_freq();
  if (steps_per_epoch < update_freq) {
    return absl::InvalidArgumentError(absl::StrCat(
        "train.update_freq ", update_freq, " is more than the ", steps_per_epoch,
        " batches of an epoch: no optimizer step would happen"));
  }
  if (!options.groups) {
    return absl::InvalidArgumentError("TrainingRecipe::Create: no parameter groups given");
  }
  const double lr = config::EffectiveLr(config, world_size);
  CONVNEXTV2_ASSIGN_OR_RETURN(optim::LrSchedule lr_schedule,
                              optim::LrSchedule::FromConfig(config, lr, steps_per_epoch));
  std::unique_ptr<TrainingRecipe> r(
      new TrainingRecipe(config, steps_per_epoch, lr, std::move(lr_schedule)));
  r->model_ = std::move(model);
  r->device_ = device;
  r->use_amp_ = config.train().use_amp();
  if (r->use_amp_) {
    CONVNEXTV2_ASSIGN_OR_RETURN(r->amp_dtype_, AmpDtype(config, device));
  }

  // What main_finetune.py and main_pretrain.py print before training.
  const int64_t eff_batch =
      static_cast<int64_t>(config.train().batch_size()) * update_freq * world_size;
  LOG(INFO) << absl::StrFormat(
      "base lr: %.2e, actual lr: %.2e, accumulate grad iterations: %d, effective batch size: %d",
      lr * 256.0 / eff_batch, lr, update_freq, eff_batch);

  CONVNEXTV2_ASSIGN_OR_RETURN(r->groups_, options.groups());
  CONVNEXTV2_ASSIGN_OR_RETURN(r->optimizer_, optim::CreateOptimizer(config, r->groups_, lr));
  std::vector<at::Tensor> params;
  for (const optim::ParamGroup& g : r->groups_) {
    params.insert(params.end(), g.params.begin(), g.params.end());
  }
  StepperOptions stepper;
  stepper.update_freq = update_freq;
  stepper.clip_grad = o.has_clip_grad() ? o.clip_grad() : 0.0;
  stepper.use_scaler = r->use_amp_;
  r->stepper_ = std::make_unique<OptimizerStepper>(r->optimizer_.get(), std::move(params), stepper);
  if (r->use_amp_) {
    LOG(INFO) << "mixed precision: autocast to " << c10::toString(r->amp_dtype_)
              << ", dynamic loss scale " << r->scaler().scale();
  }

  if (options.allow_ema && config.ema().model_ema()) {
    r->ema_ = std::make_unique<ModelEma>(r->model_, config.ema().model_ema_decay(),
                                         config.ema().model_ema_force_cpu());
    r->ema_on_cpu_ = config.ema().model_ema_force_cpu();
    LOG(INFO) << absl::StrFormat("Using EMA with decay = %.8f", config.ema().model_ema_decay());
  }
  return r;
}

void TrainingRecipe::EnableDataParallel(std::shared_ptr<dist::Communicator> comm,
                                        const DistributedConfig& config) {
  grad_sync_ = SyncGradients(std::move(comm), *model_, config, stepper_.get());
}

absl::Status TrainingRecipe::ResetEmaFromModel() {
  if (!ema_) return absl::OkStatus();
  torch::OrderedDict<std::string, at::Tensor> state;
  for (const auto& item : model_->named_parameters()) state.insert(item.key(), item.value());
  for (const auto& item : model_->named_buffers()) state.insert(item.key(), item.value());
  return ema_->LoadStateDict(state);
}

void TrainingRecipe::StartEpoch() { stepper_->ZeroGrad(); }

void TrainingRecipe::BeginMicroBatch(int epoch, int64_t it) {
  if (it % update_freq() != 0) return;
  optim::SetLearningRates(*optimizer_, groups_,
                          lr_schedule_.At(static_cast<int64_t>(epoch) * steps_per_epoch_ + it));
  if (schedule_wd_) {
    const int64_t per_epoch = steps_per_epoch_ / update_freq();
    weight_decay_now_ = wd_schedule_.At(epoch * per_epoch + it / update_freq());
    optim::SetWeightDecay(*optimizer_, groups_, weight_decay_now_);
  }
}

MicroStepResult TrainingRecipe::Backward(const at::Tensor& loss, int64_t it) {
  const MicroStepResult r = stepper_->Backward(loss, it);
  // As the official loop: the average follows every accumulation boundary, skipped or not.
  if (r.boundary && ema_) ema_->Update(*model_);
  return r;
}

double TrainingRecipe::max_lr() const { return optim::LearningRateRange(*optimizer_).second; }
double TrainingRecipe::min_lr() const { return optim::LearningRateRange(*optimizer_).first; }

std::shared_ptr<torch::nn::Module> TrainingRecipe::ema_model() const {
  return ema_ ? ema_->module() : nullptr;
}

}  // namespace convnextv2::train
