#include "convnextv2/data/transforms.h"

#include <ATen/ATen.h>

namespace convnextv2::data {

at::Tensor SmallImageTransform::Apply(const Image& image, SampleRng& rng) const {
  const int s = options_.input_size;
  const bool flip = options_.hflip > 0 && rng.Bernoulli(options_.hflip);
  at::Tensor src = at::from_blob(const_cast<uint8_t*>(image.pixels.data()),
                                 {image.height, image.width, image.channels}, at::kByte)
                       .permute({2, 0, 1})
                       .to(at::kFloat)
                       .div_(255.0);
  if (image.channels == 1) src = src.expand({3, image.height, image.width});
  at::Tensor out;
  const bool fits = image.height <= s && image.width <= s && s < 2 * image.height &&
                    s < 2 * image.width;
  if (fits) {
    out = at::zeros({3, s, s});
    const int top = (s - image.height) / 2, left = (s - image.width) / 2;
    out.narrow(1, top, image.height).narrow(2, left, image.width).copy_(src);
  } else {
    out = at::upsample_bilinear2d(src.unsqueeze(0).contiguous(), {s, s},
                                  /*align_corners=*/false)
              .squeeze(0)
              .clamp_(0.0, 1.0);
  }
  if (flip) out = out.flip({2});
  const at::Tensor mean = at::tensor({options_.mean[0], options_.mean[1], options_.mean[2]});
  const at::Tensor std = at::tensor({options_.std[0], options_.std[1], options_.std[2]});
  return ((out - mean.view({3, 1, 1})) / std.view({3, 1, 1})).contiguous();
}

std::unique_ptr<Transform> MakeTransform(const ExperimentConfig& config, Split split) {
  SmallImageTransform::Options o;
  o.input_size = config.model().input_size();
  o.hflip = split == Split::kTrain ? config.aug().hflip() : 0.0;
  if (!config.data().imagenet_default_mean_and_std()) {
    o.mean = kInceptionMean;
    o.std = kInceptionStd;
  }
  return std::make_unique<SmallImageTransform>(o);
}

}  // namespace convnextv2::data
