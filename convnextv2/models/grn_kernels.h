// CPU kernels of the fused GRN (float32, contiguous (N, H, W, C)); see layers.cc for the math.
// Internal to the models package: use GRN / GrnFused.
#ifndef CONVNEXTV2_MODELS_GRN_KERNELS_H_
#define CONVNEXTV2_MODELS_GRN_KERNELS_H_

#include <ATen/core/Tensor.h>

#include <tuple>

namespace convnextv2::models::internal {

// Returns y and what backward needs: G (N,1,1,C), m + eps (N,1,1,1), Nx (N,1,1,C),
// s = 1 + gamma * Nx (N,1,1,C).
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> GrnForwardCpu(
    const at::Tensor& x, const at::Tensor& gamma, const at::Tensor& beta, double eps);

// Returns dx, dgamma (1,1,1,C), dbeta (1,1,1,C).
std::tuple<at::Tensor, at::Tensor, at::Tensor> GrnBackwardCpu(
    const at::Tensor& g, const at::Tensor& x, const at::Tensor& gamma, const at::Tensor& g_norm,
    const at::Tensor& denom, const at::Tensor& nx, const at::Tensor& scale);

}  // namespace convnextv2::models::internal

#endif  // CONVNEXTV2_MODELS_GRN_KERNELS_H_
