#include "convnextv2/train/train_step.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <cmath>

namespace convnextv2::train {

double GradNorm(const std::vector<at::Tensor>& params) {
  // Squared norms summed per device, one host read per device (not per gradient).
  std::vector<at::Tensor> sums;
  for (const at::Tensor& p : params) {
    if (!p.grad().defined()) continue;
    const at::Tensor sq = p.grad().detach().to(at::kFloat).norm(2).square();
    bool merged = false;
    for (at::Tensor& s : sums) {
      if (s.device() == sq.device()) {
        s.add_(sq);
        merged = true;
        break;
      }
    }
    if (!merged) sums.push_back(sq.to(at::kDouble));
  }
  double total = 0;
  for (const at::Tensor& s : sums) total += s.item<double>();
  return std::sqrt(total);
}

double ClipGradNorm(const std::vector<at::Tensor>& params, double max_norm) {
  const double norm = GradNorm(params);
  const double coef = max_norm / (norm + 1e-6);
  if (coef < 1.0) {
    c10::NoGradGuard no_grad;
    for (const at::Tensor& p : params) {
      if (p.grad().defined()) p.grad().mul_(coef);
    }
  }
  return norm;
}

OptimizerStepper::OptimizerStepper(torch::optim::Optimizer* optimizer,
                                   std::vector<at::Tensor> params, StepperOptions options)
    : optimizer_(optimizer),
      params_(std::move(params)),
      options_(options),
      scaler_(options.scaler) {
  TORCH_CHECK(optimizer_ != nullptr, "OptimizerStepper: null optimizer");
  TORCH_CHECK(options_.update_freq >= 1, "OptimizerStepper: update_freq must be >= 1");
}

void OptimizerStepper::ZeroGrad() { optimizer_->zero_grad(); }

MicroStepResult OptimizerStepper::Backward(const at::Tensor& loss, int64_t micro_step) {
  at::Tensor scaled = loss / options_.update_freq;
  if (options_.use_scaler) scaled = scaler_.Scale(scaled);
  MicroStepResult result;
  result.boundary = (micro_step + 1) % options_.update_freq == 0;
  if (result.boundary && grad_sync_ != nullptr) grad_sync_->Arm();
  scaled.backward();
  if (!result.boundary) return result;
  if (grad_sync_ != nullptr) {
    result.error = grad_sync_->Finish();
    if (!result.error.ok()) return result;
  }
  bool finite = true;
  if (options_.use_scaler) finite = scaler_.Unscale(params_);
  if (finite) {
    result.grad_norm = options_.clip_grad > 0 ? ClipGradNorm(params_, options_.clip_grad)
                                              : GradNorm(params_);
    optimizer_->step();
    result.stepped = true;
  } else {
    result.grad_norm = std::numeric_limits<double>::infinity();
  }
  if (options_.use_scaler) scaler_.Update(!finite);
  optimizer_->zero_grad();
  return result;
}

}  // namespace convnextv2::train
