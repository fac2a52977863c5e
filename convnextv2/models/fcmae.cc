#include "convnextv2/models/fcmae.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <cmath>

#include "convnextv2/models/init.h"

namespace convnextv2::models {

namespace nn = torch::nn;

namespace {

constexpr int64_t kEncoderStride = 32;  // stem 4 x three 2x2/2 downsamplings

void TruncNormalWeightZeroBias(nn::Conv2d& conv, double std) {
  TruncNormal_(conv->weight, 0.0, std);
  conv->bias.zero_();
}

void TruncNormalWeightZeroBias(nn::Linear& linear, double std) {
  TruncNormal_(linear->weight, 0.0, std);
  linear->bias.zero_();
}

void ToChannelsLast(nn::Module& module) {
  c10::NoGradGuard no_grad;
  for (at::Tensor& p : module.parameters()) {
    if (p.dim() == 4) p.set_data(p.contiguous(at::MemoryFormat::ChannelsLast));
  }
}

// One block of the sparse encoder, densely: `x` (N, C, H, W) is zero at removed sites and so is
// the result; `keep` (N, H, W, 1) is 1 at visible sites.
at::Tensor MaskedBlockForward(BlockImpl& block, const at::Tensor& x, const at::Tensor& keep,
                              GrnScope scope, bool training) {
  at::Tensor y = block.DepthwiseConv(x).permute({0, 2, 3, 1});
  y = block.norm->forward(y);
  y = block.pwconv1->forward(y);
  y = at::gelu(y);
  y = y * keep;  // GRN's norm must see visible sites only
  y = scope == GrnScope::kBatch
          ? GrnBatchScope(y, block.grn->gamma, block.grn->beta, block.grn->options.eps())
          : block.grn->forward(y);
  y = (block.pwconv2->forward(y) * keep).permute({0, 3, 1, 2});
  // Whole samples, as MinkowskiDropPath (one draw per sample's set of points).
  block.drop_path->train(training);
  return x + block.drop_path->forward(y);
}

}  // namespace

at::Tensor UpsampleMask(const at::Tensor& mask, int64_t scale) {
  TORCH_CHECK(mask.dim() == 2, "UpsampleMask: expected (N, L), got ", mask.sizes());
  const auto g = static_cast<int64_t>(std::lround(std::sqrt(static_cast<double>(mask.size(1)))));
  TORCH_CHECK(g * g == mask.size(1), "UpsampleMask: L = ", mask.size(1), " is not a square");
  return mask.reshape({-1, g, g}).repeat_interleave(scale, 1).repeat_interleave(scale, 2);
}

at::Tensor Patchify(const at::Tensor& images, int64_t p) {
  TORCH_CHECK(images.dim() == 4 && images.size(2) % p == 0 && images.size(3) % p == 0,
              "Patchify: image sides must be multiples of ", p, ", got ", images.sizes());
  const int64_t n = images.size(0), c = images.size(1);
  const int64_t h = images.size(2) / p, w = images.size(3) / p;
  return images.reshape({n, c, h, p, w, p})
      .permute({0, 2, 4, 3, 5, 1})
      .reshape({n, h * w, p * p * c});
}

at::Tensor Unpatchify(const at::Tensor& patches, int64_t p, int64_t channels) {
  const int64_t n = patches.size(0);
  const auto h = static_cast<int64_t>(std::lround(std::sqrt(static_cast<double>(patches.size(1)))));
  TORCH_CHECK(h * h == patches.size(1) && patches.size(2) == p * p * channels,
              "Unpatchify: expected (N, h*h, ", p * p * channels, "), got ", patches.sizes());
  return patches.reshape({n, h, h, p, p, channels})
      .permute({0, 5, 1, 3, 2, 4})
      .reshape({n, channels, h * p, h * p});
}

at::Tensor NormalizePatches(const at::Tensor& patches) {
  const at::Tensor mean = patches.mean(-1, /*keepdim=*/true);
  const at::Tensor var = patches.var(-1, /*unbiased=*/true, /*keepdim=*/true);
  return (patches - mean) / (var + 1e-6).sqrt();
}

at::Tensor GrnBatchScope(const at::Tensor& x, const at::Tensor& gamma, const at::Tensor& beta,
                         double eps) {
  const at::Tensor gx = at::linalg_vector_norm(x, 2, at::IntArrayRef{0, 1, 2}, /*keepdim=*/true);
  const at::Tensor nx = gx / (gx.mean(-1, /*keepdim=*/true) + eps);
  return gamma * (x * nx) + beta + x;
}

// ---- encoder ----------------------------------------------------------------------------------

FCMAEEncoderImpl::FCMAEEncoderImpl(FCMAEOptions options) : options(std::move(options)) {
  reset();
}

void FCMAEEncoderImpl::reset() {
  const auto& depths = options.depths();
  const auto& dims = options.dims();
  TORCH_CHECK(depths.size() == 4 && dims.size() == 4,
              "FCMAE: depths and dims need 4 stages, got ", depths.size(), " and ", dims.size());
  BuildTrunk(*this, options.in_chans(), depths, dims, options.drop_path_rate(),
             /*fused_grn=*/true, /*fused_dwconv=*/true, &downsample_layers, &stages);
  // SparseConvNeXtV2's own init; FCMAEImpl::reset overrides most of it, as the official does.
  InitConvAndLinear(*this);
  ToChannelsLast(*this);
}

at::Tensor FCMAEEncoderImpl::forward(const at::Tensor& images, const at::Tensor& mask) {
  TORCH_CHECK(images.dim() == 4 && images.size(2) == images.size(3) &&
                  images.size(2) % kEncoderStride == 0,
              "FCMAE encoder: expected square images with sides a multiple of 32, got ",
              images.sizes());
  const int64_t grid = images.size(2) / kEncoderStride;
  TORCH_CHECK(mask.dim() == 2 && mask.size(0) == images.size(0) && mask.size(1) == grid * grid,
              "FCMAE encoder: mask must be (", images.size(0), ", ", grid * grid, "), got ",
              mask.sizes());
  at::Tensor x = images.contiguous(at::MemoryFormat::ChannelsLast);
  for (size_t i = 0; i < 4; ++i) {
    x = downsample_layers[i]->as<nn::Sequential>()->forward(x);
    // (N, 1, H_i, W_i) with 1 = visible, the mask repeated to this stage's resolution.
    const at::Tensor keep =
        (1.0 - UpsampleMask(mask, x.size(2) / grid).unsqueeze(1)).to(x.scalar_type());
    x = x * keep;
    const at::Tensor keep_nhwc = keep.permute({0, 2, 3, 1});
    for (const auto& block : *stages[i]->as<nn::Sequential>()) {
      x = MaskedBlockForward(*block.ptr()->as<BlockImpl>(), x, keep_nhwc, options.grn_scope(),
                             is_training());
    }
  }
  return x;
}

// ---- FCMAE ------------------------------------------------------------------------------------

FCMAEImpl::FCMAEImpl(FCMAEOptions options) : options(std::move(options)) { reset(); }

int64_t FCMAEImpl::num_patches() const {
  const int64_t side = options.img_size() / options.patch_size();
  return side * side;
}

int64_t FCMAEImpl::len_keep() const {
  return static_cast<int64_t>(static_cast<double>(num_patches()) * (1.0 - options.mask_ratio()));
}

void FCMAEImpl::reset() {
  TORCH_CHECK(options.patch_size() == kEncoderStride,
              "FCMAE: patch_size must be the encoder's stride 32, got ", options.patch_size());
  TORCH_CHECK(options.img_size() % options.patch_size() == 0, "FCMAE: img_size ",
              options.img_size(), " is not a multiple of patch_size ", options.patch_size());
  TORCH_CHECK(options.mask_ratio() >= 0 && options.mask_ratio() < 1,
              "FCMAE: mask_ratio must be in [0, 1), got ", options.mask_ratio());
  TORCH_CHECK(len_keep() >= 1, "FCMAE: mask_ratio ", options.mask_ratio(), " keeps no patch of ",
              num_patches());
  TORCH_CHECK(options.decoder_depth() >= 0 && options.decoder_embed_dim() > 0,
              "FCMAE: bad decoder_depth/decoder_embed_dim");
  const int64_t dec = options.decoder_embed_dim();
  encoder = register_module("encoder", FCMAEEncoder(options));
  proj = register_module("proj", nn::Conv2d(nn::Conv2dOptions(options.dims()[3], dec, 1)));
  mask_token = register_parameter("mask_token", at::zeros({1, dec, 1, 1}));
  decoder = register_module("decoder", nn::Sequential());
  for (int64_t i = 0; i < options.decoder_depth(); ++i) {
    decoder->push_back(Block(BlockOptions(dec)));
  }
  pred = register_module(
      "pred", nn::Conv2d(nn::Conv2dOptions(
                  dec, options.patch_size() * options.patch_size() * options.in_chans(), 1)));

  // The official FCMAE applies its own _init_weights to every submodule after the encoder's
  // init, and that function calls timm's trunc_normal_ without a std for most layer types, so:
  //   * every nn.Conv2d (encoder stem, proj, pred, the decoder blocks' depthwise convs) and the
  //     encoder's sparse depthwise convs and linears (pwconv1/2): trunc_normal std 1.0, cut at
  //     +-2 (absolute), bias 0;
  //   * the encoder's sparse 2x2/2 downsampling convs: std 0.02, bias 0;
  //   * LayerNorms: weight 1, bias 0; GRN gamma/beta: 0 (their construction);
  //   * the decoder blocks' nn.Linear layers: not matched by any case, so PyTorch's default
  //     (kaiming-uniform, a = sqrt(5)), which libtorch's Linear also uses at construction;
  //   * mask_token: normal std 0.02.
  // Reproduced as is, so a run here starts from the same distribution as the official one.
  c10::NoGradGuard no_grad;
  auto stem = encoder->downsample_layers[0]->as<nn::Sequential>()->ptr(0)->as<nn::Conv2dImpl>();
  TruncNormal_(stem->weight, 0.0, 1.0);
  stem->bias.zero_();
  for (size_t i = 0; i < 4; ++i) {
    for (const auto& m : *encoder->stages[i]->as<nn::Sequential>()) {
      auto* block = m.ptr()->as<BlockImpl>();
      TruncNormalWeightZeroBias(block->dwconv, 1.0);
      TruncNormalWeightZeroBias(block->pwconv1, 1.0);
      TruncNormalWeightZeroBias(block->pwconv2, 1.0);
    }
  }
  TruncNormalWeightZeroBias(proj, 1.0);
  TruncNormalWeightZeroBias(pred, 1.0);
  for (const auto& m : *decoder) {
    TruncNormalWeightZeroBias(m.ptr()->as<BlockImpl>()->dwconv, 1.0);
  }
  mask_token.normal_(0.0, 0.02);
  ToChannelsLast(*this);
}

at::Tensor FCMAEImpl::RandomMask(int64_t batch, std::optional<at::Generator> generator,
                                 c10::Device device) const {
  const int64_t l = num_patches();
  const at::Tensor noise =
      at::randn({batch, l}, generator ? c10::optional<at::Generator>(*generator) : c10::nullopt,
                at::TensorOptions().dtype(at::kFloat).device(device));
  // The len_keep smallest noises are kept; the same mask as argsort + gather over ids_restore.
  const at::Tensor ids_keep = noise.argsort(/*dim=*/int64_t{1}, /*descending=*/false).narrow(1, 0, len_keep());
  return at::ones({batch, l}, noise.options()).scatter_(1, ids_keep, 0.0);
}

at::Tensor FCMAEImpl::forward_decoder(const at::Tensor& latent, const at::Tensor& mask) {
  at::Tensor x = proj->forward(latent);
  const at::Tensor m =
      mask.reshape({x.size(0), 1, x.size(2), x.size(3)}).to(x.scalar_type());
  x = x * (1.0 - m) + mask_token * m;
  if (!decoder->is_empty()) x = decoder->forward(x);
  return pred->forward(x);
}

at::Tensor FCMAEImpl::forward_loss(const at::Tensor& images, const at::Tensor& pred_map,
                                   const at::Tensor& mask) const {
  const int64_t n = pred_map.size(0), c = pred_map.size(1);
  const at::Tensor p = pred_map.reshape({n, c, -1}).permute({0, 2, 1});  // (N, L, p*p*C)
  at::Tensor target = Patchify(images, options.patch_size());
  if (options.norm_pix_loss()) target = NormalizePatches(target);
  const at::Tensor per_patch = (p - target).pow(2).mean(-1);  // (N, L)
  return (per_patch * mask).sum() / mask.sum();
}

FCMAEOutput FCMAEImpl::forward(const at::Tensor& images, const at::Tensor& mask) {
  FCMAEOutput out;
  out.mask = mask;
  out.pred = forward_decoder(encoder->forward(images, mask), mask);
  out.loss = forward_loss(images, out.pred, mask);
  return out;
}

}  // namespace convnextv2::models
