// The CPU emulation's stand-in for libtorch's c10/cuda/CUDAException.h (see ../../README.md):
// C10_CUDA_CHECK throws, as the real one does, when an emulated launch reports an error.
#ifndef CONVNEXTV2_MODELS_CUDA_EMULATION_OPS_C10_CUDA_CUDAEXCEPTION_H_
#define CONVNEXTV2_MODELS_CUDA_EMULATION_OPS_C10_CUDA_CUDAEXCEPTION_H_

#include <c10/util/Exception.h>
#include <cuda_runtime_api.h>

#define C10_CUDA_CHECK(expr)                                                               \
  do {                                                                                     \
    const cudaError_t convnextv2_emulated_error = (expr);                                  \
    TORCH_CHECK(convnextv2_emulated_error == cudaSuccess, "emulated CUDA error ",          \
                static_cast<int>(convnextv2_emulated_error));                              \
  } while (0)

#endif  // CONVNEXTV2_MODELS_CUDA_EMULATION_OPS_C10_CUDA_CUDAEXCEPTION_H_
