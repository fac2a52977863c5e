#include "convnextv2/engine/loss_scaler.h"

#include <ATen/ATen.h>

namespace convnextv2::engine {

LossScaler::LossScaler(LossScalerOptions options) : options_(options) {
  TORCH_CHECK(options_.init_scale > 0 && options_.growth_factor > 1 &&
                  options_.backoff_factor > 0 && options_.backoff_factor < 1 &&
                  options_.growth_interval > 0,
              "LossScaler: invalid options");
  state_.scale = options_.init_scale;
}

at::Tensor LossScaler::Scale(const at::Tensor& loss) const { return loss * state_.scale; }

bool LossScaler::Unscale(const std::vector<at::Tensor>& params) const {
  // One flag tensor per device would avoid host syncs on CUDA; a single sync per optimizer step
  // keeps this simple and identical on every device.
  const double inv_scale = 1.0 / state_.scale;
  bool finite = true;
  for (const at::Tensor& p : params) {
    at::Tensor g = p.grad();
    if (!g.defined()) continue;
    if (finite && !at::isfinite(g).all().item<bool>()) finite = false;
    g.mul_(inv_scale);
  }
  return finite;
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

}  // namespace convnextv2::engine
