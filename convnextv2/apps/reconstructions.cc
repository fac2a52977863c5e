#include "convnextv2/apps/reconstructions.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "convnextv2/data/loader.h"
#include "convnextv2/data/transforms.h"
#include "convnextv2/models/fcmae_build.h"
#include "convnextv2/util/status_macros.h"

namespace convnextv2::apps {

absl::StatusOr<ReconstructionWriter> ReconstructionWriter::Create(
    const ExperimentConfig& config, const data::Dataset& train_set, uint64_t seed,
    const models::FCMAEImpl& model, c10::Device device) {
  const FcmaeConfig& f = config.fcmae();
  if (f.vis_images() <= 0) {
    return absl::InvalidArgumentError("fcmae.vis_images is 0: no images to draw");
  }
  int64_t available = train_set.size();
  if (f.train_subset() > 0) available = std::min<int64_t>(available, f.train_subset());
  const int64_t k = std::min<int64_t>(f.vis_images(), available);
  absl::StatusOr<std::unique_ptr<data::Transform>> transform =
      data::MakeTransform(config, data::Split::kEval);
  CONVNEXTV2_RETURN_IF_ERROR(transform);
  data::Loader loader(&train_set, transform->get(), data::SamplerOptions{k, false, false, 0, 0, 1});
  absl::StatusOr<data::Batch> batch = loader.GetBatch(0, 0);
  CONVNEXTV2_RETURN_IF_ERROR(batch);
  ReconstructionWriter w;
  w.images_ = batch->images.to(device);
  // Keyed apart from every training mask (those use (epoch, step)).
  w.mask_ = model.RandomMask(k, models::MaskGenerator(seed, ~uint64_t{0}, 0)).to(device);
  w.options_.patch_size = f.patch_size();
  w.options_.norm_pix_loss = f.norm_pix_loss();
  if (!config.data().imagenet_default_mean_and_std()) {
    w.options_.mean = data::kInceptionMean;
    w.options_.std = data::kInceptionStd;
  }
  return w;
}

absl::StatusOr<double> ReconstructionWriter::Write(models::FCMAEImpl& model,
                                                   const std::string& path) const {
  c10::NoGradGuard no_grad;
  const bool was_training = model.is_training();
  model.eval();
  const models::FCMAEOutput out = model.forward(images_, mask_);
  model.train(was_training);
  CONVNEXTV2_RETURN_IF_ERROR(
      WritePng(ReconstructionGrid(images_, out.pred, mask_, options_), path));
  return out.loss.item<double>();
}

}  // namespace convnextv2::apps
