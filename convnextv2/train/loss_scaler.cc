#include "convnextv2/train/loss_scaler.h"

#include <ATen/ATen.h>

namespace convnextv2::train {

LossScaler::LossScaler(LossScalerOptions options) : options_(options) {
  TORCH_CHECK(options_.init_scale > 0 && options_.growth_factor > 1 &&
                  options_.backoff_factor > 0 && options_.backoff_factor < 1 &&
                  options_.growth_interval > 0,
              "LossScaler: invalid options");
  state_.scale = options_.init_scale;
}

at::Tensor LossScaler::Scale(const at::Tensor& loss) const { return loss * state_.scale; }

bool LossScaler::Unscale(const std::vector<at::Tensor>& params) const {
  // One "found non-finite" flag per device, read once at the end: a host sync per gradient would
  // stall a CUDA stream hundreds of times per step.
  const double inv_scale = 1.0 / state_.scale;
  std::vector<at::Tensor> found;
  for (const at::Tensor& p : params) {
    at::Tensor g = p.grad();
    if (!g.defined()) continue;
    const at::Tensor bad = at::isfinite(g).all().logical_not();
    bool merged = false;
    for (at::Tensor& f : found) {
      if (f.device() == bad.device()) {
        f.logical_or_(bad);
        merged = true;
        break;
      }
    }
    if (!merged) found.push_back(bad.clone());
    g.mul_(inv_scale);
  }
  for (const at::Tensor& f : found) {
    if (f.item<bool>()) return false;
  }
  return true;
}

void LossScaler::Update(bool found_inf) {
  if (found_inf) {
    state_.scale *= options_.backoff_factor;
    state_.growth_tracker = 0;
    return;
  }
  if (++state_.growth_tracker >= options_.growth_interval) {
    state_.scale *= options_.growth_factor;
    state_.growth_tracker = 0;
  }
}

}  // namespace convnextv2::train
