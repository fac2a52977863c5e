// The libtorch API differences between the two libtorches this project builds against: Debian's
// 1.13 (the default CPU build) and PyTorch 2.11 (--config=cuda, tools/cuda/setup.sh). Code calls
// these instead of testing TORCH_VERSION itself, so the version tests live here only.
//
//   compat::SetAutocastEnabled(c10::DeviceType::CUDA, true);
//   compat::SetAutocastDtype(c10::DeviceType::CUDA, at::kBFloat16);
#ifndef CONVNEXTV2_UTIL_TORCH_COMPAT_H_
#define CONVNEXTV2_UTIL_TORCH_COMPAT_H_

#include <ATen/autocast_mode.h>
#include <c10/core/DeviceType.h>
#include <c10/core/ScalarType.h>
#include <torch/version.h>

namespace convnextv2::compat {

// Autocast switches per device type. 2.4 made them take a device type (the per-device
// functions of 1.13, is_cpu_enabled / set_autocast_gpu_dtype ..., are deprecated there).
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
inline bool AutocastEnabled(c10::DeviceType d) { return at::autocast::is_autocast_enabled(d); }
inline void SetAutocastEnabled(c10::DeviceType d, bool on) {
  at::autocast::set_autocast_enabled(d, on);
}
inline c10::ScalarType AutocastDtype(c10::DeviceType d) {
  return at::autocast::get_autocast_dtype(d);
}
inline void SetAutocastDtype(c10::DeviceType d, c10::ScalarType t) {
  at::autocast::set_autocast_dtype(d, t);
}
#else
inline bool AutocastEnabled(c10::DeviceType d) {
  return d == c10::DeviceType::CPU ? at::autocast::is_cpu_enabled() : at::autocast::is_enabled();
}
inline void SetAutocastEnabled(c10::DeviceType d, bool on) {
  d == c10::DeviceType::CPU ? at::autocast::set_cpu_enabled(on) : at::autocast::set_enabled(on);
}
inline c10::ScalarType AutocastDtype(c10::DeviceType d) {
  return d == c10::DeviceType::CPU ? at::autocast::get_autocast_cpu_dtype()
                                   : at::autocast::get_autocast_gpu_dtype();
}
inline void SetAutocastDtype(c10::DeviceType d, c10::ScalarType t) {
  d == c10::DeviceType::CPU ? at::autocast::set_autocast_cpu_dtype(t)
                            : at::autocast::set_autocast_gpu_dtype(t);
}
#endif

}  // namespace convnextv2::compat

#endif  // CONVNEXTV2_UTIL_TORCH_COMPAT_H_
