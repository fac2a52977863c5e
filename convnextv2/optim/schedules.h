// The registry of learning-rate schedules by timm's --sched names, and of the weight-decay
// schedules, each entry with the checks of the settings it reads.
//
//   absl::StatusOr<const LrScheduleEntry*> e = FindLrSchedule("step");
//   LrCurve curve{.base_lr = 4e-3, .decay_epochs = 30, .decay_rate = 0.1};
//   double lr = (*e)->after_warmup(curve, /*epoch=*/31.5);   // 4e-4
//
// Every schedule starts with the official linear warmup from 0 (schedule.warmup_epochs or
// warmup_steps), then follows its entry at the same (not shifted) epoch, as timm's schedulers
// with warmup_prefix=False do. No libtorch: config::Validate and the launcher use this;
// LrSchedule (schedule.h) evaluates an entry at each step. Adding a schedule is a row in
// schedules.cc, its settings in ScheduleConfig, and its test.
#ifndef CONVNEXTV2_OPTIM_SCHEDULES_H_
#define CONVNEXTV2_OPTIM_SCHEDULES_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "convnextv2/config/checks.h"
#include "convnextv2/proto/experiment.pb.h"

namespace convnextv2::optim {

// What a learning-rate schedule reads: the run's peak lr and length and the schedule.* fields.
struct LrCurve {
  double base_lr = 0;
  double min_lr = 0;
  double warmup_epochs = 0;  // fractional when warmup_steps sets it
  double epochs = 0;
  double decay_epochs = 1;
  double decay_rate = 1;
  std::vector<int> milestones;  // increasing epochs
};

struct LrScheduleEntry {
  absl::string_view name;  // timm's --sched value
  // The lr at fractional epoch `epoch` >= curve.warmup_epochs (epochs since the run started).
  double (*after_warmup)(const LrCurve& curve, double epoch);
  // Checks of the settings only this schedule reads; nullptr: none.
  void (*check)(const ScheduleConfig& schedule, config::Checks& checks);
};

// Every registered lr schedule, in the order errors list them.
const std::vector<const LrScheduleEntry*>& RegisteredLrSchedules();

// The entry for `name` (exact, as timm compares it); NotFound "'x' is not one of: cosine, ..."
// otherwise.
absl::StatusOr<const LrScheduleEntry*> FindLrSchedule(absl::string_view name);

// Half-cosine from `start` to `end` over total steps (the official cosine_scheduler without
// warmup): the weight-decay schedule when weight_decay_end is set. `end` past the last step.
double CosineValue(double start, double end, int64_t step, int64_t total_steps);

// The weight-decay schedules, indexed by optimizer step over `total_steps` steps.
struct WeightDecayScheduleEntry {
  absl::string_view name;
  double (*value)(double start, double end, int64_t step, int64_t total_steps);
  // Checks of the settings only this schedule reads; nullptr: none.
  void (*check)(const OptimConfig& optim, config::Checks& checks);
};

// "cosine" (the official cosine_scheduler to optim.weight_decay_end) when weight_decay_end is
// set, else "constant" (optim.weight_decay throughout): the official script has no name for it.
const WeightDecayScheduleEntry& WeightDecayScheduleOf(const OptimConfig& optim);

// schedule.* and the weight-decay schedule's settings, for CheckOptimConfig: the name, warmup,
// then the chosen entries' own checks.
void CheckScheduleConfig(const ExperimentConfig& config, config::Checks& checks);

}  // namespace convnextv2::optim

#endif  // CONVNEXTV2_OPTIM_SCHEDULES_H_
