#include "convnextv2/record/manifest.h"

#include <fstream>

#include "convnextv2/config/config.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace convnextv2::record {
namespace {

using ::testing::HasSubstr;

std::string TempPath(const std::string& name) {
  return std::string(std::getenv("TEST_TMPDIR")) + "/" + name;
}

RunInfo FakeInfo(const std::string& start) {
  RunInfo info;
  info.host = "node7";
  info.slurm.array_job_id = "55";
  info.slurm.array_task_id = "1";
  info.slurm.node_list = "node[1-2]";
  info.git_commit = "abc123";
  info.git_dirty = true;
  info.build_mode = "opt";
  info.start_time = start;
  info.library_versions = {{"hdf5", "1.10.8"}, {"libtorch", "1.13.0"}};
  return info;
}

TEST(ManifestTest, StartWriteFinishRead) {
  ExperimentConfig config;
  config.mutable_train()->set_seed(9);
  config.mutable_optim()->set_lr(1e-3);
  RunManifest m = StartManifest(config, "finetune", "finetune --seed 9",
                                FakeInfo("2026-01-01T00:00:00Z"), nullptr);
  EXPECT_EQ(m.state(), RunManifest::RUNNING);
  EXPECT_EQ(m.attempts(), 1);
  EXPECT_EQ(m.config_sha256(), Sha256Hex(config::ToText(config)));
  const std::string path = TempPath("manifest.pbtxt");
  ASSERT_TRUE(WriteManifest(path, m).ok());
  FinishManifest(0, "", &m);
  ASSERT_TRUE(WriteManifest(path, m).ok());

  absl::StatusOr<RunManifest> read = ReadManifest(path);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->state(), RunManifest::FINISHED);
  EXPECT_EQ(read->exit_status(), 0);
  EXPECT_EQ(read->end_time().size(), 20u);
  EXPECT_EQ(read->config().train().seed(), 9);
  EXPECT_EQ(read->slurm().array_job_id(), "55");
  EXPECT_EQ(read->git_commit(), "abc123");
  EXPECT_TRUE(read->git_dirty());

  const Attributes a = ManifestAttributes(*read);
  EXPECT_EQ(AttributeText(a, "seed"), "9");
  EXPECT_EQ(AttributeText(a, "config_sha256"), m.config_sha256());
  EXPECT_EQ(AttributeText(a, "version_libtorch"), "1.13.0");
  EXPECT_EQ(AttributeText(a, "git_dirty"), "1");
  EXPECT_EQ(AttributeText(a, "slurm_array_task_id"), "1");
  EXPECT_EQ(AttributeText(a, "host"), "node7");
}

TEST(ManifestTest, ARestartCountsAttemptsAndKeepsTheFirstStart) {
  ExperimentConfig config;
  RunManifest first = StartManifest(config, "finetune", "x", FakeInfo("2026-01-01T00:00:00Z"),
                                    nullptr);
  FinishManifest(75, "preempted", &first);
  EXPECT_EQ(first.state(), RunManifest::FAILED);
  RunInfo requeued = FakeInfo("2026-01-02T00:00:00Z");
  requeued.slurm.node_list = "node[3-4]";
  RunManifest second = StartManifest(config, "finetune", "x", requeued, &first);
  EXPECT_EQ(second.attempts(), 2);
  // The requeued attempt ran on other nodes: both node lists are kept, oldest first.
  ASSERT_EQ(second.attempt_node_lists_size(), 2);
  EXPECT_EQ(second.attempt_node_lists(0), "node[1-2]");
  EXPECT_EQ(second.attempt_node_lists(1), "node[3-4]");
  EXPECT_EQ(second.slurm().node_list(), "node[3-4]");
  EXPECT_EQ(second.first_start_time(), "2026-01-01T00:00:00Z");
  EXPECT_EQ(second.start_time(), "2026-01-02T00:00:00Z");
  EXPECT_FALSE(second.has_end_time());
}

TEST(ManifestTest, ErrorsNameTheFileAndLine) {
  EXPECT_FALSE(ReadManifest(TempPath("none.pbtxt")).ok());
  const std::string bad = TempPath("bad_manifest.pbtxt");
  std::ofstream(bad) << "host: \"a\"\nattempts: \"many\"\n";
  absl::StatusOr<RunManifest> m = ReadManifest(bad);
  ASSERT_FALSE(m.ok());
  EXPECT_THAT(std::string(m.status().message()), HasSubstr("bad_manifest.pbtxt:2:"));
}

}  // namespace
}  // namespace convnextv2::record
