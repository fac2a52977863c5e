// Per-sample transforms: a stored 8-bit image in, a normalized float (3, S, S) tensor out.
//
//   SmallImageTransform t(SmallImageTransform::Options{.input_size = 32, .hflip = 0.5});
//   at::Tensor x = t.Apply(example.image, rng);
#ifndef CONVNEXTV2_DATA_TRANSFORMS_H_
#define CONVNEXTV2_DATA_TRANSFORMS_H_

#include <ATen/core/Tensor.h>

#include <array>

#include "convnextv2/data/dataset.h"
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
  // Thread-safe; all randomness comes from `rng`.
  virtual at::Tensor Apply(const Image& image, SampleRng& rng) const = 0;
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

// The transform of `config` for training (augmentation on) or evaluation.
std::unique_ptr<Transform> MakeTransform(const ExperimentConfig& config, Split split);

}  // namespace convnextv2::data

#endif  // CONVNEXTV2_DATA_TRANSFORMS_H_
