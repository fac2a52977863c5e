// Mixup and CutMix on a batch, with timm's Mixup semantics, and the soft targets they imply.
//
//   std::optional<Mixup> mixup = Mixup::FromConfig(config);     // nullopt when both are off
//   SampleRng rng(KeyedSeed(seed, epoch, batch_index, Purpose::kMixup));
//   at::Tensor targets = mixup->Apply(batch.images, batch.labels, rng);   // (N, classes)
//
// Sample i is mixed with sample N-1-i (the batch flipped). Modes: "batch" draws one lambda
// (and mixup-or-cutmix choice) for the whole batch, "pair" one per pair (i, N-1-i), "elem" one
// per sample. With probability 1 - prob a batch/pair/sample stays unmixed (lambda 1). When both
// mixup and cutmix are on, cutmix is used with probability switch_prob. CutMix pastes a box of
// area (1 - lambda) (or, with cutmix_minmax, of random side ratios in [min, max)), clipped to
// the image, and lambda is recomputed from the clipped box. Targets are
// lambda * smooth(y) + (1 - lambda) * smooth(y_flipped), where smooth puts 1 - s + s/K on the
// label and s/K elsewhere, so each row sums to one.
#ifndef CONVNEXTV2_DATA_MIXUP_H_
#define CONVNEXTV2_DATA_MIXUP_H_

#include <ATen/core/Tensor.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "convnextv2/data/config_choices.h"
#include "convnextv2/data/rng.h"
#include "convnextv2/proto/experiment.pb.h"

namespace convnextv2::data {

struct MixupOptions {
  double mixup_alpha = 1.0;
  double cutmix_alpha = 0.0;
  std::optional<std::pair<double, double>> cutmix_minmax;
  double prob = 1.0;
  double switch_prob = 0.5;
  MixupMode mode = MixupMode::kBatch;
  bool correct_lam = true;
  double label_smoothing = 0.1;
  int num_classes = 1000;
};

// Beta(alpha, alpha) from two gamma draws (Marsaglia-Tsang).
double SampleBeta(double alpha, SampleRng& rng);

// A CutMix box [yl, yh) x [xl, xh) on an h x w image and the lambda it implies.
struct CutmixBox {
  int yl = 0, yh = 0, xl = 0, xh = 0;
  double lam = 1.0;
};
CutmixBox DrawCutmixBox(int height, int width, double lam,
                        const std::optional<std::pair<double, double>>& minmax, bool correct_lam,
                        SampleRng& rng);

// Smoothed one-hot targets of `labels` mixed with those of labels.flip(0) by `lam` ((N) or
// (N, 1) float tensor, or a 1-element one).
at::Tensor MixupTarget(const at::Tensor& labels, int num_classes, const at::Tensor& lam,
                       double smoothing);

class Mixup {
 public:
  explicit Mixup(MixupOptions options);
  // From aug.{mixup, cutmix, cutmix_minmax, mixup_prob, mixup_switch_prob, mixup_mode,
  // smoothing} and model.nb_classes; nullopt when mixup, cutmix and cutmix_minmax are all off.
  static std::optional<Mixup> FromConfig(const ExperimentConfig& config);

  // Mixes `images` (N, C, H, W float, N even) in place and returns the (N, num_classes) soft
  // targets. Also reports the per-sample lambdas when `lams` is given.
  at::Tensor Apply(at::Tensor& images, const at::Tensor& labels, SampleRng& rng,
                   std::vector<double>* lams = nullptr) const;

  const MixupOptions& options() const { return options_; }

 private:
  // timm's _params_per_batch / _params_per_elem: (lambda, use cutmix).
  std::pair<double, bool> DrawParams(SampleRng& rng) const;
  MixupOptions options_;
};

}  // namespace convnextv2::data

#endif  // CONVNEXTV2_DATA_MIXUP_H_
