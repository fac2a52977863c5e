// FCMAE: the fully convolutional masked autoencoder that pre-trains ConvNeXt V2 (models/fcmae.py
// of the official code), with the sparse encoder computed densely and exactly.
//
//   FCMAE model(FCMAEOptions().depths({2, 2, 6, 2}).dims({40, 80, 160, 320}));
//   at::Tensor mask = model->RandomMask(images.size(0), /*generator=*/gen);   // (N, L), 1 = removed
//   FCMAEOutput out = model->forward(images, mask);  // out.loss, out.pred (N, p*p*3, h, w)
//
// The official encoder (convnextv2_sparse.py) runs on MinkowskiEngine sparse tensors: after the
// dense stem the removed positions are dropped and every later layer computes only at visible
// sites. Here every layer runs densely and the removed positions are zeroed wherever a dense op
// would otherwise carry a value from a removed site into a visible one:
//   * after the stem and after each downsampling conv (the 2x2/2 conv of a visible 2x2 window
//     reads only visible sites because the mask is constant on 2^k x 2^k blocks, but its bias and
//     the LayerNorm before it make removed sites nonzero);
//   * before GRN, so its L2 norm sums over visible sites only;
//   * at the end of each block's residual branch, so a block's output is zero at removed sites
//     and the next depthwise 7x7 conv, whose input is then zero there, sums over visible
//     neighbours only, as the sparse depthwise conv does. (Its output at removed sites is garbage
//     but never reaches a visible site before the next zeroing, because LayerNorm, the linears
//     and GELU act per site.)
// So at every visible site the value equals the sparse computation (tests/models/fcmae_test.cc
// checks it against a per-site implementation); the dense version costs the full dense FLOPs.
//
// GRN scope (FCMAEOptions::grn_scope): the official MinkowskiGRN takes the L2 norm over every
// active point of the whole batch, so one sample's features depend on the other samples (users
// reported it as a bug); the paper's JAX code normalizes per sample. kPerSample (default) takes
// the norm over each sample's visible sites, kBatch over all visible sites of the batch.
//
// The encoder's state-dict names are the fine-tuning model's (encoder.downsample_layers.*,
// encoder.stages.*), so `encoder` loads into ConvNeXtV2 as is; the decoder's are the official
// proj.*, mask_token, decoder.*, pred.*.
#ifndef CONVNEXTV2_MODELS_FCMAE_H_
#define CONVNEXTV2_MODELS_FCMAE_H_

#include <ATen/core/Generator.h>
#include <torch/arg.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/pimpl.h>

#include <optional>
#include <vector>

#include "convnextv2/models/convnextv2.h"
#include "convnextv2/models/grn_scope.h"

namespace convnextv2::models {

struct FCMAEOptions {
  TORCH_ARG(int64_t, img_size) = 224;
  TORCH_ARG(int64_t, in_chans) = 3;
  TORCH_ARG(std::vector<int64_t>, depths) = std::vector<int64_t>{3, 3, 9, 3};
  TORCH_ARG(std::vector<int64_t>, dims) = std::vector<int64_t>{96, 192, 384, 768};
  TORCH_ARG(int64_t, decoder_depth) = 1;
  TORCH_ARG(int64_t, decoder_embed_dim) = 512;
  // Side of a mask patch; must equal the encoder's total stride (32), because the decoder
  // predicts one patch per encoder output site (as the official code assumes).
  TORCH_ARG(int64_t, patch_size) = 32;
  TORCH_ARG(double, mask_ratio) = 0.6;
  TORCH_ARG(bool, norm_pix_loss) = false;
  // Stochastic depth of the encoder (the official pre-training leaves it at 0).
  TORCH_ARG(double, drop_path_rate) = 0.0;
  TORCH_ARG(GrnScope, grn_scope) = GrnScope::kPerSample;
};

// The ConvNeXt V2 trunk without the final norm and head, computed under a mask.
class FCMAEEncoderImpl : public torch::nn::Cloneable<FCMAEEncoderImpl> {
 public:
  explicit FCMAEEncoderImpl(FCMAEOptions options);
  void reset() override;
  // images (N, C, H, W), mask (N, L) with 1 = removed on the (H/32) x (W/32) grid ->
  // (N, dims[3], H/32, W/32), zero at removed sites.
  at::Tensor forward(const at::Tensor& images, const at::Tensor& mask);

  FCMAEOptions options;
  torch::nn::ModuleList downsample_layers{nullptr};
  torch::nn::ModuleList stages{nullptr};
};
TORCH_MODULE(FCMAEEncoder);

struct FCMAEOutput {
  at::Tensor loss;  // scalar: mean squared error over the removed patches
  at::Tensor pred;  // (N, patch_size^2 * in_chans, H/32, W/32)
  at::Tensor mask;  // (N, L), 1 = removed
};

class FCMAEImpl : public torch::nn::Cloneable<FCMAEImpl> {
 public:
  explicit FCMAEImpl(FCMAEOptions options = {});
  // Builds and initializes the modules as the official FCMAE does (see fcmae.cc for the quirks),
  // drawing from torch's default generator.
  void reset() override;

  int64_t num_patches() const;  // L = (img_size / patch_size)^2
  int64_t len_keep() const;     // int(L * (1 - mask_ratio)), the visible patches per sample
  // A mask as gen_random_mask: per sample, the len_keep patches with the smallest Gaussian noise
  // are kept (0), the rest removed (1). float (batch, L).
  at::Tensor RandomMask(int64_t batch, std::optional<at::Generator> generator = std::nullopt,
                        c10::Device device = c10::kCPU) const;

  at::Tensor forward_decoder(const at::Tensor& latent, const at::Tensor& mask);
  at::Tensor forward_loss(const at::Tensor& images, const at::Tensor& pred,
                          const at::Tensor& mask) const;
  FCMAEOutput forward(const at::Tensor& images, const at::Tensor& mask);

  FCMAEOptions options;
  FCMAEEncoder encoder{nullptr};
  torch::nn::Conv2d proj{nullptr};
  at::Tensor mask_token;  // (1, decoder_embed_dim, 1, 1)
  torch::nn::Sequential decoder{nullptr};
  torch::nn::Conv2d pred{nullptr};
};
TORCH_MODULE(FCMAE);

// (N, L) mask on a g x g grid -> (N, g * scale, g * scale), each entry repeated scale x scale.
at::Tensor UpsampleMask(const at::Tensor& mask, int64_t scale);

// images (N, C, H, W) -> (N, L, p*p*C), patch features ordered (row, col, channel) as the
// official einsum 'nchpwq->nhwpqc'; patches in row-major order.
at::Tensor Patchify(const at::Tensor& images, int64_t patch_size);
// The inverse of Patchify for square images with `channels` channels.
at::Tensor Unpatchify(const at::Tensor& patches, int64_t patch_size, int64_t channels);
// Per-patch normalized targets: (x - mean) / sqrt(var + 1e-6) over the last dim, var unbiased
// (torch.var's default, as the official loss).
at::Tensor NormalizePatches(const at::Tensor& patches);

// GRN with the norm over all sites of the batch: G = ||x||_2 over (N, H, W) per channel.
// x (N, H, W, C) channels-last; gamma, beta (1, 1, 1, C).
at::Tensor GrnBatchScope(const at::Tensor& x, const at::Tensor& gamma, const at::Tensor& beta,
                         double eps);

}  // namespace convnextv2::models

#endif  // CONVNEXTV2_MODELS_FCMAE_H_
