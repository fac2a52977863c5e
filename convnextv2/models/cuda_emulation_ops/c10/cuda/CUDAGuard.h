// The CPU emulation's stand-in for libtorch's c10/cuda/CUDAGuard.h (see ../../README.md): one
// device, nothing to switch.
#ifndef CONVNEXTV2_MODELS_CUDA_EMULATION_OPS_C10_CUDA_CUDAGUARD_H_
#define CONVNEXTV2_MODELS_CUDA_EMULATION_OPS_C10_CUDA_CUDAGUARD_H_

#include <c10/core/Device.h>

namespace c10::cuda {
struct CUDAGuard {
  explicit CUDAGuard(c10::Device) {}
};
}  // namespace c10::cuda

#endif  // CONVNEXTV2_MODELS_CUDA_EMULATION_OPS_C10_CUDA_CUDAGUARD_H_
