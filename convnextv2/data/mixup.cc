#include "convnextv2/data/mixup.h"

#include <ATen/ATen.h>
#include <glog/logging.h>

#include <algorithm>
#include <cmath>

namespace convnextv2::data {
namespace {

double SampleGamma(double shape, SampleRng& rng) {
  if (shape < 1.0) {
    // Gamma(a) = Gamma(a + 1) * U^(1/a).
    double u;
    do {
      u = rng.Uniform();
    } while (u <= 0.0);
    return SampleGamma(shape + 1.0, rng) * std::pow(u, 1.0 / shape);
  }
  const double d = shape - 1.0 / 3.0, c = 1.0 / std::sqrt(9.0 * d);
  while (true) {
    double x, v;
    do {
      x = rng.Normal();
      v = 1.0 + c * x;
    } while (v <= 0.0);
    v = v * v * v;
    const double u = rng.Uniform();
    if (u < 1.0 - 0.0331 * x * x * x * x) return d * v;
    if (u > 0 && std::log(u) < 0.5 * x * x + d * (1.0 - v + std::log(v))) return d * v;
  }
}

// numpy's randint(lo, hi): hi excluded.
int RandRange(int lo, int hi, SampleRng& rng) {
  return hi <= lo ? lo : lo + static_cast<int>(rng.Below(static_cast<uint64_t>(hi - lo)));
}

}  // namespace

double SampleBeta(double alpha, SampleRng& rng) {
  const double x = SampleGamma(alpha, rng), y = SampleGamma(alpha, rng);
  return x + y > 0 ? x / (x + y) : 0.5;
}

CutmixBox DrawCutmixBox(int height, int width, double lam,
                        const std::optional<std::pair<double, double>>& minmax, bool correct_lam,
                        SampleRng& rng) {
  CutmixBox box;
  if (minmax) {
    const int cut_h = RandRange(static_cast<int>(height * minmax->first),
                                static_cast<int>(height * minmax->second), rng);
    const int cut_w = RandRange(static_cast<int>(width * minmax->first),
                                static_cast<int>(width * minmax->second), rng);
    box.yl = RandRange(0, height - cut_h, rng);
    box.xl = RandRange(0, width - cut_w, rng);
    box.yh = box.yl + cut_h;
    box.xh = box.xl + cut_w;
  } else {
    const double ratio = std::sqrt(1.0 - lam);
    const int cut_h = static_cast<int>(height * ratio), cut_w = static_cast<int>(width * ratio);
    const int cy = RandRange(0, height, rng), cx = RandRange(0, width, rng);
    box.yl = std::clamp(cy - cut_h / 2, 0, height);
    box.yh = std::clamp(cy + cut_h / 2, 0, height);
    box.xl = std::clamp(cx - cut_w / 2, 0, width);
    box.xh = std::clamp(cx + cut_w / 2, 0, width);
  }
  box.lam = lam;
  if (correct_lam || minmax) {
    box.lam = 1.0 - static_cast<double>(box.yh - box.yl) * (box.xh - box.xl) /
                        (static_cast<double>(height) * width);
  }
  return box;
}

at::Tensor MixupTarget(const at::Tensor& labels, int num_classes, const at::Tensor& lam,
                       double smoothing) {
  const double off = smoothing / num_classes, on = 1.0 - smoothing + off;
  auto one_hot = [&](const at::Tensor& y) {
    return at::full({y.size(0), num_classes}, off, at::kFloat)
        .scatter_(1, y.to(at::kLong).view({-1, 1}), on);
  };
  const at::Tensor l = lam.to(at::kFloat).reshape({-1, 1});
  return one_hot(labels) * l + one_hot(labels.flip({0})) * (1 - l);
}

Mixup::Mixup(MixupOptions options) : options_(std::move(options)) {
  if (options_.cutmix_minmax) options_.cutmix_alpha = 1.0;  // as timm: minmax implies cutmix
}

std::optional<Mixup> Mixup::FromConfig(const ExperimentConfig& config) {
  const AugmentConfig& a = config.aug();
  if (a.mixup() <= 0 && a.cutmix() <= 0 && a.cutmix_minmax_size() == 0) return std::nullopt;
  MixupOptions o;
  o.mixup_alpha = a.mixup();
  o.cutmix_alpha = a.cutmix();
  if (a.cutmix_minmax_size() == 2) o.cutmix_minmax = {a.cutmix_minmax(0), a.cutmix_minmax(1)};
  o.prob = a.mixup_prob();
  o.switch_prob = a.mixup_switch_prob();
  o.mode = MixupModes().Of(a.mixup_mode());
  o.label_smoothing = a.smoothing();
  o.num_classes = config.model().nb_classes();
  return Mixup(o);
}

std::pair<double, bool> Mixup::DrawParams(SampleRng& rng) const {
  const MixupOptions& o = options_;
  double lam = 1.0;
  bool cutmix = false;
  if (rng.Uniform() < o.prob) {
    if (o.mixup_alpha > 0 && o.cutmix_alpha > 0) {
      cutmix = rng.Uniform() < o.switch_prob;
      lam = SampleBeta(cutmix ? o.cutmix_alpha : o.mixup_alpha, rng);
    } else if (o.mixup_alpha > 0) {
      lam = SampleBeta(o.mixup_alpha, rng);
    } else if (o.cutmix_alpha > 0) {
      cutmix = true;
      lam = SampleBeta(o.cutmix_alpha, rng);
    }
  }
  return {lam, cutmix};
}

at::Tensor Mixup::Apply(at::Tensor& images, const at::Tensor& labels, SampleRng& rng,
                        std::vector<double>* lams_out) const {
  const int64_t n = images.size(0);
  CHECK_EQ(n % 2, 0) << "mixup needs an even batch size";
  const int h = static_cast<int>(images.size(2)), w = static_cast<int>(images.size(3));
  std::vector<double> lams(n, 1.0);
  const at::Tensor orig = images.clone();
  auto box_of = [&](at::Tensor t, const CutmixBox& b) {
    return t.narrow(-2, b.yl, b.yh - b.yl).narrow(-1, b.xl, b.xh - b.xl);
  };
  if (options_.mode == MixupMode::kBatch) {
    auto [lam, cutmix] = DrawParams(rng);
    if (lam != 1.0) {
      const at::Tensor flipped = orig.flip({0});
      if (cutmix) {
        const CutmixBox b =
            DrawCutmixBox(h, w, lam, options_.cutmix_minmax, options_.correct_lam, rng);
        if (b.yh > b.yl && b.xh > b.xl) box_of(images, b).copy_(box_of(flipped, b));
        lam = b.lam;
      } else {
        images.mul_(lam).add_(flipped * (1.0 - lam));
      }
    }
    std::fill(lams.begin(), lams.end(), lam);
  } else {
    const bool pair = options_.mode == MixupMode::kPair;
    const int64_t draws = pair ? n / 2 : n;
    for (int64_t i = 0; i < draws; ++i) {
      const int64_t j = n - i - 1;
      auto [lam, cutmix] = DrawParams(rng);
      if (lam != 1.0) {
        if (cutmix) {
          const CutmixBox b =
              DrawCutmixBox(h, w, lam, options_.cutmix_minmax, options_.correct_lam, rng);
          if (b.yh > b.yl && b.xh > b.xl) {
            box_of(images[i], b).copy_(box_of(orig[j], b));
            if (pair) box_of(images[j], b).copy_(box_of(orig[i], b));
          }
          lam = b.lam;
        } else {
          images[i].copy_(orig[i] * lam + orig[j] * (1.0 - lam));
          if (pair) images[j].copy_(orig[j] * lam + orig[i] * (1.0 - lam));
        }
      }
      lams[i] = lam;
      if (pair) lams[j] = lam;
    }
  }
  if (lams_out != nullptr) *lams_out = lams;
  return MixupTarget(labels, options_.num_classes, at::tensor(lams, at::kDouble),
                     options_.label_smoothing);
}

}  // namespace convnextv2::data
