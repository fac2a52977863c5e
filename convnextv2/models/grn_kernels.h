// CPU kernels of the fused GRN (float32 or bfloat16, contiguous (N, H, W, C)); see layers.cc for
// the math and cpu_kernels.h for the per-sample kernels (AVX-512 where the CPU has it). Statistics,
// gamma, beta and their gradients are float32; y and dx have x's dtype. Internal to the models
// package: use GRN / GrnFused.
#ifndef CONVNEXTV2_MODELS_GRN_KERNELS_H_
#define CONVNEXTV2_MODELS_GRN_KERNELS_H_

#include <ATen/core/Tensor.h>

#include <tuple>

namespace convnextv2::models::internal {

// Whether the kernels take x: CPU, 4-d, contiguous, float32 or bfloat16.
bool GrnCpuKernelApplies(const at::Tensor& x);

// Returns y and what backward needs: G (N,1,1,C), m + eps (N,1,1,1), Nx (N,1,1,C),
// s = 1 + gamma * Nx (N,1,1,C).
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> GrnForwardCpu(
    const at::Tensor& x, const at::Tensor& gamma, const at::Tensor& beta, double eps);

// Returns dx, dgamma (1,1,1,C), dbeta (1,1,1,C).
std::tuple<at::Tensor, at::Tensor, at::Tensor> GrnBackwardCpu(
    const at::Tensor& g, const at::Tensor& x, const at::Tensor& gamma, const at::Tensor& g_norm,
    const at::Tensor& denom, const at::Tensor& nx, const at::Tensor& scale);

// GRN of u = GELU(h + bias) in one node (the CUDA path's GeluGrnCuda on the CPU): returns y, u
// and the statistics of u as GrnForwardCpu (y undefined and not computed when !with_y). h is
// (N, H, W, C) contiguous float32 or bfloat16; bias (C), gamma, beta float32. u and y are new
// tensors of h's shape and dtype.
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>
GeluGrnForwardCpu(const at::Tensor& h, const at::Tensor& bias, const at::Tensor& gamma,
                  const at::Tensor& beta, double eps, bool with_y = true);

// Returns dh, dbias (C), dgamma (1,1,1,C), dbeta (1,1,1,C).
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> GeluGrnBackwardCpu(
    const at::Tensor& g, const at::Tensor& h, const at::Tensor& u, const at::Tensor& bias,
    const at::Tensor& gamma, const at::Tensor& g_norm, const at::Tensor& denom,
    const at::Tensor& nx, const at::Tensor& scale);

}  // namespace convnextv2::models::internal

#endif  // CONVNEXTV2_MODELS_GRN_KERNELS_H_
