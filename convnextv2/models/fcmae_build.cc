#include "convnextv2/models/fcmae_build.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include "convnextv2/data/rng.h"
#include "convnextv2/models/grn_scope.h"
#include "convnextv2/models/registry.h"
#include "convnextv2/util/status_macros.h"

namespace convnextv2::models {

absl::StatusOr<FCMAE> BuildFcmae(const ExperimentConfig& config) {
  absl::StatusOr<ConvNeXtV2Options> variant = VariantOptions(config.model().model());
  CONVNEXTV2_RETURN_IF_ERROR(variant);
  const FcmaeConfig& f = config.fcmae();
  return FCMAE(FCMAEOptions()
                   .img_size(config.model().input_size())
                   .depths(variant->depths())
                   .dims(variant->dims())
                   .decoder_depth(f.decoder_depth())
                   .decoder_embed_dim(f.decoder_embed_dim())
                   .patch_size(f.patch_size())
                   .mask_ratio(f.mask_ratio())
                   .norm_pix_loss(f.norm_pix_loss())
                   .drop_path_rate(config.model().drop_path())
                   .grn_scope(GrnScopes().Of(f.grn_scope())));
}

at::Generator MaskGenerator(uint64_t seed, uint64_t a, uint64_t b) {
  return at::detail::createCPUGenerator(data::KeyedSeed(seed, a, b, data::Purpose::kMask));
}

at::Tensor SampleMasks(const FCMAEImpl& model, uint64_t seed, int64_t epoch,
                       const std::vector<int64_t>& indices) {
  std::vector<at::Tensor> rows;
  rows.reserve(indices.size());
  for (const int64_t index : indices) {
    rows.push_back(model.RandomMask(1, MaskGenerator(seed, static_cast<uint64_t>(epoch),
                                                     static_cast<uint64_t>(index))));
  }
  return at::cat(rows, 0);
}

}  // namespace convnextv2::models
