// The schedule registry: each schedule's lr at named steps, warmup before every one, the
// default cosine bitwise equal to the formula the code had before the registry, and the
// schedules' own checks.
#include "convnextv2/optim/schedules.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <set>
#include <string>

#include "convnextv2/optim/schedule.h"

namespace convnextv2::optim {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// 10 epochs of 100 steps, peak 4e-3, 2 warmup epochs.
ExperimentConfig Config(const std::string& sched) {
  ExperimentConfig c;
  c.mutable_train()->set_epochs(10);
  c.mutable_schedule()->set_warmup_epochs(2);
  c.mutable_schedule()->set_sched(sched);
  return c;
}

LrSchedule Make(const ExperimentConfig& c) {
  absl::StatusOr<LrSchedule> s = LrSchedule::FromConfig(c, 4e-3, 100);
  EXPECT_TRUE(s.ok()) << s.status();
  return *s;
}

std::vector<std::string> Errors(const ExperimentConfig& c) {
  config::Checks checks(/*pretrain=*/false);
  CheckScheduleConfig(c, checks);
  return checks.errors();
}

TEST(FindLrSchedule, TimmNamesOnceEach) {
  std::set<absl::string_view> names;
  for (const LrScheduleEntry* e : RegisteredLrSchedules()) {
    EXPECT_TRUE(names.insert(e->name).second) << "registered twice: " << e->name;
  }
  EXPECT_EQ(names, (std::set<absl::string_view>{"cosine", "step", "multistep", "constant"}));
  EXPECT_EQ(ExperimentConfig().schedule().sched(), "cosine");  // the official schedule
}

TEST(FindLrSchedule, UnknownNameListsTheKnownOnes) {
  absl::StatusOr<const LrScheduleEntry*> e = FindLrSchedule("plateau");
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(e.status().message(), "'plateau' is not one of: cosine, step, multistep, constant");
  absl::StatusOr<LrSchedule> s = LrSchedule::FromConfig(Config("Cosine"), 1e-3, 10);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.status().message()),
              HasSubstr("schedule.sched: 'Cosine' is not one of: cosine, step"));
  EXPECT_THAT(Errors(Config("tanh")),
              ElementsAre("schedule.sched: 'tanh' is not one of: cosine, step, multistep, "
                          "constant"));
}

// The LrSchedule::At of the code before the registry, copied: the default must not move.
double BeforeTheRegistry(double base, double min_lr, double warmup, double epochs, int64_t spe,
                         int64_t step) {
  const double e = static_cast<double>(step) / spe;
  if (e < warmup) return base * e / warmup;
  const double span = epochs - warmup;
  const double progress = span > 0 ? std::min((e - warmup) / span, 1.0) : 1.0;
  return min_lr + (base - min_lr) * 0.5 * (1.0 + std::cos(M_PI * progress));
}

TEST(LrSchedule, DefaultCosineIsBitwiseTheFormulaBefore) {
  ExperimentConfig c;  // main_finetune.py's defaults: warmup 20, min_lr 1e-6, cosine
  c.mutable_train()->set_epochs(30);
  const LrSchedule s = *LrSchedule::FromConfig(c, 4e-3, 37);
  EXPECT_EQ(s.name(), "cosine");
  for (int64_t step : {0, 1, 36, 37, 369, 739, 740, 741, 800, 1000, 1109, 1110, 5000}) {
    EXPECT_EQ(s.At(step), BeforeTheRegistry(4e-3, 1e-6, 20, 30, 37, step)) << step;
  }
  // And the positional constructor the tests use is the same entry.
  const LrSchedule p(1.5e-4, 0.0, 40, 800, 1251);
  for (int64_t step : {0, 50039, 50040, 600000, 1000799}) {
    EXPECT_EQ(p.At(step), BeforeTheRegistry(1.5e-4, 0.0, 40, 800, 1251, step)) << step;
  }
}

TEST(LrSchedule, EverySchedWarmsUpTheSameWay) {
  for (const char* sched : {"cosine", "step", "multistep", "constant"}) {
    ExperimentConfig c = Config(sched);
    c.mutable_schedule()->add_decay_milestones(5);
    const LrSchedule s = Make(c);
    EXPECT_EQ(s.At(0), 0.0) << sched;
    EXPECT_DOUBLE_EQ(s.At(50), 4e-3 * 0.5 / 2) << sched;
    EXPECT_DOUBLE_EQ(s.At(199), 4e-3 * 1.99 / 2) << sched;
    EXPECT_DOUBLE_EQ(s.At(200), 4e-3) << sched;  // the peak where warmup ends
  }
}

TEST(LrSchedule, StepDecaysEveryDecayEpochsCountedFromEpochZero) {
  ExperimentConfig c = Config("step");
  c.mutable_schedule()->set_decay_epochs(3);
  c.mutable_schedule()->set_decay_rate(0.5);
  const LrSchedule s = Make(c);
  EXPECT_DOUBLE_EQ(s.At(299), 4e-3);        // epoch 2: 2 // 3 = 0
  EXPECT_DOUBLE_EQ(s.At(300), 2e-3);        // epoch 3: one decay
  EXPECT_DOUBLE_EQ(s.At(599), 2e-3);
  EXPECT_DOUBLE_EQ(s.At(600), 1e-3);        // epoch 6: two
  EXPECT_DOUBLE_EQ(s.At(999), 5e-4);        // epoch 9: three
  EXPECT_DOUBLE_EQ(s.At(1200), 4e-3 / 16);  // past the end it keeps decaying, as timm's
  // Fractional decay_epochs decay on whole epochs (timm steps on epochs): 2.5 -> epochs 3, 5, 8.
  c.mutable_schedule()->set_decay_epochs(2.5);
  const LrSchedule f = Make(c);
  EXPECT_DOUBLE_EQ(f.At(250), 4e-3);  // epoch 2.5 is still epoch 2
  EXPECT_DOUBLE_EQ(f.At(300), 2e-3);
  EXPECT_DOUBLE_EQ(f.At(499), 2e-3);
  EXPECT_DOUBLE_EQ(f.At(500), 1e-3);
}

TEST(LrSchedule, MultiStepDecaysAtEachMilestone) {
  ExperimentConfig c = Config("multistep");
  for (int m : {3, 7}) c.mutable_schedule()->add_decay_milestones(m);
  const LrSchedule s = Make(c);  // decay_rate 0.1, timm's default
  EXPECT_DOUBLE_EQ(s.At(299), 4e-3);
  EXPECT_DOUBLE_EQ(s.At(300), 4e-4);
  EXPECT_DOUBLE_EQ(s.At(699), 4e-4);
  EXPECT_DOUBLE_EQ(s.At(700), 4e-5);
  EXPECT_DOUBLE_EQ(s.At(999), 4e-5);
  // A milestone inside warmup counts once warmup is over.
  c.mutable_schedule()->set_decay_milestones(0, 1);
  EXPECT_DOUBLE_EQ(Make(c).At(150), 4e-3 * 1.5 / 2);
  EXPECT_DOUBLE_EQ(Make(c).At(200), 4e-4);
}

TEST(LrSchedule, ConstantIsThePeakAfterWarmup) {
  const LrSchedule s = Make(Config("constant"));
  for (int64_t step : {200, 555, 999, 5000}) EXPECT_EQ(s.At(step), 4e-3) << step;
  ExperimentConfig c = Config("constant");
  c.mutable_schedule()->set_warmup_steps(50);  // warmup_steps apply to every sched too
  EXPECT_DOUBLE_EQ(Make(c).At(25), 2e-3);
  EXPECT_EQ(Make(c).At(50), 4e-3);
}

TEST(CheckScheduleConfig, DefaultsAndEachSchedsOwnChecks) {
  EXPECT_THAT(Errors(ExperimentConfig()), IsEmpty());
  ExperimentConfig c = Config("step");
  c.mutable_schedule()->set_decay_rate(1.5);
  c.mutable_schedule()->set_decay_epochs(0);
  c.mutable_schedule()->set_min_lr(-1);  // cosine's setting: not step's to check
  EXPECT_THAT(Errors(c), ElementsAre("schedule.decay_epochs: 0 must be positive for sched step",
                                     HasSubstr("schedule.decay_rate: 1.5 must be in (0, 1] for "
                                               "sched step")));
  c.mutable_schedule()->set_decay_rate(0);
  c.mutable_schedule()->set_decay_epochs(30);
  EXPECT_THAT(Errors(c), ElementsAre(HasSubstr("schedule.decay_rate: 0 must be in (0, 1]")));
  c.mutable_schedule()->set_sched("multistep");
  c.mutable_schedule()->set_decay_rate(0.2);
  EXPECT_THAT(Errors(c), ElementsAre(HasSubstr("schedule.decay_milestones: sched multistep "
                                               "needs the epochs")));
  for (int m : {30, 20, -1}) c.mutable_schedule()->add_decay_milestones(m);
  EXPECT_THAT(Errors(c), ElementsAre("schedule.decay_milestones: -1 must be a positive epoch",
                                     "schedule.decay_milestones: 30 20 -1 must be increasing"));
  c.mutable_schedule()->set_sched("cosine");  // decay_* are not read: not checked
  EXPECT_THAT(Errors(c), ElementsAre("schedule.min_lr: -1 must be >= 0"));
  c.mutable_schedule()->set_sched("constant");
  c.mutable_schedule()->set_warmup_epochs(-2);
  EXPECT_THAT(Errors(c), ElementsAre("schedule.warmup_epochs: -2 must be >= 0"));
}

TEST(WeightDecaySchedule, ByNameFromWeightDecayEnd) {
  ExperimentConfig c;
  c.mutable_train()->set_epochs(2);
  EXPECT_EQ(WeightDecaySchedule::FromConfig(c, 10).name(), "constant");
  c.mutable_optim()->set_weight_decay_end(-0.1);
  EXPECT_EQ(WeightDecaySchedule::FromConfig(c, 10).name(), "cosine");
  EXPECT_THAT(Errors(c), ElementsAre("optim.weight_decay_end: -0.1 must be >= 0"));
  c.mutable_optim()->set_weight_decay_end(0.05);  // = weight_decay: the cosine is flat
  const WeightDecaySchedule flat = WeightDecaySchedule::FromConfig(c, 10);
  EXPECT_EQ(flat.At(0), 0.05);
  EXPECT_EQ(flat.At(13), 0.05);
}

}  // namespace
}  // namespace convnextv2::optim
