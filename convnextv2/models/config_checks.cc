#include "convnextv2/models/config_checks.h"

#include <cstdint>

#include "convnextv2/models/grn_scope.h"
#include "convnextv2/models/variants.h"

namespace convnextv2::models {
namespace {

// ConvNeXt V2 downsamples by 4 and then three times by 2.
constexpr int kTotalStride = 32;

void CheckModel(const ModelConfig& m, config::Checks& checks) {
  if (absl::StatusOr<Variant> v = FindVariant(m.model()); !v.ok()) {
    checks.Add(absl::StrCat("model.model: ", v.status().message()));
  }
  checks.Require(m.input_size() >= kTotalStride, "model.input_size: ", m.input_size(),
                 " is too small; ConvNeXt V2 downsamples by 32, so it must be at least 32");
  checks.Require(m.drop_path() >= 0 && m.drop_path() < 1, "model.drop_path: ", m.drop_path(),
                 " must be in [0, 1)");
  checks.Require(m.nb_classes() > 0, "model.nb_classes: ", m.nb_classes(),
                 " must be positive");
}

// The FCMAE masking and decoder of pre-training (main_pretrain.py).
void CheckPretrainFcmae(const ModelConfig& m, const FcmaeConfig& f, config::Checks& checks) {
  // The decoder predicts one patch per encoder output site, so a patch is the encoder's stride.
  checks.Require(f.patch_size() == kTotalStride, "fcmae.patch_size: ", f.patch_size(),
                 " must be 32, the encoder's total stride (the decoder predicts one patch per "
                 "site)");
  checks.Require(m.input_size() % kTotalStride == 0, "model.input_size: ", m.input_size(),
                 " is not divisible by fcmae.patch_size 32");
  const int64_t side = m.input_size() / kTotalStride;
  const auto keep =
      static_cast<int64_t>(static_cast<double>(side * side) * (1.0 - f.mask_ratio()));
  checks.Require(keep >= 1, "fcmae.mask_ratio: ", f.mask_ratio(), " keeps int(", side * side,
                 " * (1 - mask_ratio)) = ", keep, " of the ", side * side, " patches of a ",
                 m.input_size(), "-pixel input; at least one must stay visible");
  GrnScopes().Check(f.grn_scope(), checks);
  checks.Require(f.vis_images() >= 0, "fcmae.vis_images: ", f.vis_images(), " must be >= 0");
  checks.Require(f.train_subset() >= 0, "fcmae.train_subset: ", f.train_subset(),
                 " must be >= 0");
  checks.Require(f.vis_freq() >= 0, "fcmae.vis_freq: ", f.vis_freq(),
                 " must be >= 0 (0: a reconstruction PNG per epoch only)");
  checks.Require(f.visualize().empty() || f.vis_images() > 0, "fcmae.vis_images: 0 leaves ",
                 "nothing for fcmae.visualize to draw");
}

void CheckFcmae(const ModelConfig& m, const FcmaeConfig& f, config::Checks& checks) {
  checks.Require(f.mask_ratio() >= 0 && f.mask_ratio() < 1, "fcmae.mask_ratio: ",
                 f.mask_ratio(), " must be in [0, 1)");
  checks.Require(f.decoder_depth() >= 0, "fcmae.decoder_depth: ", f.decoder_depth(),
                 " must be >= 0");
  checks.Require(f.decoder_embed_dim() > 0, "fcmae.decoder_embed_dim: ",
                 f.decoder_embed_dim(), " must be positive");
  checks.Require(f.patch_size() > 0, "fcmae.patch_size: ", f.patch_size(), " must be positive");
  if (checks.pretrain()) {
    CheckPretrainFcmae(m, f, checks);
  } else {
    checks.Require(f.visualize().empty(), "fcmae.visualize: reconstructions of a pre-training ",
                   "checkpoint are drawn by pretrain, not finetune");
  }
}

}  // namespace

void CheckModelConfig(const ExperimentConfig& config, config::Checks& checks) {
  CheckModel(config.model(), checks);
  CheckFcmae(config.model(), config.fcmae(), checks);
}

}  // namespace convnextv2::models
