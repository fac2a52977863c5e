#include "convnextv2/dist/env.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <string>

namespace convnextv2::dist {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

EnvLookup Env(std::map<std::string, std::string> vars) {
  return [vars](const char* name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

TEST(DistEnvTest, SingleProcessWithoutLauncher) {
  absl::StatusOr<DistEnv> env = ResolveDistEnv(DistributedConfig(), Env({}));
  ASSERT_TRUE(env.ok()) << env.status();
  EXPECT_FALSE(env->distributed());
  EXPECT_EQ(env->rank, 0);
  EXPECT_EQ(env->world_size, 1);
}

TEST(DistEnvTest, Torchrun) {
  absl::StatusOr<DistEnv> env = ResolveDistEnv(
      DistributedConfig(), Env({{"RANK", "3"}, {"WORLD_SIZE", "4"}, {"LOCAL_RANK", "1"},
                                {"LOCAL_WORLD_SIZE", "2"}, {"MASTER_ADDR", "node7"},
                                {"MASTER_PORT", "29400"}}));
  ASSERT_TRUE(env.ok()) << env.status();
  EXPECT_TRUE(env->distributed());
  EXPECT_EQ(env->rank, 3);
  EXPECT_EQ(env->world_size, 4);
  EXPECT_EQ(env->local_rank, 1);
  EXPECT_EQ(env->local_world_size, 2);
  EXPECT_EQ(env->master_addr, "node7");
  EXPECT_EQ(env->master_port, 29400);
  EXPECT_EQ(env->source, "torchrun environment");
}

TEST(DistEnvTest, TorchrunNeedsMasterOrDistUrl) {
  absl::StatusOr<DistEnv> env =
      ResolveDistEnv(DistributedConfig(), Env({{"RANK", "0"}, {"WORLD_SIZE", "2"}}));
  ASSERT_FALSE(env.ok());
  EXPECT_THAT(std::string(env.status().message()), HasSubstr("MASTER_ADDR is not set"));

  DistributedConfig config;
  config.set_dist_url("tcp://10.0.0.5:23456");
  env = ResolveDistEnv(config, Env({{"RANK", "1"}, {"WORLD_SIZE", "2"}}));
  ASSERT_TRUE(env.ok()) << env.status();
  EXPECT_EQ(env->master_addr, "10.0.0.5");
  EXPECT_EQ(env->master_port, 23456);
}

TEST(DistEnvTest, BadValuesNameTheVariable) {
  absl::StatusOr<DistEnv> env =
      ResolveDistEnv(DistributedConfig(), Env({{"RANK", "x"}, {"WORLD_SIZE", "2"}}));
  ASSERT_FALSE(env.ok());
  EXPECT_THAT(std::string(env.status().message()), HasSubstr("RANK='x' is not an integer"));

  env = ResolveDistEnv(DistributedConfig(),
                       Env({{"RANK", "2"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "h"},
                            {"MASTER_PORT", "1"}}));
  ASSERT_FALSE(env.ok());
  EXPECT_THAT(std::string(env.status().message()), HasSubstr("rank 2 of world size 2"));

  env = ResolveDistEnv(DistributedConfig(),
                       Env({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "h"},
                            {"MASTER_PORT", "70000"}}));
  ASSERT_FALSE(env.ok());
  EXPECT_THAT(std::string(env.status().message()), HasSubstr("MASTER_PORT=70000"));

  DistributedConfig config;
  config.set_dist_url("file:///tmp/x");
  env = ResolveDistEnv(config, Env({}));
  ASSERT_FALSE(env.ok());
  EXPECT_THAT(std::string(env.status().message()), HasSubstr("distributed.dist_url"));

  config = DistributedConfig();
  config.set_world_size(8);
  env = ResolveDistEnv(config, Env({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "h"},
                                    {"MASTER_PORT", "1234"}}));
  ASSERT_FALSE(env.ok());
  EXPECT_THAT(std::string(env.status().message()),
              HasSubstr("distributed.world_size is 8 but the torchrun environment says 2"));
}

TEST(DistEnvTest, SlurmStep) {
  absl::StatusOr<DistEnv> env = ResolveDistEnv(
      DistributedConfig(),
      Env({{"SLURM_PROCID", "5"}, {"SLURM_NTASKS", "8"}, {"SLURM_STEP_NUM_TASKS", "6"},
           {"SLURM_LOCALID", "1"}, {"SLURM_NODEID", "2"},
           {"SLURM_STEP_TASKS_PER_NODE", "2(x3)"}, {"SLURM_STEP_NODELIST", "gpu[07-09]"},
           {"SLURM_JOB_ID", "123456"}}));
  ASSERT_TRUE(env.ok()) << env.status();
  EXPECT_EQ(env->rank, 5);
  EXPECT_EQ(env->world_size, 6);
  EXPECT_EQ(env->local_rank, 1);
  EXPECT_EQ(env->local_world_size, 2);
  EXPECT_EQ(env->master_addr, "gpu07");
  EXPECT_EQ(env->master_port, PortForJob(123456));
  EXPECT_EQ(env->source, "Slurm");
}

TEST(DistEnvTest, SlurmBatchScriptWithSeveralTasksFailsFast) {
  absl::StatusOr<DistEnv> env = ResolveDistEnv(
      DistributedConfig(), Env({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "4"},
                                {"SLURM_JOB_NODELIST", "n1"}}));
  ASSERT_FALSE(env.ok());
  EXPECT_THAT(std::string(env.status().message()),
              HasSubstr("SLURM_NTASKS=4 tasks but this process was not started by srun"));
  // One task in a batch script: a single process.
  env = ResolveDistEnv(DistributedConfig(), Env({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "1"},
                                                 {"SLURM_JOB_NODELIST", "n1"}}));
  ASSERT_TRUE(env.ok()) << env.status();
  EXPECT_FALSE(env->distributed());
}

TEST(DistEnvTest, SlurmLocalIdOutsideTheNodeTasks) {
  absl::StatusOr<DistEnv> env = ResolveDistEnv(
      DistributedConfig(),
      Env({{"SLURM_PROCID", "1"}, {"SLURM_STEP_NUM_TASKS", "2"}, {"SLURM_LOCALID", "3"},
           {"SLURM_STEP_TASKS_PER_NODE", "2"}, {"SLURM_STEP_NODELIST", "n1"}}));
  ASSERT_FALSE(env.ok());
  EXPECT_THAT(std::string(env.status().message()), HasSubstr("SLURM_LOCALID=3"));
}

TEST(DistEnvTest, MasterAddrOverridesSlurmHost) {
  absl::StatusOr<DistEnv> env = ResolveDistEnv(
      DistributedConfig(),
      Env({{"SLURM_PROCID", "0"}, {"SLURM_STEP_NUM_TASKS", "2"}, {"SLURM_LOCALID", "0"},
           {"SLURM_STEP_TASKS_PER_NODE", "2"}, {"SLURM_STEP_NODELIST", "n1"},
           {"MASTER_ADDR", "10.1.1.1"}, {"MASTER_PORT", "4000"}}));
  ASSERT_TRUE(env.ok()) << env.status();
  EXPECT_EQ(env->master_addr, "10.1.1.1");
  EXPECT_EQ(env->master_port, 4000);
}

TEST(HostlistTest, Expands) {
  absl::StatusOr<std::vector<std::string>> hosts = ExpandHostlist("n[01-03,7],gpu5,a[9-10]b");
  ASSERT_TRUE(hosts.ok()) << hosts.status();
  EXPECT_THAT(*hosts, ElementsAre("n01", "n02", "n03", "n7", "gpu5", "a9b", "a10b"));
  EXPECT_FALSE(ExpandHostlist("n[1-").ok());
  EXPECT_FALSE(ExpandHostlist("n[3-1]").ok());
}

TEST(TasksPerNodeTest, Expands) {
  absl::StatusOr<std::vector<int>> counts = ExpandTasksPerNode("2(x3),1");
  ASSERT_TRUE(counts.ok()) << counts.status();
  EXPECT_THAT(*counts, ElementsAre(2, 2, 2, 1));
  EXPECT_FALSE(ExpandTasksPerNode("2(x").ok());
  EXPECT_FALSE(ExpandTasksPerNode("0").ok());
}

}  // namespace
}  // namespace convnextv2::dist
