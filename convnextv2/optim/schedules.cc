#include "convnextv2/optim/schedules.h"

#include <algorithm>
#include <cmath>

#include "absl/base/attributes.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace convnextv2::optim {
namespace {

// The official adjust_learning_rate after warmup: a half-cosine from base_lr to min_lr over the
// epochs left after warmup, min_lr past the end.
double Cosine(const LrCurve& c, double e) {
  const double span = c.epochs - c.warmup_epochs;
  const double progress = span > 0 ? std::min((e - c.warmup_epochs) / span, 1.0) : 1.0;
  return c.min_lr + (c.base_lr - c.min_lr) * 0.5 * (1.0 + std::cos(M_PI * progress));
}

// timm's StepLRScheduler, stepped on epochs: base_lr * decay_rate^(epoch // decay_epochs).
double Step(const LrCurve& c, double e) {
  return c.base_lr * std::pow(c.decay_rate, std::floor(std::floor(e) / c.decay_epochs));
}

// base_lr * decay_rate^(milestones <= epoch): the decay lands at the start of each milestone
// epoch, as torch's MultiStepLR. (timm's MultiStepLRScheduler counts milestones <= epoch + 1,
// one epoch earlier.)
double MultiStep(const LrCurve& c, double e) {
  const double epoch = std::floor(e);
  const auto passed = std::count_if(c.milestones.begin(), c.milestones.end(),
                                    [epoch](int m) { return m <= epoch; });
  return c.base_lr * std::pow(c.decay_rate, static_cast<double>(passed));
}

double Constant(const LrCurve& c, double /*e*/) { return c.base_lr; }

void CheckCosine(const ScheduleConfig& s, config::Checks& checks) {
  checks.Require(s.min_lr() >= 0, "schedule.min_lr: ", s.min_lr(), " must be >= 0");
}

void CheckDecayRate(const ScheduleConfig& s, config::Checks& checks) {
  checks.Require(s.decay_rate() > 0 && s.decay_rate() <= 1, "schedule.decay_rate: ",
                 s.decay_rate(), " must be in (0, 1] for sched ", s.sched(),
                 " (the factor each decay multiplies the lr by)");
}

void CheckStep(const ScheduleConfig& s, config::Checks& checks) {
  checks.Require(s.decay_epochs() > 0, "schedule.decay_epochs: ", s.decay_epochs(),
                 " must be positive for sched step");
  CheckDecayRate(s, checks);
}

void CheckMultiStep(const ScheduleConfig& s, config::Checks& checks) {
  checks.Require(s.decay_milestones_size() > 0,
                 "schedule.decay_milestones: sched multistep needs the epochs to decay at "
                 "(e.g. --decay_milestones 30 60 90)");
  bool increasing = true;
  for (int i = 0; i < s.decay_milestones_size(); ++i) {
    const int m = s.decay_milestones(i);
    checks.Require(m > 0, "schedule.decay_milestones: ", m, " must be a positive epoch");
    increasing = increasing && (i == 0 || m > s.decay_milestones(i - 1));
  }
  checks.Require(increasing, "schedule.decay_milestones: ",
                 absl::StrJoin(s.decay_milestones(), " "), " must be increasing");
  CheckDecayRate(s, checks);
}

ABSL_CONST_INIT const LrScheduleEntry kCosine = {"cosine", Cosine, CheckCosine};
ABSL_CONST_INIT const LrScheduleEntry kStep = {"step", Step, CheckStep};
ABSL_CONST_INIT const LrScheduleEntry kMultiStep = {"multistep", MultiStep, CheckMultiStep};
ABSL_CONST_INIT const LrScheduleEntry kConstant = {"constant", Constant, nullptr};

double ConstantDecay(double start, double /*end*/, int64_t /*step*/, int64_t /*total*/) {
  return start;
}

double CosineDecay(double start, double end, int64_t step, int64_t total_steps) {
  if (start == end) return start;
  return CosineValue(start, end, step, total_steps);
}

void CheckWeightDecayEnd(const OptimConfig& o, config::Checks& checks) {
  checks.Require(o.weight_decay_end() >= 0, "optim.weight_decay_end: ", o.weight_decay_end(),
                 " must be >= 0");
}

ABSL_CONST_INIT const WeightDecayScheduleEntry kConstantDecay = {"constant", ConstantDecay,
                                                                 nullptr};
ABSL_CONST_INIT const WeightDecayScheduleEntry kCosineDecay = {"cosine", CosineDecay,
                                                               CheckWeightDecayEnd};

}  // namespace

double CosineValue(double start, double end, int64_t step, int64_t total_steps) {
  if (total_steps <= 0) return end;
  const double progress = std::clamp(static_cast<double>(step) / total_steps, 0.0, 1.0);
  return end + 0.5 * (start - end) * (1.0 + std::cos(M_PI * progress));
}

const std::vector<const LrScheduleEntry*>& RegisteredLrSchedules() {
  static const auto* const kSchedules = new std::vector<const LrScheduleEntry*>{
      &kCosine, &kStep, &kMultiStep, &kConstant,
  };
  return *kSchedules;
}

absl::StatusOr<const LrScheduleEntry*> FindLrSchedule(absl::string_view name) {
  for (const LrScheduleEntry* entry : RegisteredLrSchedules()) {
    if (entry->name == name) return entry;
  }
  return absl::NotFoundError(absl::StrCat(
      "'", name, "' is not one of: ",
      absl::StrJoin(RegisteredLrSchedules(), ", ",
                    [](std::string* out, const LrScheduleEntry* e) {
                      absl::StrAppend(out, e->name);
                    })));
}

const WeightDecayScheduleEntry& WeightDecayScheduleOf(const OptimConfig& optim) {
  return optim.has_weight_decay_end() ? kCosineDecay : kConstantDecay;
}

void CheckScheduleConfig(const ExperimentConfig& config, config::Checks& checks) {
  const ScheduleConfig& s = config.schedule();
  absl::StatusOr<const LrScheduleEntry*> entry = FindLrSchedule(s.sched());
  if (!entry.ok()) {
    checks.Add(absl::StrCat("schedule.sched: ", entry.status().message()));
  } else if ((*entry)->check != nullptr) {
    (*entry)->check(s, checks);
  }
  // warmup_epochs >= epochs is allowed: the official adjust_learning_rate then warms up for the
  // whole run (the linear ramp, cut off where training ends; no cosine phase).
  checks.Require(s.warmup_epochs() >= 0, "schedule.warmup_epochs: ", s.warmup_epochs(),
                 " must be >= 0");
  const WeightDecayScheduleEntry& wd = WeightDecayScheduleOf(config.optim());
  if (wd.check != nullptr) wd.check(config.optim(), checks);
}

}  // namespace convnextv2::optim
