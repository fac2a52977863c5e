// The layers of ConvNeXt V2: LayerNorm in both data formats, GRN, DropPath.
//
// Each module has the official parameter names and shapes, so state dicts move between this and
// the PyTorch code. Fast paths (the fused GRN) sit behind the same module as the plain ATen
// formula; tests hold them equal.
//
//   LayerNorm ln(LayerNormOptions(96).data_format(DataFormat::kChannelsFirst));
//   GRN grn(GRNOptions(384));             // x: (N, H, W, C)
//   DropPath dp(0.1);                      // identity in eval()
#ifndef CONVNEXTV2_MODELS_LAYERS_H_
#define CONVNEXTV2_MODELS_LAYERS_H_

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
