// ConvNeXt V2 (Woo et al., 2023) with the official module and parameter names.
//
//   ConvNeXtV2 model(ConvNeXtV2Options().depths({2, 2, 6, 2}).dims({40, 80, 160, 320})
//                        .num_classes(10));
//   at::Tensor logits = model->forward(images);   // (N, 3, H, W) -> (N, 10)
//
// State dict keys match models/convnextv2.py: downsample_layers.0.0.weight (stem conv),
// downsample_layers.0.1.* (stem norm), downsample_layers.i.0.* (norm) / .1.* (conv),
// stages.i.j.{dwconv,norm,pwconv1,grn,pwconv2}.*, norm.*, head.*.
// Inside, activations are kept channels_last in memory (NCHW shape, NHWC strides), which makes
// the block's permutes free and lets convolutions run their channels-last kernels.
#ifndef CONVNEXTV2_MODELS_CONVNEXTV2_H_
#define CONVNEXTV2_MODELS_CONVNEXTV2_H_

#include <torch/arg.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include <vector>

#include "convnextv2/models/layers.h"

namespace convnextv2::models {

struct BlockOptions {
  explicit BlockOptions(int64_t dim) : dim_(dim) {}
  TORCH_ARG(int64_t, dim);
  TORCH_ARG(double, drop_path) = 0.0;
  TORCH_ARG(bool, fused_grn) = true;
  TORCH_ARG(bool, fused_dwconv) = true;
};

// dwconv 7x7 -> LayerNorm -> Linear(C, 4C) -> GELU -> GRN -> Linear(4C, C) -> DropPath, residual.
class BlockImpl : public torch::nn::Cloneable<BlockImpl> {
 public:
  explicit BlockImpl(BlockOptions options);
  void reset() override;
  at::Tensor forward(const at::Tensor& x);  // (N, C, H, W) -> (N, C, H, W)
  // The depthwise 7x7 convolution (dwconv's weights, fused or plain as the options say).
  at::Tensor DepthwiseConv(const at::Tensor& x);
  // The residual branch up to (excluding) DropPath, on NHWC input/output; used by FCMAE.
  at::Tensor BranchNHWC(const at::Tensor& dw_out_nhwc);
  // On CUDA with fused_grn: the branch without pwconv2's bias, which the caller adds (or folds
  // into the residual kernel), through the fused GELU + GRN kernels.
  at::Tensor BranchWithoutLastBiasCuda(const at::Tensor& dw_out_nhwc);

  BlockOptions options;
  torch::nn::Conv2d dwconv{nullptr};
  LayerNorm norm{nullptr};
  torch::nn::Linear pwconv1{nullptr};
  GRN grn{nullptr};
  torch::nn::Linear pwconv2{nullptr};
  DropPath drop_path{nullptr};
};
TORCH_MODULE(Block);

struct ConvNeXtV2Options {
  TORCH_ARG(int64_t, in_chans) = 3;
  TORCH_ARG(int64_t, num_classes) = 1000;
  TORCH_ARG(std::vector<int64_t>, depths) = std::vector<int64_t>{3, 3, 9, 3};
  TORCH_ARG(std::vector<int64_t>, dims) = std::vector<int64_t>{96, 192, 384, 768};
  TORCH_ARG(double, drop_path_rate) = 0.0;
  TORCH_ARG(double, head_init_scale) = 1.0;
  TORCH_ARG(bool, fused_grn) = true;
  TORCH_ARG(bool, fused_dwconv) = true;
};

class ConvNeXtV2Impl : public torch::nn::Cloneable<ConvNeXtV2Impl> {
 public:
  explicit ConvNeXtV2Impl(ConvNeXtV2Options options = {});
  // Builds the modules and initializes them as the official code does (truncated normal
  // std 0.02 for convolutions and linears, zero biases, head scaled by head_init_scale), drawing
  // from torch's default generator.
  void reset() override;
  at::Tensor forward(const at::Tensor& x);           // (N, in_chans, H, W) -> (N, num_classes)
  at::Tensor forward_features(const at::Tensor& x);  // -> (N, dims[3]) after the final norm

  ConvNeXtV2Options options;
  torch::nn::ModuleList downsample_layers{nullptr};
  torch::nn::ModuleList stages{nullptr};
  LayerNorm norm{nullptr};
  torch::nn::Linear head{nullptr};
};
TORCH_MODULE(ConvNeXtV2);

// Registers on `owner` the official stem and downsampling layers ("downsample_layers") and the
// stages of blocks ("stages") with the linear stochastic-depth schedule; ConvNeXtV2 and the
// FCMAE encoder share it, so their state-dict names are the same.
void BuildTrunk(torch::nn::Module& owner, int64_t in_chans, const std::vector<int64_t>& depths,
                const std::vector<int64_t>& dims, double drop_path_rate, bool fused_grn,
                bool fused_dwconv, torch::nn::ModuleList* downsample_layers,
                torch::nn::ModuleList* stages);

// Official init of the Conv2d/Linear submodules of `module` (not `module` itself):
// trunc_normal_(std=.02), bias 0.
void InitConvAndLinear(torch::nn::Module& module);

}  // namespace convnextv2::models

#endif  // CONVNEXTV2_MODELS_CONVNEXTV2_H_
