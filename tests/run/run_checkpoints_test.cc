// A run's checkpoints (run/run_checkpoints.h) and the step boundaries that write them
// (run/step_boundary.h), on a two-weight model: no ConvNeXt, no training loop.
#include "convnextv2/run/run_checkpoints.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/nn/modules/linear.h>
#include <torch/optim/sgd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "convnextv2/config/config.h"
#include "convnextv2/run/preemption.h"
#include "convnextv2/run/step_boundary.h"

namespace convnextv2::run {
namespace {

namespace fs = std::filesystem;

// A new, empty output dir (the loop creates it before any save).
std::string Dir(const std::string& name) {
  const std::string d = std::string(getenv("TEST_TMPDIR")) + "/" + name;
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

ExperimentConfig Config(const std::string& dir) {
  ExperimentConfig c = config::ModeDefaults(config::Mode::kFinetune);
  c.mutable_output()->set_output_dir(dir);
  c.mutable_optim()->set_opt("momentum");
  c.mutable_train()->set_epochs(4);
  return c;
}

// A model, its optimizer and their checkpoints.
struct TestRun {
  explicit TestRun(const ExperimentConfig& c, int64_t steps_per_epoch = 10)
      : config(c),
        optimizer(model->parameters(), torch::optim::SGDOptions(0.1).momentum(0.9)),
        ckpts(config, /*writer=*/true, *model, optimizer, steps_per_epoch) {}
  void Step() {
    optimizer.zero_grad();
    model->forward(at::ones({1, 2})).sum().backward();
    optimizer.step();
  }
  ExperimentConfig config;
  torch::nn::Linear model{2, 1};
  torch::optim::SGD optimizer;
  RunCheckpoints ckpts;
};

TEST(RunCheckpoints, FreshWithoutCheckpoints) {
  ExperimentConfig c = Config(Dir("fresh"));
  c.mutable_train()->set_start_epoch(2);
  TestRun run(c);
  absl::StatusOr<LoopState> s = run.ckpts.Resume();
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_FALSE(s->resumed);
  EXPECT_EQ(s->next_epoch, 2);
  EXPECT_EQ(s->next_step, 0);
}

TEST(RunCheckpoints, MidEpochSaveResumesWeightsOptimizerAndPosition) {
  const std::string dir = Dir("mid");
  TestRun a(Config(dir));
  a.Step();
  a.Step();
  LoopState state;
  state.next_epoch = 1;
  state.next_step = 4;
  state.global_step = 14;
  state.best_acc1 = 12.5;
  state.scalars = {{"train.loss_sum", 3.5}, {"train.loss_count", 4}};
  ASSERT_TRUE(a.ckpts.SaveMidEpoch(1, state).ok());
  ASSERT_TRUE(fs::exists(dir + "/checkpoint-1-step4.pth"));

  TestRun b(Config(dir));
  absl::StatusOr<LoopState> s = b.ckpts.Resume();  // auto_resume finds it
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_TRUE(s->resumed);
  EXPECT_EQ(s->next_epoch, 1);
  EXPECT_EQ(s->next_step, 4);
  EXPECT_EQ(s->global_step, 14);
  EXPECT_EQ(s->best_acc1, 12.5);
  EXPECT_EQ(s->scalars, state.scalars);
  EXPECT_TRUE(at::equal(a.model->weight, b.model->weight));
  // The momentum buffers came back too: the next steps are the same.
  a.Step();
  b.Step();
  EXPECT_TRUE(at::equal(a.model->weight, b.model->weight));

  // Another steps_per_epoch is another run: refused with the reason.
  TestRun c(Config(dir), /*steps_per_epoch=*/11);
  absl::StatusOr<LoopState> refused = c.ckpts.Resume();
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("10 steps per epoch, this run has 11"),
            std::string::npos)
      << refused.status();
}

// Optimizer names compare as timm's create_optimizer reads them: in lower case, "nesterov" as
// "sgd"; Nesterov and classic momentum are different optimizers.
TEST(RunCheckpoints, OptimizerNamesCompareAsTimmReadsThem) {
  const std::string dir = Dir("optimizer_names");
  TestRun a(Config(dir));  // opt momentum
  a.Step();
  LoopState state;
  state.next_step = 1;
  state.global_step = 1;
  ASSERT_TRUE(a.ckpts.SaveMidEpoch(0, state).ok());

  ExperimentConfig same = Config(dir);
  same.mutable_optim()->set_opt("Momentum");
  TestRun b(same);
  absl::StatusOr<LoopState> s = b.ckpts.Resume();
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_TRUE(s->resumed);

  ExperimentConfig other = Config(dir);
  other.mutable_optim()->set_opt("nesterov");
  TestRun c(other);
  absl::StatusOr<LoopState> refused = c.ckpts.Resume();
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find(
                "holds momentum optimizer state, the config says optim.opt nesterov"),
            std::string::npos)
      << refused.status();
}

TEST(RunCheckpoints, EpochEndByPolicyReplacesStepCheckpoints) {
  const std::string dir = Dir("policy");
  ExperimentConfig c = Config(dir);
  c.mutable_checkpoint()->set_save_ckpt_freq(2);
  c.mutable_checkpoint()->set_save_ckpt_num(1);
  TestRun run(c);
  LoopState state;
  state.next_step = 3;
  ASSERT_TRUE(run.ckpts.SaveMidEpoch(0, state).ok());
  state.next_step = 0;
  ASSERT_TRUE(run.ckpts.SaveEpochEnd(0, state).ok());  // epoch 1 of every 2: not saved
  EXPECT_FALSE(fs::exists(dir + "/checkpoint-0.pth"));
  EXPECT_TRUE(fs::exists(dir + "/checkpoint-0-step3.pth"));
  ASSERT_TRUE(run.ckpts.SaveEpochEnd(1, state).ok());
  EXPECT_TRUE(fs::exists(dir + "/checkpoint-1.pth"));
  EXPECT_FALSE(fs::exists(dir + "/checkpoint-0-step3.pth"));  // superseded
  ASSERT_TRUE(run.ckpts.SaveEpochEnd(3, state).ok());          // the last epoch always
  EXPECT_TRUE(fs::exists(dir + "/checkpoint-3.pth"));
  EXPECT_FALSE(fs::exists(dir + "/checkpoint-1.pth"));  // save_ckpt_num 1
}

TEST(RunCheckpoints, PeriodicSaveDue) {
  ExperimentConfig c = Config(Dir("periodic"));
  c.mutable_checkpoint()->set_save_ckpt_steps(5);
  TestRun run(c);
  EXPECT_TRUE(run.ckpts.PeriodicSaveDue(/*global_step=*/15, /*step=*/5));
  EXPECT_FALSE(run.ckpts.PeriodicSaveDue(16, 6));
  EXPECT_FALSE(run.ckpts.PeriodicSaveDue(10, 0));  // an epoch's start has its own checkpoint
  c.mutable_output()->clear_output_dir();
  TestRun nowhere(c);
  EXPECT_FALSE(nowhere.ckpts.PeriodicSaveDue(15, 5));
}

TEST(TruncateEpochLog, KeepsRowsBeforeTheNextEpoch) {
  const std::string path = Dir("log") + ".txt";
  std::ofstream(path) << "{\"train_loss\": 1, \"epoch\": 0, \"n_parameters\": 3}\n"
                      << "{\"train_loss\": 2, \"epoch\": 1, \"n_parameters\": 3}\n"
                      << "{\"train_loss\": 3, \"epoch\": 2, \"n_parameters\": 3}\n";
  ASSERT_TRUE(TruncateEpochLog(path, 2).ok());
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  EXPECT_EQ(s.str(), "{\"train_loss\": 1, \"epoch\": 0, \"n_parameters\": 3}\n"
                     "{\"train_loss\": 2, \"epoch\": 1, \"n_parameters\": 3}\n");
  EXPECT_TRUE(TruncateEpochLog(path + ".missing", 0).ok());
}

TEST(ConfigChanges, NamesTheFieldsThatDiffer) {
  ExperimentConfig before = Config("/x");
  ExperimentConfig after = before;
  after.mutable_optim()->set_lr(0.002);
  after.mutable_train()->set_epochs(9);
  const std::vector<std::string> changes = ConfigChanges(config::ToText(before), after);
  ASSERT_EQ(changes.size(), 2u);
  EXPECT_EQ(changes[0].rfind("optim.lr: ", 0), 0u) << changes[0];
  EXPECT_EQ(changes[1], "train.epochs: 4 -> 9");
  EXPECT_TRUE(ConfigChanges("not a config {", after).empty());
}

TEST(StepBoundaries, StopsWhereAskedAndSavesPeriodically) {
  const std::string dir = Dir("boundaries");
  ExperimentConfig c = Config(dir);
  c.mutable_checkpoint()->set_save_ckpt_steps(4);
  TestRun run(c);
  const PreemptionWatch watch(/*extra_signal=*/0);
  StepBoundaries boundaries(run.ckpts, watch, /*comm=*/nullptr, /*stop_epoch=*/1,
                            /*stop_step=*/6);
  LoopState state;
  auto meters = [] { return std::map<std::string, double>{{"train.loss_sum", 2.0}}; };
  // A periodic save (global step 4) that does not stop; none where the epoch (re)started.
  state.global_step = 4;
  absl::StatusOr<bool> stop = boundaries.Reached(0, 4, /*first_step=*/0, &state, meters);
  ASSERT_TRUE(stop.ok()) << stop.status();
  EXPECT_FALSE(*stop);
  EXPECT_TRUE(fs::exists(dir + "/checkpoint-0-step4.pth"));
  EXPECT_EQ(state.scalars.at("train.loss_sum"), 2.0);
  state.global_step = 8;
  stop = boundaries.Reached(0, 8, /*first_step=*/8, &state, meters);
  ASSERT_TRUE(stop.ok());
  EXPECT_FALSE(*stop);
  EXPECT_FALSE(fs::exists(dir + "/checkpoint-0-step8.pth"));
  // The stop point: saved there, then true.
  state.global_step = 16;
  stop = boundaries.Reached(1, 6, 0, &state, meters);
  ASSERT_TRUE(stop.ok());
  EXPECT_TRUE(*stop);
  EXPECT_EQ(state.next_epoch, 1);
  EXPECT_EQ(state.next_step, 6);
  EXPECT_TRUE(fs::exists(dir + "/checkpoint-1-step6.pth"));
  EXPECT_FALSE(fs::exists(dir + "/checkpoint-0-step4.pth"));  // the newer one replaces it
}

// A data-parallel checkpoint holds rank 0's sums under their keys and rank r's under "rank<r>.":
// each rank resumes with its own; on fewer ranks rank 0 takes the missing ranks' sums.
TEST(RankScalars, GivesEachRankItsOwnSums) {
  const std::map<std::string, double> saved = {{"train.loss_sum", 1.5},
                                               {"train.loss_count", 2},
                                               {"rank1.train.loss_sum", 2.5},
                                               {"rank1.train.loss_count", 2},
                                               {"rank2.train.loss_sum", 4},
                                               {"rank2.train.loss_count", 2}};
  using M = std::map<std::string, double>;
  EXPECT_EQ(RankScalars(saved, 0, 3), (M{{"train.loss_sum", 1.5}, {"train.loss_count", 2}}));
  EXPECT_EQ(RankScalars(saved, 1, 3), (M{{"train.loss_sum", 2.5}, {"train.loss_count", 2}}));
  EXPECT_EQ(RankScalars(saved, 2, 3), (M{{"train.loss_sum", 4}, {"train.loss_count", 2}}));
  EXPECT_EQ(RankScalars(saved, 0, 1), (M{{"train.loss_sum", 8}, {"train.loss_count", 6}}));
  EXPECT_EQ(RankScalars(saved, 1, 2), (M{{"train.loss_sum", 2.5}, {"train.loss_count", 2}}));
  EXPECT_EQ(RankScalars(saved, 0, 2), (M{{"train.loss_sum", 5.5}, {"train.loss_count", 4}}));
  // A single-process checkpoint resumed on two ranks: rank 1 starts from nothing.
  const M single = {{"train.loss_sum", 3}, {"train.loss_count", 4}};
  EXPECT_EQ(RankScalars(single, 0, 2), single);
  EXPECT_TRUE(RankScalars(single, 1, 2).empty());
  // Keys that only look like a rank's are dropped, not misread.
  EXPECT_TRUE(RankScalars({{"rankx.train.loss_sum", 1}}, 0, 1).empty());
}

}  // namespace
}  // namespace convnextv2::run
