#include "convnextv2/optim/schedule.h"

#include <algorithm>
#include <cmath>

namespace convnextv2::optim {

LrSchedule::LrSchedule(double base_lr, double min_lr, double warmup_epochs, double epochs,
                       int64_t steps_per_epoch)
    : base_lr_(base_lr),
      min_lr_(min_lr),
      warmup_epochs_(warmup_epochs),
      epochs_(epochs),
      steps_per_epoch_(std::max<int64_t>(steps_per_epoch, 1)) {}

LrSchedule LrSchedule::FromConfig(const ExperimentConfig& config, double base_lr,
                                  int64_t steps_per_epoch) {
  const int64_t spe = std::max<int64_t>(steps_per_epoch, 1);
  const double warmup = config.schedule().warmup_steps() > 0
                            ? static_cast<double>(config.schedule().warmup_steps()) / spe
                            : config.schedule().warmup_epochs();
  return LrSchedule(base_lr, config.schedule().min_lr(), warmup, config.train().epochs(), spe);
}

double LrSchedule::At(int64_t step) const {
  const double e = static_cast<double>(step) / steps_per_epoch_;
  if (e < warmup_epochs_) return base_lr_ * e / warmup_epochs_;
  const double span = epochs_ - warmup_epochs_;
  const double progress = span > 0 ? std::min((e - warmup_epochs_) / span, 1.0) : 1.0;
  return min_lr_ + (base_lr_ - min_lr_) * 0.5 * (1.0 + std::cos(M_PI * progress));
}

double CosineValue(double start, double end, int64_t step, int64_t total_steps) {
  if (total_steps <= 0) return end;
  const double progress = std::clamp(static_cast<double>(step) / total_steps, 0.0, 1.0);
  return end + 0.5 * (start - end) * (1.0 + std::cos(M_PI * progress));
}

WeightDecaySchedule::WeightDecaySchedule(double start, double end, int64_t total_steps)
    : start_(start), end_(end), total_steps_(std::max<int64_t>(total_steps, 1)) {}

WeightDecaySchedule WeightDecaySchedule::FromConfig(const ExperimentConfig& config,
                                                    int64_t optimizer_steps_per_epoch) {
  const double wd = config.optim().weight_decay();
  const double end = config.optim().has_weight_decay_end() ? config.optim().weight_decay_end() : wd;
  return WeightDecaySchedule(
      wd, end, static_cast<int64_t>(config.train().epochs()) *
                   std::max<int64_t>(optimizer_steps_per_epoch, 1));
}

double WeightDecaySchedule::At(int64_t optimizer_step) const {
  if (start_ == end_) return start_;
  return CosineValue(start_, end_, optimizer_step, total_steps_);
}

}  // namespace convnextv2::optim
