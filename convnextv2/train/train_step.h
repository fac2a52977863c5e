// One optimizer step spread over update_freq micro-batches: gradient accumulation, loss scaling,
// global-norm clipping and the step itself, as the official train_one_epoch does them.
//
//   OptimizerStepper stepper(optimizer.get(), trainable_params,
//                            {.update_freq = 4, .clip_grad = 1.0, .use_scaler = true});
//   stepper.ZeroGrad();                                     // at the start of every epoch
//   for (int64_t it = 0; it < n; ++it) {
//     at::Tensor loss = ...;                                // mean loss of micro-batch `it`
//     MicroStepResult r = stepper.Backward(loss, it);       // backward of loss / update_freq
//     if (r.boundary) ema.Update(*model);                   // r.stepped: false if skipped (inf)
//   }
//
// Gradients of update_freq micro-batches of n images add up to those of one batch of
// update_freq * n (each loss is divided by update_freq). At the last micro-batch of a group the
// gradients are unscaled (with the scaler), their global L2 norm is taken, clipped to clip_grad
// when set, and the optimizer steps unless the scaler found inf/NaN (then the step is skipped
// and the scale backs off); gradients are then zeroed.
#ifndef CONVNEXTV2_TRAIN_TRAIN_STEP_H_
#define CONVNEXTV2_TRAIN_TRAIN_STEP_H_

#include <ATen/core/Tensor.h>
#include <torch/optim/optimizer.h>

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "convnextv2/dist/grad_sync.h"
#include "convnextv2/train/loss_scaler.h"

namespace convnextv2::train {

// Global L2 norm of the defined gradients of `params` (0 when there are none).
double GradNorm(const std::vector<at::Tensor>& params);

// Scales the gradients so that their global norm is at most max_norm (coefficient
// max_norm / (norm + 1e-6), as torch.nn.utils.clip_grad_norm_); returns the norm before clipping.
double ClipGradNorm(const std::vector<at::Tensor>& params, double max_norm);

struct StepperOptions {
  int update_freq = 1;
  double clip_grad = 0;     // <= 0: no clipping
  bool use_scaler = false;  // dynamic loss scaling (use_amp)
  LossScalerOptions scaler;
};

struct MicroStepResult {
  bool boundary = false;  // this micro-batch ended an accumulation group
  bool stepped = false;   // ... and the optimizer stepped (false when the scaler skipped it)
  double grad_norm = 0;   // at a boundary: the unscaled gradient norm before clipping
  absl::Status error;     // the gradient all-reduce failed (a rank died or timed out)
};

class OptimizerStepper {
 public:
  OptimizerStepper(torch::optim::Optimizer* optimizer, std::vector<at::Tensor> params,
                   StepperOptions options);

  void ZeroGrad();

  // Backpropagates loss / update_freq (times the loss scale with the scaler); `micro_step`
  // counts micro-batches from the start of the epoch.
  MicroStepResult Backward(const at::Tensor& loss, int64_t micro_step);

  LossScaler& scaler() { return scaler_; }
  // Data-parallel runs: gradients are averaged over ranks at the last micro-batch of each group
  // (and only then), before unscaling and clipping, so every rank steps identically.
  void set_grad_sync(dist::GradientSync* sync) { grad_sync_ = sync; }
  const StepperOptions& options() const { return options_; }

 private:
  torch::optim::Optimizer* optimizer_;
  std::vector<at::Tensor> params_;
  StepperOptions options_;
  LossScaler scaler_;
  dist::GradientSync* grad_sync_ = nullptr;
};

}  // namespace convnextv2::train

#endif  // CONVNEXTV2_TRAIN_TRAIN_STEP_H_
