#include "launcher/sweep.h"

#include <google/protobuf/text_format.h>

#include <filesystem>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace convnextv2::launcher {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

SweepConfig Parse(const std::string& text) {
  SweepConfig s;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &s)) << text;
  return s;
}

// A valid base: synthetic data (no files needed).
constexpr char kBase[] = R"(
  name: "t"
  base_config { data { data_set: "synthetic" } model { nb_classes: 4 } train { seed: 10 }
                aug { aa: "none" reprob: 0 } schedule { warmup_epochs: 0 } }
)";

ExpandOptions Options() {
  ExpandOptions o;
  o.sweep_file_dir = "/cfg";
  o.work_dir = "/home/me";
  o.sweep_dir = "/sweeps/t";
  return o;
}

std::vector<std::vector<std::string>> Assignments(const std::vector<SweepPoint>& points) {
  std::vector<std::vector<std::string>> out;
  for (const SweepPoint& p : points) out.push_back(p.assignments);
  return out;
}

std::string Error(const std::string& text) {
  absl::StatusOr<std::vector<SweepPoint>> p = ExpandSweep(Parse(text), Options());
  EXPECT_FALSE(p.ok()) << text;
  return std::string(p.status().message());
}

TEST(SweepTest, GridIsTheCartesianProductWithTheFirstAxisSlowest) {
  auto points = ExpandSweep(Parse(std::string(kBase) + R"(
    axis { field: "blr" values: "1e-3" values: "2e-3" }
    axis { field: "model.drop_path" values: "0" values: "0.1" values: "0.2" })"),
                            Options());
  ASSERT_TRUE(points.ok()) << points.status();
  ASSERT_EQ(points->size(), 6u);
  EXPECT_THAT(Assignments(*points)[0], ElementsAre("optim.blr=1e-3", "model.drop_path=0"));
  EXPECT_THAT(Assignments(*points)[2], ElementsAre("optim.blr=1e-3", "model.drop_path=0.2"));
  EXPECT_THAT(Assignments(*points)[3], ElementsAre("optim.blr=2e-3", "model.drop_path=0"));
  const SweepPoint& p = (*points)[5];
  EXPECT_EQ(p.name, "task_005");
  EXPECT_DOUBLE_EQ(p.config.optim().blr(), 2e-3);
  EXPECT_DOUBLE_EQ(p.config.model().drop_path(), 0.2);
  EXPECT_EQ(p.config.output().output_dir(), "/sweeps/t/runs/task_005");
  EXPECT_EQ(p.config.train().seed(), 10);  // one repeat: the base seed
  EXPECT_EQ(p.config.data().data_set(), "synthetic");
  EXPECT_EQ(p.config.train().epochs(), 100);  // the finetune defaults under the base
}

TEST(SweepTest, ZipPairsValuesAndRepeatsGetSeeds) {
  auto points = ExpandSweep(Parse(std::string(kBase) + R"(
    combine: ZIP
    repeats: 2
    axis { field: "blr" values: "1e-3" values: "2e-3" }
    axis { field: "drop_path" values: "0" values: "0.1" })"),
                            Options());
  ASSERT_TRUE(points.ok()) << points.status();
  ASSERT_EQ(points->size(), 4u);
  EXPECT_THAT(Assignments(*points)[0],
              ElementsAre("optim.blr=1e-3", "model.drop_path=0", "train.seed=10"));
  EXPECT_THAT(Assignments(*points)[1],
              ElementsAre("optim.blr=1e-3", "model.drop_path=0", "train.seed=11"));
  EXPECT_THAT(Assignments(*points)[3],
              ElementsAre("optim.blr=2e-3", "model.drop_path=0.1", "train.seed=11"));
  EXPECT_EQ((*points)[3].config.train().seed(), 11);

  auto seeded = ExpandSweep(Parse(std::string(kBase) + "repeats: 2 seeds: 7 seeds: 99"), Options());
  ASSERT_TRUE(seeded.ok());
  EXPECT_EQ((*seeded)[0].seed, 7);
  EXPECT_EQ((*seeded)[1].config.train().seed(), 99);
}

TEST(SweepTest, TasksHandleTheSweepsSignalAndWatchItsLeadTime) {
  // Default: TERM (always handled) 300 s before the limit; preempt_signal stays the default.
  auto plain = ExpandSweep(Parse(kBase), Options());
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_EQ((*plain)[0].config.checkpoint().preempt_signal(), "SIGUSR2");
  EXPECT_EQ((*plain)[0].config.checkpoint().preempt_lead_seconds(), 300);
  auto usr1 = ExpandSweep(
      Parse(std::string(kBase) + "slurm { signal: 'usr1' signal_lead_seconds: 90 time: '10' }"),
      Options());
  ASSERT_TRUE(usr1.ok()) << usr1.status();
  EXPECT_EQ((*usr1)[0].config.checkpoint().preempt_signal(), "SIGUSR1");
  EXPECT_EQ((*usr1)[0].config.checkpoint().preempt_lead_seconds(), 90);
  // A lead time the base config sets itself is kept.
  auto own = ExpandSweep(
      Parse(R"(name: "t" base_config { data { data_set: "synthetic" }
                                      aug { aa: "none" reprob: 0 }
                                      checkpoint { preempt_lead_seconds: 0 } })"),
      Options());
  ASSERT_TRUE(own.ok()) << own.status();
  EXPECT_EQ((*own)[0].config.checkpoint().preempt_lead_seconds(), 0);
}

TEST(SweepTest, SetOverridesTheBaseAndPathsResolveAgainstTheUsersDirectory) {
  auto points = ExpandSweep(Parse(std::string(kBase) + R"(
    set: "epochs=2" set: "data.data_path=data/x")"),
                            [] {
                              ExpandOptions o = Options();
                              o.check_paths = false;
                              return o;
                            }());
  ASSERT_TRUE(points.ok()) << points.status();
  ASSERT_EQ(points->size(), 1u);
  EXPECT_EQ((*points)[0].config.train().epochs(), 2);
  EXPECT_EQ((*points)[0].config.data().data_path(), "/home/me/data/x");
}

TEST(SweepTest, ErrorsNameTheAxis) {
  EXPECT_THAT(Error(std::string(kBase) + R"(axis { field: "optim.blrr" values: "1" })"),
              HasSubstr("axis 0 (optim.blrr): unknown field"));
  EXPECT_THAT(Error(std::string(kBase) + R"(
                axis { field: "blr" values: "1e-3" }
                axis { field: "batch_size" values: "32" values: "big" })"),
              HasSubstr("axis 1 (batch_size): value 'big'"));
  EXPECT_THAT(Error(std::string(kBase) + R"(combine: ZIP
                axis { field: "blr" values: "1e-3" values: "2e-3" }
                axis { field: "drop_path" values: "0" })"),
              HasSubstr("axis 1 (drop_path): 1 values but axis 0 has 2"));
  EXPECT_THAT(Error(std::string(kBase) + R"(axis { field: "blr" })"),
              HasSubstr("axis 0 (blr): no values"));
  EXPECT_THAT(Error(std::string(kBase) + R"(axis { field: "blr" values: "1" }
                                           axis { field: "optim.blr" values: "2" })"),
              HasSubstr("axis 1 (optim.blr): field swept twice"));
  EXPECT_THAT(Error(std::string(kBase) + R"(axis { field: "output_dir" values: "/x" })"),
              HasSubstr("do not sweep it"));
}

TEST(SweepTest, ErrorsOfTheSweepAndOfTasks) {
  EXPECT_THAT(Error(R"(name: "x")"), HasSubstr("no base config"));
  SweepConfig bad_name = Parse(kBase);
  bad_name.set_name("a b");
  auto named = ExpandSweep(bad_name, Options());
  ASSERT_FALSE(named.ok());
  EXPECT_THAT(std::string(named.status().message()), HasSubstr("name 'a b' must be"));
  EXPECT_THAT(Error(std::string(kBase) + "repeats: 3 seeds: 1"),
              HasSubstr("seeds: 1 seeds for 3 repeats"));
  EXPECT_THAT(Error(std::string(kBase) + "slurm { signal: 'USR1@x' }"),
              HasSubstr("slurm.signal 'USR1@x'"));
  EXPECT_THAT(Error(std::string(kBase) + "slurm { signal: 'none' }"),
              HasSubstr("slurm.signal 'none' is not a signal name"));
  EXPECT_THAT(Error(std::string(kBase) + "slurm { time: '4 hours' }"),
              HasSubstr("slurm.time: '4 hours' is not a Slurm time"));
  EXPECT_THAT(Error(std::string(kBase) + "slurm { time: '5' signal_lead_seconds: 300 }"),
              HasSubstr("slurm.signal_lead_seconds: 300 s is not shorter than the time limit 5"));
  EXPECT_THAT(Error(std::string(kBase) + "set: 'epochz=3'"), HasSubstr("set 'epochz=3'"));
  // Several processes per run are data-parallel; on GPUs one process per GPU.
  EXPECT_TRUE(ExpandSweep(Parse(std::string(kBase) + "slurm { nodes: 2 ntasks_per_node: 2 }"),
                          Options()).ok());
  EXPECT_THAT(Error(std::string(kBase) + "slurm { ntasks_per_node: 4 gpus_per_node: 2 }"),
              HasSubstr("slurm.ntasks_per_node: 4 processes per node but gpus_per_node is 2"));
  // A task the binary's validator refuses names the task and its values.
  const std::string e = Error(std::string(kBase) + R"(
      axis { field: "batch_size" values: "8" values: "-1" })");
  EXPECT_THAT(e, HasSubstr("1 of 2 tasks are invalid"));
  EXPECT_THAT(e, HasSubstr("task_001 (train.batch_size=-1)"));
  EXPECT_THAT(e, HasSubstr("train.batch_size: -1 must be positive"));
  // The data must exist (CheckPaths) unless turned off.
  EXPECT_THAT(Error(R"(name: "t" base_config { data { data_set: "IDX" data_path: "/no/data" }
                                             aug { aa: "none" reprob: 0 } })"),
              HasSubstr("'/no/data' does not exist"));
  SweepConfig missing_base = Parse(R"(name: "t" base_config_path: "nope.pbtxt")");
  auto p = ExpandSweep(missing_base, Options());
  ASSERT_FALSE(p.ok());
  EXPECT_THAT(std::string(p.status().message()), HasSubstr("base_config_path: "));
  EXPECT_THAT(std::string(p.status().message()), HasSubstr("/cfg/nope.pbtxt"));
}

TEST(SweepTest, SbatchScriptLines) {
  SweepConfig s = Parse(std::string(kBase) + R"(
    slurm { partition: "gpu" account: "proj" qos: "high" time: "04:00:00" nodes: 2
            ntasks_per_node: 4 gpus_per_node: 4 cpus_per_task: 8 mem: "64G" max_parallel: 3
            signal: "USR2" signal_lead_seconds: 90 extra_sbatch_args: "--exclusive" })");
  const std::string script =
      SbatchScript(s, "/sw/t", "/sw/t/bin/finetune", 12, "/src", "abc123", /*git_dirty=*/true);
  for (const char* line :
       {"#!/bin/bash\n", "#SBATCH --job-name=t\n", "#SBATCH --array=0-11%3\n",
        "#SBATCH --output=/sw/t/logs/%A_%a.out\n", "#SBATCH --requeue\n",
        "#SBATCH --signal=USR2@90\n", "#SBATCH --nodes=2\n", "#SBATCH --ntasks-per-node=4\n",
        "#SBATCH --gpus-per-node=4\n", "#SBATCH --cpus-per-task=8\n", "#SBATCH --partition=gpu\n",
        "#SBATCH --account=proj\n", "#SBATCH --qos=high\n", "#SBATCH --time=04:00:00\n",
        "#SBATCH --mem=64G\n", "#SBATCH --exclusive\n", "SWEEP_DIR='/sw/t'\n",
        "BINARY='/sw/t/bin/finetune'\n", "export CONVNEXTV2_SOURCE_DIR='/src'\n",
        "export CONVNEXTV2_GIT_COMMIT='abc123' CONVNEXTV2_GIT_DIRTY=1\n",
        // Rank 0's host from Slurm's own NodeAddr, not from resolving a node name.
        "FIRST_NODE=$(scontrol show hostnames \"$SLURM_JOB_NODELIST\" | head -n 1)\n",
        "  export MASTER_ADDR=$NODE_ADDR\n",
        "srun --kill-on-bad-exit=1 \"$BINARY\" --config=\"$SWEEP_DIR/tasks/$TASK_NAME.pbtxt\"\n",
        "if [[ $rc -eq 75 ]]; then\n",
        "  scontrol requeue \"${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}\"\n",
        "exit $rc\n"}) {
    EXPECT_THAT(script, HasSubstr(line));
  }
  // Defaults: no throttle, TERM 300 s before the limit, no optional directives.
  const std::string plain = SbatchScript(Parse(kBase), "/sw/t", "/b", 2, "/src");
  EXPECT_THAT(plain, HasSubstr("#SBATCH --array=0-1\n"));
  EXPECT_THAT(plain, HasSubstr("#SBATCH --signal=TERM@300\n"));
  EXPECT_THAT(plain, ::testing::Not(HasSubstr("--partition")));
  EXPECT_THAT(plain, ::testing::Not(HasSubstr("--gpus-per-node")));
  EXPECT_THAT(plain, ::testing::Not(HasSubstr("CONVNEXTV2_GIT_COMMIT")));
}

// The example sweep of the README stays valid: 4 tasks over blr x layer_decay on Fashion-MNIST
// (data paths are checked when the dataset is installed, as tools/setup.sh does).
TEST(SweepTest, ExampleSweepConfigsFtExpands) {
  absl::StatusOr<SweepConfig> ft = LoadSweep("configs/ft.pbtxt");
  ASSERT_TRUE(ft.ok()) << ft.status();
  ExpandOptions o = Options();
  o.sweep_file_dir = "configs";
  o.check_paths = std::filesystem::exists("/usr/share/datasets/fashion-mnist");
  absl::StatusOr<std::vector<SweepPoint>> points = ExpandSweep(*ft, o);
  ASSERT_TRUE(points.ok()) << points.status();
  ASSERT_EQ(points->size(), 4u);
  EXPECT_THAT((*points)[3].assignments, ElementsAre("optim.blr=8e-3", "optim.layer_decay=0.8"));
  EXPECT_EQ((*points)[3].config.data().data_set(), "IDX");
  EXPECT_DOUBLE_EQ((*points)[3].config.optim().layer_decay(), 0.8);
}

TEST(SweepTest, SplitArraysRespectsMaxArraySize) {
  using P = std::pair<int, int>;
  EXPECT_THAT(SplitArrays(5, 1001), ElementsAre(P{0, 5}));
  EXPECT_THAT(SplitArrays(2500, 1001), ElementsAre(P{0, 1001}, P{1001, 1001}, P{2002, 498}));
  EXPECT_EQ(ArraySpec(4, 0), "0-3");
  EXPECT_EQ(ArraySpec(4, 2), "0-3%2");
  EXPECT_EQ(TaskName(7), "task_007");
}

}  // namespace
}  // namespace convnextv2::launcher
