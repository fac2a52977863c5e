#include "convnextv2/optim/schedule.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace convnextv2::optim {

LrSchedule::LrSchedule(double base_lr, double min_lr, double warmup_epochs, double epochs,
                       int64_t steps_per_epoch)
    : LrSchedule(**FindLrSchedule("cosine"),
                 LrCurve{base_lr, min_lr, warmup_epochs, epochs, /*decay_epochs=*/1,
                         /*decay_rate=*/1, /*milestones=*/{}},
                 steps_per_epoch) {}

LrSchedule::LrSchedule(const LrScheduleEntry& entry, LrCurve curve, int64_t steps_per_epoch)
    : entry_(&entry),
      curve_(std::move(curve)),
      steps_per_epoch_(std::max<int64_t>(steps_per_epoch, 1)) {}

absl::StatusOr<LrSchedule> LrSchedule::FromConfig(const ExperimentConfig& config, double base_lr,
                                                  int64_t steps_per_epoch) {
  const ScheduleConfig& s = config.schedule();
  absl::StatusOr<const LrScheduleEntry*> entry = FindLrSchedule(s.sched());
  if (!entry.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("schedule.sched: ", entry.status().message()));
  }
  const int64_t spe = std::max<int64_t>(steps_per_epoch, 1);
  LrCurve curve;
  curve.base_lr = base_lr;
  curve.min_lr = s.min_lr();
  curve.warmup_epochs = s.warmup_steps() > 0 ? static_cast<double>(s.warmup_steps()) / spe
                                             : s.warmup_epochs();
  curve.epochs = config.train().epochs();
  curve.decay_epochs = s.decay_epochs();
  curve.decay_rate = s.decay_rate();
  curve.milestones.assign(s.decay_milestones().begin(), s.decay_milestones().end());
  return LrSchedule(**entry, std::move(curve), spe);
}

double LrSchedule::At(int64_t step) const {
  const double e = static_cast<double>(step) / steps_per_epoch_;
  if (e < curve_.warmup_epochs) return curve_.base_lr * e / curve_.warmup_epochs;
  return entry_->after_warmup(curve_, e);
}

WeightDecaySchedule::WeightDecaySchedule(const WeightDecayScheduleEntry& entry, double start,
                                         double end, int64_t total_steps)
    : entry_(&entry),
      start_(start),
      end_(end),
      total_steps_(std::max<int64_t>(total_steps, 1)) {}

WeightDecaySchedule WeightDecaySchedule::FromConfig(const ExperimentConfig& config,
                                                    int64_t optimizer_steps_per_epoch) {
  const OptimConfig& o = config.optim();
  const double wd = o.weight_decay();
  const double end = o.has_weight_decay_end() ? o.weight_decay_end() : wd;
  return WeightDecaySchedule(
      WeightDecayScheduleOf(o), wd, end,
      static_cast<int64_t>(config.train().epochs()) *
          std::max<int64_t>(optimizer_steps_per_epoch, 1));
}

double WeightDecaySchedule::At(int64_t optimizer_step) const {
  return entry_->value(start_, end_, optimizer_step, total_steps_);
}

}  // namespace convnextv2::optim
