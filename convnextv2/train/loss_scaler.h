// Dynamic loss scaling for mixed-precision training (torch.cuda.amp.GradScaler's semantics; the
// C++ API of libtorch has no GradScaler).
//
//   LossScaler scaler;                                  // scale 2^16, x2 after 2000 clean steps
//   scaler.Scale(loss).backward();                      // gradients are scaled by scale()
//   bool finite = scaler.Unscale(params);               // divides them back, finds inf/NaN
//   if (finite) optimizer.step();                       // a non-finite step is skipped
//   scaler.Update(!finite);                             // x0.5 on inf/NaN, x2 every 2000 clean
//   LossScalerState s = scaler.state();                 // what a checkpoint saves
//
// The state is a plain struct so that checkpoints can store it without libtorch types.
#ifndef CONVNEXTV2_TRAIN_LOSS_SCALER_H_
#define CONVNEXTV2_TRAIN_LOSS_SCALER_H_

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

namespace convnextv2::train {

struct LossScalerOptions {
  double init_scale = 65536.0;  // 2^16
  double growth_factor = 2.0;
  double backoff_factor = 0.5;
  int64_t growth_interval = 2000;
};

// What changes while training; restoring it resumes the scaler exactly.
struct LossScalerState {
  double scale = 65536.0;
  int64_t growth_tracker = 0;  // consecutive steps without inf/NaN since the last change
};

class LossScaler {
 public:
  explicit LossScaler(LossScalerOptions options = {});

  // loss * scale().
  at::Tensor Scale(const at::Tensor& loss) const;

  // Multiplies the defined gradients of `params` by 1 / scale() in place; returns false when any
  // of them holds inf or NaN (checked before unscaling, as GradScaler does).
  bool Unscale(const std::vector<at::Tensor>& params) const;

  // Ends a step: backs off on `found_inf`, otherwise grows after growth_interval clean steps.
  void Update(bool found_inf);

  double scale() const { return state_.scale; }
  const LossScalerState& state() const { return state_; }
  void set_state(const LossScalerState& state) { state_ = state; }
  const LossScalerOptions& options() const { return options_; }

 private:
  LossScalerOptions options_;
  LossScalerState state_;
};

}  // namespace convnextv2::train

#endif  // CONVNEXTV2_TRAIN_LOSS_SCALER_H_
