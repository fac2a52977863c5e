// The CPU emulation's stand-in for libtorch's ATen/cuda/CUDAContext.h, for cuda_ops.cc compiled
// by the testonly :cuda_ops_emulated (see ../../README.md): the emulated kernels take no
// stream.
#ifndef CONVNEXTV2_MODELS_CUDA_EMULATION_OPS_ATEN_CUDA_CUDACONTEXT_H_
#define CONVNEXTV2_MODELS_CUDA_EMULATION_OPS_ATEN_CUDA_CUDACONTEXT_H_

#include <cuda_runtime_api.h>

namespace at::cuda {
inline cudaStream_t getCurrentCUDAStream() { return nullptr; }
}  // namespace at::cuda

#endif  // CONVNEXTV2_MODELS_CUDA_EMULATION_OPS_ATEN_CUDA_CUDACONTEXT_H_
