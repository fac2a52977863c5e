// The data.* and aug.* string fields with a fixed set of values, and the enums the data code
// reads them as. The config holds the strings (the official flag values); data::CheckDataConfig
// and the code that builds the loader, the transforms and mixup parse them with these tables.
//
//   MixupModes().Check(config.aug().mixup_mode(), checks);   // "aug.mixup_mode: 'x' is not ..."
//   options.mode = MixupModes().Of(config.aug().mixup_mode());
//
// No libtorch: the launcher validates sweeps with them.
#ifndef CONVNEXTV2_DATA_CONFIG_CHOICES_H_
#define CONVNEXTV2_DATA_CONFIG_CHOICES_H_

#include "convnextv2/config/choices.h"

namespace convnextv2::data {

// data.corrupt_images: what the loader does with an image that does not decode.
enum class CorruptImages {
  kFail,  // "fail": the run stops with an error naming the file
  kSkip,  // "skip": the sample is replaced (logged and counted)
};

// aug.mixup_mode: timm's Mixup mode, how many (lambda, mixup-or-cutmix) draws a batch gets.
enum class MixupMode {
  kBatch,  // "batch": one for the whole batch
  kPair,   // "pair": one per pair (i, n-1-i)
  kElem,   // "elem": one per sample
};

// aug.train_interpolation: the resize of RandomResizedCrop and RandAugment's geometric ops.
enum class TrainInterpolation {
  kBicubic,   // "bicubic"
  kBilinear,  // "bilinear"
  kRandom,    // "random": bilinear or bicubic, drawn per image
};

// aug.remode: timm's RandomErasing fill.
enum class EraseMode {
  kPixel,  // "pixel": per-pixel normal noise
  kRand,   // "rand": one normal value per channel
  kConst,  // "const": zeros
};

inline const config::Choices<CorruptImages>& CorruptImagesChoices() {
  static const auto* const kChoices = new config::Choices<CorruptImages>(
      "data.corrupt_images", {{"fail", CorruptImages::kFail}, {"skip", CorruptImages::kSkip}});
  return *kChoices;
}

inline const config::Choices<MixupMode>& MixupModes() {
  static const auto* const kChoices = new config::Choices<MixupMode>(
      "aug.mixup_mode",
      {{"batch", MixupMode::kBatch}, {"pair", MixupMode::kPair}, {"elem", MixupMode::kElem}});
  return *kChoices;
}

inline const config::Choices<TrainInterpolation>& TrainInterpolations() {
  static const auto* const kChoices = new config::Choices<TrainInterpolation>(
      "aug.train_interpolation", {{"bicubic", TrainInterpolation::kBicubic},
                                  {"bilinear", TrainInterpolation::kBilinear},
                                  {"random", TrainInterpolation::kRandom}});
  return *kChoices;
}

inline const config::Choices<EraseMode>& EraseModes() {
  static const auto* const kChoices = new config::Choices<EraseMode>(
      "aug.remode",
      {{"pixel", EraseMode::kPixel}, {"rand", EraseMode::kRand}, {"const", EraseMode::kConst}});
  return *kChoices;
}

}  // namespace convnextv2::data

#endif  // CONVNEXTV2_DATA_CONFIG_CHOICES_H_
