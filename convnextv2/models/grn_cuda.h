// CUDA kernels of the ConvNeXt V2 block (grn_cuda.cu, compiled by nvcc under --config=cuda):
// GRN forward and backward on channels-last (N, H*W, C) activations in float32, float16 or
// bfloat16, optionally with the preceding bias + GELU folded in, and the block's closing
// bias + drop-path + residual as one pass. Sums of squares, dot products and parameter gradients
// accumulate in float32 whatever the activation dtype (a channel's sum of squares over 56x56
// positions passes float16's 65504 easily). No libtorch here: cuda_ops.cc wraps these in
// autograd nodes. Internal to the models package.
//
// Math (as layers.cc): a = gelu(h + b1) (or a = h), G = ||a||_{HW}, d = mean_C G + eps,
// Nx = G / d, s = 1 + gamma * Nx, y = a * s + beta. Backward, g = dL/dy, P = sum_{HW} g * a:
// dbeta = sum g, dgamma = sum_N P * Nx, t = (gamma P / d - sum_C(gamma P G) / (C d^2)) / G,
// da = g * s + a * t, dh = da * gelu'(h + b1), db1 = sum dh.
#ifndef CONVNEXTV2_MODELS_GRN_CUDA_H_
#define CONVNEXTV2_MODELS_GRN_CUDA_H_

#include <cuda_runtime_api.h>

#include <cstdint>

namespace convnextv2::models::cuda {

enum class Dtype { kFloat32, kFloat16, kBFloat16 };

struct GrnShape {
  int64_t n = 0;   // samples
  int64_t hw = 0;  // positions per sample
  int64_t c = 0;   // channels (contiguous)
};

// Forward. `bias` null: a = h (plain GRN); else a = gelu(h + bias). Workspace and outputs are
// float32 device buffers: sumsq (n*c, zeroed by the caller), g_norm (n*c), denom (n),
// nx (n*c), scale (n*c). y has h's dtype and shape.
cudaError_t GrnForward(Dtype dtype, const void* h, const float* bias, const float* gamma,
                       const float* beta, float eps, GrnShape shape, void* y, float* sumsq,
                       float* g_norm, float* denom, float* nx, float* scale,
                       cudaStream_t stream);

// Backward. grad and dh have h's dtype. Float32 buffers: p (n*c, zeroed), dbeta (c, zeroed),
// dgamma_n (n*c, per-sample terms the caller sums over n), t (n*c), dbias (c, zeroed; only
// when bias is not null).
cudaError_t GrnBackward(Dtype dtype, const void* grad, const void* h, const float* bias,
                        const float* gamma, const float* g_norm, const float* denom,
                        const float* nx, const float* scale, GrnShape shape, void* dh, float* p,
                        float* dbeta, float* dgamma_n, float* t, float* dbias,
                        cudaStream_t stream);

// out = residual + keep[n] * (z + bias[c]) over (N, H*W, C) (keep null: 1), the block's last
// step (drop path on the branch). residual and out share a dtype (float32, or z's); z has
// dtype `z_dtype`. Returns cudaErrorInvalidValue for a dtype pair it does not handle.
cudaError_t BiasDropPathResidual(Dtype residual_dtype, Dtype z_dtype, const void* residual,
                                 const void* z, const float* bias, const float* keep,
                                 GrnShape shape, void* out, cudaStream_t stream);

}  // namespace convnextv2::models::cuda

#endif  // CONVNEXTV2_MODELS_GRN_CUDA_H_
