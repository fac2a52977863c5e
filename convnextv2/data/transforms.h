// Per-sample transforms: a stored or encoded image in, a normalized float (3, S, S) tensor out.
//
//   absl::StatusOr<std::unique_ptr<Transform>> t = MakeTransform(config, Split::kTrain);
//   SampleRng rng(KeyedSeed(seed, epoch, index, Purpose::kTransform));
//   absl::StatusOr<at::Tensor> x = (*t)->ApplyExample(example, rng);
//
// The ImageNet-style transforms are the official build_transform (timm's create_transform):
//   train: RandomResizedCrop(S, scale 0.08-1, ratio 3/4-4/3, train_interpolation), horizontal
//          flip (hflip), RandAugment (aa) or else ColorJitter (color_jitter), normalize,
//          RandomErasing (reprob, remode, recount); for S <= 32 RandomCrop(S, padding 4)
//          replaces RandomResizedCrop.
//   eval:  S < 384: resize the shorter side to int(S / crop_pct) (bicubic), center crop S;
//          S >= 384: resize to S x S; S <= 32: no resize.
//   pretrain (FCMAE): RandomResizedCrop(S, scale 0.2-1, bicubic), flip 0.5, normalize.
// Encoded JPEGs are decoded at the smallest DCT scale that still covers the crop at output
// resolution (image_decode.h); every random draw comes from the sample's `rng`, drawn before
// decoding, so a batch does not depend on the decoder's scale or on thread count.
#ifndef CONVNEXTV2_DATA_TRANSFORMS_H_
#define CONVNEXTV2_DATA_TRANSFORMS_H_

#include <ATen/core/Tensor.h>

#include <array>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "convnextv2/data/augment_ops.h"
#include "convnextv2/data/config_choices.h"
#include "convnextv2/data/dataset.h"
#include "convnextv2/data/image_decode.h"
#include "convnextv2/data/rand_augment.h"
#include "convnextv2/data/rng.h"
#include "convnextv2/proto/experiment.pb.h"

namespace convnextv2::data {

inline constexpr std::array<float, 3> kImagenetMean = {0.485f, 0.456f, 0.406f};
inline constexpr std::array<float, 3> kImagenetStd = {0.229f, 0.224f, 0.225f};
inline constexpr std::array<float, 3> kInceptionMean = {0.5f, 0.5f, 0.5f};
inline constexpr std::array<float, 3> kInceptionStd = {0.5f, 0.5f, 0.5f};

class Transform {
 public:
  virtual ~Transform() = default;
  // Thread-safe; all randomness comes from `rng`. `image` is decoded (channels 1 or 3).
  virtual at::Tensor Apply(const Image& image, SampleRng& rng) const = 0;
  // Decodes example.encoded when set (errors name example.path), then transforms.
  virtual absl::StatusOr<at::Tensor> ApplyExample(const Example& example, SampleRng& rng) const;
  // ApplyExample written to `out` (3 x S x S floats, S = output_size()), the same values; the
  // loader fills its batches with it.
  virtual absl::Status ApplyExampleInto(const Example& example, SampleRng& rng, float* out) const;
  virtual int output_size() const = 0;
};

// For small datasets (IDX, synthetic): the image is centered on a zero canvas of input_size when
// input_size is between its size and twice its size (Fashion-MNIST's 28 -> 32), otherwise resized
// bilinearly to input_size; grayscale is repeated to 3 channels; horizontal flip with
// probability hflip; then ToTensor (/255) and normalization.
class SmallImageTransform : public Transform {
 public:
  struct Options {
    int input_size = 32;
    double hflip = 0.0;
    std::array<float, 3> mean = kImagenetMean;
    std::array<float, 3> std = kImagenetStd;
  };
  explicit SmallImageTransform(Options options) : options_(options) {}
  at::Tensor Apply(const Image& image, SampleRng& rng) const override;
  int output_size() const override { return options_.input_size; }

 private:
  Options options_;
};

// A crop box in pixels.
struct CropBox {
  int top = 0, left = 0, height = 0, width = 0;
};

// torchvision/timm RandomResizedCrop.get_params: 10 tries of area in scale x image area and
// log-uniform aspect ratio, then a center crop clamped to the ratio range.
CropBox RandomResizedCropBox(int width, int height, double scale_min, double scale_max,
                             double ratio_min, double ratio_max, SampleRng& rng);

// timm RandomErasing on one normalized (C, H, W) float image: with probability `probability`,
// `count` (1, or uniform in [1, max_count]) boxes of 2%-33% of the area / count and aspect
// ratio log-uniform in [0.3, 3.33] are filled with per-pixel normal noise ("pixel"), one normal
// color per channel ("rand") or zeros ("const").
struct EraseOptions {
  double probability = 0;
  EraseMode mode = EraseMode::kPixel;
  int max_count = 1;
};
void RandomErase(at::Tensor& chw, const EraseOptions& options, SampleRng& rng);
// The same on `c` planes of h x w floats.
void RandomErase(float* chw, int c, int h, int w, const EraseOptions& options, SampleRng& rng);

// ImageNet-style training transform (see the file comment).
class TrainTransform : public Transform {
 public:
  struct Options {
    int input_size = 224;
    // RandomCrop(input_size, padding 4) instead of RandomResizedCrop (official for S <= 32).
    bool small_crop = false;
    double scale_min = 0.08, scale_max = 1.0;
    double ratio_min = 3.0 / 4.0, ratio_max = 4.0 / 3.0;
    TrainInterpolation interpolation = TrainInterpolation::kBicubic;
    double hflip = 0.5;
    std::optional<RandAugment> rand_augment;
    double color_jitter = 0;  // brightness = contrast = saturation; only without RandAugment
    std::array<float, 3> mean = kImagenetMean;
    std::array<float, 3> std = kImagenetStd;
    EraseOptions erase;
    bool dct_scaling = true;
  };
  explicit TrainTransform(Options options) : options_(std::move(options)) {}
  at::Tensor Apply(const Image& image, SampleRng& rng) const override;
  absl::StatusOr<at::Tensor> ApplyExample(const Example& example, SampleRng& rng) const override;
  absl::Status ApplyExampleInto(const Example& example, SampleRng& rng,
                                float* out) const override;
  int output_size() const override { return options_.input_size; }

 private:
  // Everything after the crop box is known: `box` of the RGB `image` (which may be a scaled
  // decode) becomes the normalized sample in `out`.
  void FinishInto(const Image& image, const CropBox& box, SampleRng& rng, float* out) const;
  CropBox DrawBox(int width, int height, SampleRng& rng) const;
  Options options_;
};

class EvalTransform : public Transform {
 public:
  struct Options {
    int input_size = 224;
    double crop_pct = 224.0 / 256.0;
    std::array<float, 3> mean = kImagenetMean;
    std::array<float, 3> std = kImagenetStd;
    bool dct_scaling = true;
  };
  explicit EvalTransform(Options options) : options_(options) {}
  at::Tensor Apply(const Image& image, SampleRng& rng) const override;
  absl::StatusOr<at::Tensor> ApplyExample(const Example& example, SampleRng& rng) const override;
  int output_size() const override { return options_.input_size; }
  // The size the image is resized to before the center crop, from its stored size.
  ImageSize ResizedSize(int width, int height) const;

 private:
  Options options_;
};

// uint8 HWC RGB (or gray, repeated) -> float (3, H, W), (v / 255 - mean) / std.
at::Tensor ToNormalizedTensor(const Image& image, const std::array<float, 3>& mean,
                              const std::array<float, 3>& std);
// The same into `out` (3 x H x W floats).
void NormalizeInto(const Image& image, const std::array<float, 3>& mean,
                   const std::array<float, 3>& std, float* out);

// The transform of `config` for fine-tuning (train: augmentation on; eval: none): the
// small-image one for IDX and synthetic, the ImageNet-style ones otherwise. Fails on a bad
// aug.aa string.
absl::StatusOr<std::unique_ptr<Transform>> MakeTransform(const ExperimentConfig& config,
                                                         Split split);
// FCMAE pre-training's recipe (train split).
absl::StatusOr<std::unique_ptr<Transform>> MakePretrainTransform(const ExperimentConfig& config);

}  // namespace convnextv2::data

#endif  // CONVNEXTV2_DATA_TRANSFORMS_H_
