#include "convnextv2/data/config_checks.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "convnextv2/data/config_choices.h"
#include "convnextv2/data/dataset_registry.h"

namespace convnextv2::data {
namespace {

void CheckData(const ExperimentConfig& c, config::Checks& checks) {
  const DataConfig& d = c.data();
  absl::StatusOr<const DatasetEntry*> entry = FindDataset(d.data_set());
  if (!entry.ok()) {
    checks.Add(absl::StrCat("data.data_set: ", entry.status().message()));
  } else {
    checks.Require(!(*entry)->reads_files || !d.data_path().empty(),
                   "data.data_path: empty; data_set ", d.data_set(), " needs a dataset folder");
    if ((*entry)->check != nullptr) (*entry)->check(c, checks);
  }
  checks.Require(d.num_workers() >= 0, "data.num_workers: ", d.num_workers(), " must be >= 0");
  checks.Require(d.prefetch_batches() >= 0, "data.prefetch_batches: ", d.prefetch_batches(),
                 " must be >= 0");
  checks.Require(!d.has_crop_pct() || (d.crop_pct() > 0 && d.crop_pct() <= 1),
                 "data.crop_pct: ", d.crop_pct(), " must be in (0, 1]");
  checks.Require(d.synthetic_train_size() > 0, "data.synthetic_train_size: ",
                 d.synthetic_train_size(), " must be positive");
  checks.Require(d.max_train_images() >= 0, "data.max_train_images: ", d.max_train_images(),
                 " must be >= 0 (0: the whole training set)");
  checks.Require(d.synthetic_eval_size() > 0, "data.synthetic_eval_size: ",
                 d.synthetic_eval_size(), " must be positive");
  CorruptImagesChoices().Check(d.corrupt_images(), checks);
}

// Mixup and CutMix (timm's Mixup): strengths, probabilities, the box range and the batch they
// mix with its own flip.
void CheckMixup(const ExperimentConfig& c, config::Checks& checks) {
  const AugmentConfig& a = c.aug();
  checks.Require(a.mixup() >= 0, "aug.mixup: ", a.mixup(), " must be >= 0");
  checks.Require(a.cutmix() >= 0, "aug.cutmix: ", a.cutmix(), " must be >= 0");
  checks.Require(a.cutmix_minmax_size() == 0 || a.cutmix_minmax_size() == 2,
                 "aug.cutmix_minmax: needs two values (min max), got ", a.cutmix_minmax_size());
  checks.Require(a.mixup_prob() >= 0 && a.mixup_prob() <= 1, "aug.mixup_prob: ",
                 a.mixup_prob(), " must be in [0, 1]");
  checks.Require(a.mixup_switch_prob() >= 0 && a.mixup_switch_prob() <= 1,
                 "aug.mixup_switch_prob: ", a.mixup_switch_prob(), " must be in [0, 1]");
  MixupModes().Check(a.mixup_mode(), checks);
  for (double v : a.cutmix_minmax()) {
    checks.Require(v > 0 && v <= 1, "aug.cutmix_minmax: ", v, " must be in (0, 1]");
  }
  checks.Require(a.cutmix_minmax_size() != 2 || a.cutmix_minmax(0) < a.cutmix_minmax(1),
                 "aug.cutmix_minmax: min must be less than max");
  const int64_t batch = c.train().batch_size();
  checks.Require((a.mixup() <= 0 && a.cutmix() <= 0 && a.cutmix_minmax_size() == 0) ||
                     batch % 2 == 0,
                 "train.batch_size: ", batch, " must be even with mixup/cutmix (samples are "
                 "mixed with the flipped batch)");
}

void CheckAugment(const ExperimentConfig& c, config::Checks& checks) {
  const AugmentConfig& a = c.aug();
  checks.Require(a.smoothing() >= 0 && a.smoothing() < 1, "aug.smoothing: ", a.smoothing(),
                 " must be in [0, 1)");
  TrainInterpolations().Check(a.train_interpolation(), checks);
  checks.Require(a.reprob() >= 0 && a.reprob() <= 1, "aug.reprob: ", a.reprob(),
                 " must be in [0, 1]");
  EraseModes().Check(a.remode(), checks);
  checks.Require(a.recount() >= 1, "aug.recount: ", a.recount(), " must be >= 1");
  // The full RandAugment policy is parsed by data::RandAugment when the run starts.
  checks.Require(a.aa().empty() || a.aa() == "none" || absl::StartsWith(a.aa(), "rand"),
                 "aug.aa: '", a.aa(),
                 "' is not a RandAugment policy (e.g. rand-m9-mstd0.5-inc1) or none");
  checks.Require(a.hflip() >= 0 && a.hflip() <= 1, "aug.hflip: ", a.hflip(),
                 " must be in [0, 1]");
  checks.Require(!a.has_color_jitter() || a.color_jitter() >= 0, "aug.color_jitter: ",
                 a.color_jitter(), " must be >= 0");
  CheckMixup(c, checks);
}

}  // namespace

void CheckDataConfig(const ExperimentConfig& config, config::Checks& checks) {
  CheckData(config, checks);
  CheckAugment(config, checks);
}

}  // namespace convnextv2::data
