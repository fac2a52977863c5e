// Autograd nodes over the CUDA kernels of grn_cuda.cu, for CUDA tensors; the plain ATen path
// stays the reference (tests/models/cuda_ops_test.cc holds them equal). Built with
// --config=cuda only: kCudaKernels says whether this binary has them, and callers test it
// before calling anything here. Internal to the models package: the modules in layers.h and
// convnextv2.h pick these automatically.
#ifndef CONVNEXTV2_MODELS_CUDA_OPS_H_
#define CONVNEXTV2_MODELS_CUDA_OPS_H_

#include <ATen/core/Tensor.h>

namespace convnextv2::models::internal {

#ifdef CONVNEXTV2_WITH_CUDA_KERNELS
inline constexpr bool kCudaKernels = true;
#else
inline constexpr bool kCudaKernels = false;
#endif

// True for a CUDA float32/float16/bfloat16 (N, H, W, C) tensor (any strides: it is made
// contiguous) and kCudaKernels.
bool GrnCudaApplies(const at::Tensor& h);

// GRN(gelu(h + bias)) when bias is defined, else GRN(h); gamma and beta (1, 1, 1, C). Output and
// dh in h's dtype; sums and parameter gradients in float32. Needs GrnCudaApplies(h).
at::Tensor GeluGrnCuda(const at::Tensor& h, const at::Tensor& bias, const at::Tensor& gamma,
                       const at::Tensor& beta, double eps);

// residual + keep[n] * (z + bias).permute(0, 3, 1, 2): the end of a ConvNeXt V2 block, with
// residual (N, C, H, W) channels-last and z (N, H, W, C) contiguous; keep (N) the drop-path
// factors (0 or 1 / (1 - p)) or undefined. Needs ResidualCudaApplies.
bool ResidualCudaApplies(const at::Tensor& residual, const at::Tensor& z);
at::Tensor BiasDropPathResidualCuda(const at::Tensor& residual, const at::Tensor& z,
                                    const at::Tensor& bias, const at::Tensor& keep);

}  // namespace convnextv2::models::internal

#endif  // CONVNEXTV2_MODELS_CUDA_OPS_H_
