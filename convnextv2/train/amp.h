// Autocast (automatic mixed precision) for a scope, on CPU (bfloat16) or CUDA (float16/bfloat16).
//
//   {
//     AutocastGuard autocast(device.type(), AmpDtype(config, device), config.train().use_amp());
//     logits = model->forward(images);    // convolutions and matmuls run in lower precision
//   }                                      // previous autocast state restored, cast cache cleared
//
// libtorch 1.13's C++ switches (at::autocast::set_cpu_enabled / set_autocast_cpu_dtype and the
// CUDA ones) or libtorch >= 2.4's per-device ones, whichever this build has.
#ifndef CONVNEXTV2_TRAIN_AMP_H_
#define CONVNEXTV2_TRAIN_AMP_H_

#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include "absl/status/statusor.h"
#include "convnextv2/proto/experiment.pb.h"

namespace convnextv2::train {

// The autocast dtype of a run: train.amp_dtype when set, else bfloat16 on CPU (the only one CPU
// autocast supports) and float16 on CUDA (the official torch.cuda.amp default).
absl::StatusOr<c10::ScalarType> AmpDtype(const ExperimentConfig& config, c10::Device device);

class AutocastGuard {
 public:
  AutocastGuard(c10::DeviceType device, c10::ScalarType dtype, bool enabled);
  ~AutocastGuard();
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  c10::DeviceType device_;
  bool enabled_;
  bool prev_enabled_ = false;
  c10::ScalarType prev_dtype_ = c10::ScalarType::Float;
};

}  // namespace convnextv2::train

#endif  // CONVNEXTV2_TRAIN_AMP_H_
