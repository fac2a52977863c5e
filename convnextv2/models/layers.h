// The layers of ConvNeXt V2: LayerNorm in both data formats, GRN, DropPath.
//
// Each module has the official parameter names and shapes, so state dicts move between this and
// the PyTorch code. Fast paths (the fused GRN and depthwise convolution) sit behind the same
// module as the plain ATen formula; tests hold them equal.
//
//   LayerNorm ln(LayerNormOptions(96).data_format(DataFormat::kChannelsFirst));
//   GRN grn(GRNOptions(384));             // x: (N, H, W, C)
//   DropPath dp(0.1);                      // identity in eval()
#ifndef CONVNEXTV2_MODELS_LAYERS_H_
#define CONVNEXTV2_MODELS_LAYERS_H_

#include <cstdint>

#include <torch/arg.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/pimpl.h>

namespace convnextv2::models {

enum class DataFormat {
  kChannelsLast,   // (N, H, W, C)
  kChannelsFirst,  // (N, C, H, W)
};

struct LayerNormOptions {
  explicit LayerNormOptions(int64_t dim) : dim_(dim) {}
  TORCH_ARG(int64_t, dim);
  TORCH_ARG(double, eps) = 1e-6;
  TORCH_ARG(DataFormat, data_format) = DataFormat::kChannelsLast;
};

// LayerNorm over channels. channels_first normalizes dim 1 of an NCHW tensor: computed as
// layer_norm over the permuted (NHWC) view, which is contiguous for a channels_last tensor.
// bfloat16 input on the CPU (autocast) with float32 weights goes through bf16 kernels (bf16 out,
// float32 statistics; layer_norm_kernels.h) where that view is contiguous; other mixed dtypes
// are computed in the weights' dtype.
class LayerNormImpl : public torch::nn::Cloneable<LayerNormImpl> {
 public:
  explicit LayerNormImpl(LayerNormOptions options);
  void reset() override;
  at::Tensor forward(const at::Tensor& x);

  LayerNormOptions options;
  at::Tensor weight;  // (C)
  at::Tensor bias;    // (C)
};
TORCH_MODULE(LayerNorm);

struct GRNOptions {
  explicit GRNOptions(int64_t dim) : dim_(dim) {}
  TORCH_ARG(int64_t, dim);
  TORCH_ARG(double, eps) = 1e-6;
  // One autograd node with a hand-derived backward instead of the chain of ATen ops.
  TORCH_ARG(bool, fused) = true;
};

// Global Response Normalization on channels-last input (N, H, W, C):
//   G = ||x||_2 over (H, W);  N = G / (mean_C G + eps);  y = gamma * (x * N) + beta + x.
// The fused path runs CPU kernels for float32 and bfloat16 (autocast) input, bf16 in and out with
// float32 sums and statistics; the block goes one step further with GeluGrnFused.
class GRNImpl : public torch::nn::Cloneable<GRNImpl> {
 public:
  explicit GRNImpl(GRNOptions options);
  void reset() override;
  at::Tensor forward(const at::Tensor& x);

  GRNOptions options;
  at::Tensor gamma;  // (1, 1, 1, C), zeros
  at::Tensor beta;   // (1, 1, 1, C), zeros
};
TORCH_MODULE(GRN);

// The plain formula and the fused path as functions (tests compare them).
at::Tensor GrnPlain(const at::Tensor& x, const at::Tensor& gamma, const at::Tensor& beta,
                    double eps);
at::Tensor GrnFused(const at::Tensor& x, const at::Tensor& gamma, const at::Tensor& beta,
                    double eps);

// GRN(GELU(h + bias)) (erf GELU; h (N, H, W, C), bias (C)) as one autograd node with two passes
// over h each way on CPU float32/bfloat16 contiguous input (grn_kernels.h; u = GELU(h + bias)
// kept for the backward, dbias summed in the same pass); elsewhere GrnFused(gelu(h + bias)).
at::Tensor GeluGrnFused(const at::Tensor& h, const at::Tensor& bias, const at::Tensor& gamma,
                        const at::Tensor& beta, double eps);

// GeluGrnFused(h, bias1, gamma, beta) W2^T + bias2 (the block's pointwise part after pwconv1),
// for inference: with autograd off, on CPU float32 input outside autocast, on maps of at least
// kGeluGrnLinearFoldMinPixelsPerChannel * C pixels (W2 is (C, 4C)), the GRN output
// y = u * scale + beta (u = GELU(h + bias1), scale = 1 + gamma * Nx per sample and channel) is
// never written: it is folded into the product, y W2^T + bias2 = u (W2 diag(scale))^T +
// (bias2 + W2 beta), one batched product with per-sample weights, which saves two passes over the
// widest activations (writing y, reading it back). On smaller maps the per-sample weights cost
// more than that (atto's last two stages at 224 px), so there, with autograd on, for other
// dtypes and under autocast it is the plain composition. Equal to it up to float32 rounding
// (tested). Running pwconv1 and this a few samples at a time, so that h and u stay in the cache,
// was measured and not kept (docs/benchmarks.md, "Samples in groups").
inline constexpr int64_t kGeluGrnLinearFoldMinPixelsPerChannel = 4;
// Whether GeluGrnLinear folds for these arguments (and the current grad and autocast modes).
bool GeluGrnLinearFolds(const at::Tensor& h, const at::Tensor& bias1, const at::Tensor& weight2,
                        const at::Tensor& bias2);
at::Tensor GeluGrnLinear(const at::Tensor& h, const at::Tensor& bias1, const at::Tensor& gamma,
                         const at::Tensor& beta, double eps, const at::Tensor& weight2,
                         const at::Tensor& bias2);

// The block's depthwise convolution: k x k (odd), stride 1, padding k / 2, one filter per
// channel; weight (C, 1, k, k), bias (C); x (N, C, H, W). The plain path is at::conv2d.
// DepthwiseConvKernel is an autograd node for float32 channels-last CPU input (k at most 7)
// whose weight and bias gradients come from own loops (one kernel row's taps summed for a tile
// of 4 outputs in vector registers, each input pixel loaded once per tile, per-sample partial
// sums so that they do not depend on the thread count), and whose forward pass and input
// gradient come from the same loops, which skip the taps outside the image, on maps up to 4x4
// and from at::conv2d (oneDNN, 2-5x faster forward there) on larger ones (dwconv_kernels.h).
// Forward + backward at batch 32 it is 10-21x at::conv2d on 1x1 and 2x2 maps, 4-8x on 4x4 and
// 1.4-3.1x from 7x7 to 56x56 (//tools/bench:dwconv_bench), so DepthwiseConvFused takes it
// wherever DepthwiseConvKernelApplies and at::conv2d elsewhere (CUDA, other dtypes or layouts,
// under autocast).
at::Tensor DepthwiseConvPlain(const at::Tensor& x, const at::Tensor& weight,
                              const at::Tensor& bias);
at::Tensor DepthwiseConvFused(const at::Tensor& x, const at::Tensor& weight,
                              const at::Tensor& bias);
bool DepthwiseConvKernelApplies(const at::Tensor& x, const at::Tensor& weight,
                                const at::Tensor& bias);
at::Tensor DepthwiseConvKernel(const at::Tensor& x, const at::Tensor& weight,
                               const at::Tensor& bias);

// Stochastic depth: in training, zeroes whole samples with probability p and scales the kept
// ones by 1 / (1 - p); the identity in eval or when p == 0. Draws from torch's default generator.
class DropPathImpl : public torch::nn::Cloneable<DropPathImpl> {
 public:
  explicit DropPathImpl(double drop_prob = 0.0) : drop_prob(drop_prob) {}
  void reset() override {}
  at::Tensor forward(const at::Tensor& x);

  double drop_prob;
};
TORCH_MODULE(DropPath);

}  // namespace convnextv2::models

#endif  // CONVNEXTV2_MODELS_LAYERS_H_
