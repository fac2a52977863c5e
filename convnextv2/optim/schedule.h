// Per-iteration learning-rate and weight-decay schedules, pure functions of (settings, step).
//
//   absl::StatusOr<LrSchedule> s = LrSchedule::FromConfig(config, /*base_lr=*/4e-3,
//                                                         /*steps_per_epoch=*/468);
//   double lr = s->At(step);   // step counts micro-batches from the start of training
//
// With e = step / steps_per_epoch (fractional epochs), every schedule (schedules.h, picked by
// schedule.sched) ramps linearly during warmup, as the official adjust_learning_rate:
// lr = base * e / warmup_epochs; then its entry's value at e. The default, cosine, is the
// official min_lr + (base - min_lr) * (1 + cos(pi * (e - warmup) / (epochs - warmup))) / 2.
// warmup_steps > 0 replaces warmup_epochs by warmup_steps / steps_per_epoch.
#ifndef CONVNEXTV2_OPTIM_SCHEDULE_H_
#define CONVNEXTV2_OPTIM_SCHEDULE_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "convnextv2/optim/schedules.h"
#include "convnextv2/proto/experiment.pb.h"

namespace convnextv2::optim {

class LrSchedule {
 public:
  // The official cosine with warmup.
  LrSchedule(double base_lr, double min_lr, double warmup_epochs, double epochs,
             int64_t steps_per_epoch);
  LrSchedule(const LrScheduleEntry& entry, LrCurve curve, int64_t steps_per_epoch);
  // The schedule schedule.sched names (InvalidArgument naming the known ones otherwise).
  static absl::StatusOr<LrSchedule> FromConfig(const ExperimentConfig& config, double base_lr,
                                               int64_t steps_per_epoch);
  double At(int64_t step) const;
  double warmup_epochs() const { return curve_.warmup_epochs; }
  absl::string_view name() const { return entry_->name; }

 private:
  const LrScheduleEntry* entry_;
  LrCurve curve_;
  int64_t steps_per_epoch_;
};

// The weight-decay schedule, indexed by optimizer step (one per update_freq micro-batches):
// `weight_decay` throughout when weight_decay_end is unset, otherwise the official
// cosine_scheduler(weight_decay, weight_decay_end, epochs, steps_per_epoch) of ConvNeXt:
// value(i) = end + (start - end) * (1 + cos(pi * i / (epochs * steps_per_epoch))) / 2, so the
// last step is just above `end` and anything past the end is `end`. Applies to the groups that
// decay at all (optim::SetWeightDecay). The two are entries of schedules.h.
//
//   WeightDecaySchedule wd = WeightDecaySchedule::FromConfig(config, optimizer_steps_per_epoch);
//   double now = wd.At(epoch * optimizer_steps_per_epoch + step_in_epoch);
class WeightDecaySchedule {
 public:
  WeightDecaySchedule(const WeightDecayScheduleEntry& entry, double start, double end,
                      int64_t total_steps);
  static WeightDecaySchedule FromConfig(const ExperimentConfig& config,
                                        int64_t optimizer_steps_per_epoch);
  double At(int64_t optimizer_step) const;
  int64_t total_steps() const { return total_steps_; }
  absl::string_view name() const { return entry_->name; }

 private:
  const WeightDecayScheduleEntry* entry_;
  double start_, end_;
  int64_t total_steps_;
};

}  // namespace convnextv2::optim

#endif  // CONVNEXTV2_OPTIM_SCHEDULE_H_
