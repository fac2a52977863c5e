// CPU kernels of the fused depthwise convolution (float32, channels-last (N, C, H, W)
// activations, stride 1, padding k / 2, odd square kernels); see DepthwiseConvKernel in layers.h.
// Internal to the models package.
#ifndef CONVNEXTV2_MODELS_DWCONV_KERNELS_H_
#define CONVNEXTV2_MODELS_DWCONV_KERNELS_H_

#include <ATen/core/Tensor.h>

#include <tuple>

namespace convnextv2::models::internal {

// `taps` is the weight as (k, k, C) contiguous. Returns y (N, C, H, W) channels-last.
at::Tensor DwConvForwardCpu(const at::Tensor& x, const at::Tensor& taps, const at::Tensor& bias);

// Returns dx (channels-last), dtaps (k, k, C) and dbias (C). Sums over the batch run per sample
// first and then in sample order, so the result does not depend on the thread count.
std::tuple<at::Tensor, at::Tensor, at::Tensor> DwConvBackwardCpu(const at::Tensor& g,
                                                                 const at::Tensor& x,
                                                                 const at::Tensor& taps);

}  // namespace convnextv2::models::internal

#endif  // CONVNEXTV2_MODELS_DWCONV_KERNELS_H_
