// timm's RandAugment, configured by its policy string (e.g. "rand-m9-mstd0.5-inc1").
//
//   absl::StatusOr<RandAugment> ra = RandAugment::Parse("rand-m9-mstd0.5-inc1", hparams);
//   ra->Apply(image, rng);   // 2 ops drawn with replacement, each applied with probability 0.5
//
// Policy string: "rand" then dash-separated options: m<magnitude> (0..10, default 10),
// n<ops per image> (default 2), mstd<std of gaussian noise on the magnitude>, mmax<upper clip of
// the magnitude, default 10>, inc<0|1> (1: the "increasing" op variants whose strength grows
// with magnitude for every op). Ops (timm's _RAND_TRANSFORMS / _RAND_INCREASING_TRANSFORMS):
// AutoContrast Equalize Invert Rotate Posterize Solarize SolarizeAdd Color Contrast Brightness
// Sharpness ShearX ShearY TranslateXRel TranslateYRel. Magnitude m maps to: rotate 30 m/10
// degrees, shear 0.3 m/10, translate 0.45 m/10 of the size (each with a random sign), enhance
// factor 1 +- 0.9 m/10 (inc) or 0.1 + 1.8 m/10, posterize to 4 - int(4 m/10) bits (inc) or
// int(4 m/10) bits, solarize threshold 256 - int(256 m/10) (inc) or int(256 m/10), solarize-add
// int(110 m/10); the magnitude gets N(0, mstd) noise per op and is clipped to [0, 10].
#ifndef CONVNEXTV2_DATA_RAND_AUGMENT_H_
#define CONVNEXTV2_DATA_RAND_AUGMENT_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "convnextv2/data/augment_ops.h"
#include "convnextv2/data/dataset.h"
#include "convnextv2/data/rng.h"

namespace convnextv2::data {

struct RandAugmentParams {
  // Fill of geometric ops: the dataset mean in 0..255 (timm's img_mean).
  ops::Fill fill = {124, 116, 104};
  // Interpolation of geometric ops; unset: bilinear or bicubic at random per op (timm, when
  // train_interpolation is "random").
  std::optional<ops::Interp> interp = ops::Interp::kBicubic;
  double translate_pct = 0.45;
};

class RandAugment {
 public:
  static absl::StatusOr<RandAugment> Parse(absl::string_view policy, RandAugmentParams params);

  void Apply(Image& img, SampleRng& rng) const;

  const std::vector<std::string>& op_names() const { return ops_; }
  double magnitude() const { return magnitude_; }
  double magnitude_std() const { return magnitude_std_; }
  int num_layers() const { return num_layers_; }

  // One op at magnitude `m` (after noise and clipping); `rng` draws the sign and, when
  // interpolation is random, the filter. Exposed for tests.
  void ApplyOp(absl::string_view name, double m, Image& img, SampleRng& rng) const;

 private:
  std::vector<std::string> ops_;
  double magnitude_ = 10;
  double magnitude_std_ = 0;
  double magnitude_max_ = 10;
  int num_layers_ = 2;
  RandAugmentParams params_;
};

}  // namespace convnextv2::data

#endif  // CONVNEXTV2_DATA_RAND_AUGMENT_H_
