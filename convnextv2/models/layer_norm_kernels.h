// CPU kernels of LayerNorm over the last dimension of a contiguous bfloat16 tensor with float32
// weight and bias (what autocast hands the block's LayerNorm): bf16 in and out, float32
// statistics and sums, cpu_kernels.h's row kernels (AVX-512 where the CPU has it). Internal to
// the models package: use LayerNorm.
#ifndef CONVNEXTV2_MODELS_LAYER_NORM_KERNELS_H_
#define CONVNEXTV2_MODELS_LAYER_NORM_KERNELS_H_

#include <ATen/core/Tensor.h>

#include <tuple>

namespace convnextv2::models::internal {

// CPU, bfloat16, contiguous x; float32 weight of x's last size.
bool LayerNormBf16Applies(const at::Tensor& x, const at::Tensor& weight);

// Returns y (x's shape, bf16) and the per-row mean and rstd (float32, x.numel() / C).
std::tuple<at::Tensor, at::Tensor, at::Tensor> LayerNormBf16ForwardCpu(const at::Tensor& x,
                                                                       const at::Tensor& weight,
                                                                       const at::Tensor& bias,
                                                                       double eps);

// Returns dx (bf16), dweight and dbias (float32). The sums over rows run in fixed blocks of
// rows, added in order: the result does not depend on the thread count.
std::tuple<at::Tensor, at::Tensor, at::Tensor> LayerNormBf16BackwardCpu(
    const at::Tensor& g, const at::Tensor& x, const at::Tensor& weight, const at::Tensor& mean,
    const at::Tensor& rstd);

}  // namespace convnextv2::models::internal

#endif  // CONVNEXTV2_MODELS_LAYER_NORM_KERNELS_H_
