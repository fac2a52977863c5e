#include "convnextv2/data/rand_augment.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace convnextv2::data {
namespace {

constexpr double kMaxLevel = 10.0;

const std::vector<std::string>& PlainOps() {
  static const auto* ops = new std::vector<std::string>{
      "AutoContrast", "Equalize", "Invert",   "Rotate",    "Posterize",
      "Solarize",     "SolarizeAdd", "Color", "Contrast",  "Brightness",
      "Sharpness",    "ShearX",   "ShearY",   "TranslateXRel", "TranslateYRel"};
  return *ops;
}

const std::vector<std::string>& IncreasingOps() {
  static const auto* ops = new std::vector<std::string>{
      "AutoContrast", "Equalize", "Invert", "Rotate", "PosterizeIncreasing",
      "SolarizeIncreasing", "SolarizeAdd", "ColorIncreasing", "ContrastIncreasing",
      "BrightnessIncreasing", "SharpnessIncreasing", "ShearX", "ShearY", "TranslateXRel",
      "TranslateYRel"};
  return *ops;
}

// timm's _randomly_negate: negative with probability 0.5.
double RandomlyNegate(double v, SampleRng& rng) { return rng.Uniform() > 0.5 ? -v : v; }

}  // namespace

absl::StatusOr<RandAugment> RandAugment::Parse(absl::string_view policy,
                                               RandAugmentParams params) {
  std::vector<absl::string_view> parts = absl::StrSplit(policy, '-');
  if (parts.empty() || parts[0] != "rand") {
    return absl::InvalidArgumentError(absl::StrCat(
        "aug.aa: '", policy, "' is not a RandAugment policy (expected rand-m9-mstd0.5-inc1 style, "
        "or none)"));
  }
  RandAugment ra;
  ra.params_ = params;
  bool increasing = false;
  for (size_t i = 1; i < parts.size(); ++i) {
    absl::string_view p = parts[i];
    size_t k = 0;
    while (k < p.size() && std::isalpha(static_cast<unsigned char>(p[k]))) ++k;
    const absl::string_view key = p.substr(0, k), value = p.substr(k);
    double v = 0;
    if (!absl::SimpleAtod(value, &v)) {
      return absl::InvalidArgumentError(
          absl::StrCat("aug.aa: '", policy, "': option '", p, "' has no number"));
    }
    if (key == "m") {
      ra.magnitude_ = v;
    } else if (key == "mstd") {
      ra.magnitude_std_ = v;
    } else if (key == "mmax") {
      ra.magnitude_max_ = v;
    } else if (key == "n") {
      ra.num_layers_ = static_cast<int>(v);
    } else if (key == "inc") {
      increasing = v != 0;
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          "aug.aa: '", policy, "': unknown option '", key, "' (known: m, n, mstd, mmax, inc)"));
    }
  }
  if (ra.magnitude_ < 0 || ra.magnitude_ > kMaxLevel) {
    return absl::InvalidArgumentError(
        absl::StrCat("aug.aa: '", policy, "': magnitude must be in [0, 10]"));
  }
  if (ra.num_layers_ < 0 || ra.magnitude_std_ < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("aug.aa: '", policy, "': n and mstd must be >= 0"));
  }
  ra.ops_ = increasing ? IncreasingOps() : PlainOps();
  return ra;
}

void RandAugment::Apply(Image& img, SampleRng& rng) const {
  for (int l = 0; l < num_layers_; ++l) {
    const std::string& name = ops_[rng.Below(ops_.size())];
    if (rng.Uniform() > 0.5) continue;  // each op applies with probability 0.5
    double m = magnitude_;
    if (magnitude_std_ > 0) m = magnitude_ + magnitude_std_ * rng.Normal();
    m = std::clamp(m, 0.0, std::min(kMaxLevel, magnitude_max_));
    ApplyOp(name, m, img, rng);
  }
}

void RandAugment::ApplyOp(absl::string_view name, double m, Image& img, SampleRng& rng) const {
  const double level = m / kMaxLevel;
  const ops::Interp interp =
      params_.interp ? *params_.interp
                     : (rng.Below(2) == 0 ? ops::Interp::kBilinear : ops::Interp::kBicubic);
  const ops::Fill& fill = params_.fill;
  if (name == "AutoContrast") {
    ops::AutoContrast(img);
  } else if (name == "Equalize") {
    ops::Equalize(img);
  } else if (name == "Invert") {
    ops::Invert(img);
  } else if (name == "Rotate") {
    ops::Rotate(img, RandomlyNegate(30.0 * level, rng), interp, fill);
  } else if (name == "Posterize") {
    ops::Posterize(img, static_cast<int>(level * 4));
  } else if (name == "PosterizeIncreasing") {
    ops::Posterize(img, 4 - static_cast<int>(level * 4));
  } else if (name == "Solarize") {
    ops::Solarize(img, static_cast<int>(level * 256));
  } else if (name == "SolarizeIncreasing") {
    ops::Solarize(img, 256 - static_cast<int>(level * 256));
  } else if (name == "SolarizeAdd") {
    ops::SolarizeAdd(img, static_cast<int>(level * 110));
  } else if (name == "ShearX") {
    ops::ShearX(img, RandomlyNegate(0.3 * level, rng), interp, fill);
  } else if (name == "ShearY") {
    ops::ShearY(img, RandomlyNegate(0.3 * level, rng), interp, fill);
  } else if (name == "TranslateXRel") {
    ops::TranslateX(img, RandomlyNegate(params_.translate_pct * level, rng) * img.width, interp,
                    fill);
  } else if (name == "TranslateYRel") {
    ops::TranslateY(img, RandomlyNegate(params_.translate_pct * level, rng) * img.height,
                    interp, fill);
  } else {
    // The ImageEnhance family: timm's _enhance_level_to_arg (1.8 m + 0.1) or the increasing
    // variant 1 +- 0.9 m.
    const bool inc = absl::EndsWith(name, "Increasing");
    const double factor = inc ? 1.0 + RandomlyNegate(0.9 * level, rng) : level * 1.8 + 0.1;
    const absl::string_view base = inc ? name.substr(0, name.size() - 10) : name;
    if (base == "Color") {
      ops::Color(img, factor);
    } else if (base == "Contrast") {
      ops::Contrast(img, factor);
    } else if (base == "Brightness") {
      ops::Brightness(img, factor);
    } else if (base == "Sharpness") {
      ops::Sharpness(img, factor);
    }
  }
}

}  // namespace convnextv2::data
