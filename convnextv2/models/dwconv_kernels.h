// CPU kernels of the fused depthwise convolution (float32, channels-last (N, C, H, W)
// activations, stride 1, padding k / 2, odd square kernels); see DepthwiseConvKernel in layers.h.
// Internal to the models package.
#ifndef CONVNEXTV2_MODELS_DWCONV_KERNELS_H_
#define CONVNEXTV2_MODELS_DWCONV_KERNELS_H_

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <tuple>

namespace convnextv2::models::internal {

// Maps of at most this many pixels take the own loops for the forward pass and the input
// gradient; larger ones at::conv2d (libtorch's oneDNN kernel, 2-5x faster than the own loops
// there; the input gradient is the forward convolution of g with the taps mirrored). The weight
// and bias gradients always come from the own loops, which are 2-10x faster than libtorch's.
inline constexpr int64_t kDwOwnLoopsMaxPixels = 16;

// `weight` (C, 1, k, k); `taps` the same as (k, k, C) contiguous. Returns y (N, C, H, W)
// channels-last.
at::Tensor DwConvForwardCpu(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& taps,
                            const at::Tensor& bias);

// Returns dx (channels-last), dtaps (k, k, C) and dbias (C). Sums over the batch run per sample
// first and then in sample order, so the result does not depend on the thread count.
std::tuple<at::Tensor, at::Tensor, at::Tensor> DwConvBackwardCpu(const at::Tensor& g,
                                                                 const at::Tensor& x,
                                                                 const at::Tensor& weight,
                                                                 const at::Tensor& taps);

}  // namespace convnextv2::models::internal

#endif  // CONVNEXTV2_MODELS_DWCONV_KERNELS_H_
