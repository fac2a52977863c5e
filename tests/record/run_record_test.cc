// What a run records about itself (record/run_record.h): manifest.pbtxt and metrics.h5.
#include "convnextv2/record/run_record.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "convnextv2/record/manifest.h"
#include "convnextv2/record/metrics_log.h"
#include "convnextv2/record/task_records.h"

namespace convnextv2::record {
namespace {

namespace fs = std::filesystem;

ExperimentConfig InDir(const std::string& name) {
  const std::string dir = std::string(getenv("TEST_TMPDIR")) + "/" + name;
  fs::remove_all(dir);
  ExperimentConfig c;
  c.mutable_output()->set_output_dir(dir);
  return c;
}

const FinetuneRecord& Task() {
  static const auto* r = new FinetuneRecord(MakeFinetuneRecord({}));
  return *r;
}

TrainRow Row(int64_t step) {
  TrainRow r(Task().declaration);
  r.Set(Task().loop.step, step);
  r.Set(Task().loop.loss, 1.0 / (step + 1));
  return r;
}

TEST(RunRecord, NothingWithoutOutputDir) {
  RunRecord record("finetune", "finetune --epochs 1");
  ASSERT_TRUE(record.Start(ExperimentConfig(), Task().declaration).ok());
  EXPECT_FALSE(record.active());
  record.AddTrain(Row(0));
  EXPECT_TRUE(record.Flush().ok());
  EXPECT_TRUE(record.Finish(absl::OkStatus()).ok());
}

TEST(RunRecord, ManifestAndRowsThroughTheRun) {
  const ExperimentConfig c = InDir("record");
  const std::string dir = c.output().output_dir();
  {
    RunRecord record("finetune", "finetune --epochs 1");
    ASSERT_TRUE(record.Start(c, Task().declaration).ok());
    ASSERT_TRUE(record.active());
    absl::StatusOr<RunManifest> running = record::ReadManifest(dir + "/manifest.pbtxt");
    ASSERT_TRUE(running.ok()) << running.status();
    EXPECT_EQ(running->state(), RunManifest::RUNNING);
    for (int64_t s = 0; s < 3; ++s) record.AddTrain(Row(s));
    ASSERT_TRUE(record.Flush().ok());
    EXPECT_GE(record.WallTime(), 0.0);
    ASSERT_TRUE(record.FinishWithExitStatus(75, "stopped on a signal").ok());
  }
  absl::StatusOr<RunManifest> done = record::ReadManifest(dir + "/manifest.pbtxt");
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(done->exit_status(), 75);
  EXPECT_NE(done->state(), RunManifest::RUNNING);
  absl::StatusOr<record::MetricsLog> log = record::ReadMetricsLog(dir + "/metrics.h5");
  ASSERT_TRUE(log.ok()) << log.status();
  ASSERT_EQ(log->train.rows(), 3u);
  EXPECT_EQ(log->train.Value("loss", 2), 1.0 / 3);
  EXPECT_EQ(record::AttributeText(log->attributes, "exit_status"), "75");

  // A second attempt resumed after step 1 keeps rows 0 and 1 and counts the attempt.
  RunRecord again("finetune", "finetune --epochs 1");
  ASSERT_TRUE(again.Start(c, Task().declaration, /*resume_after_step=*/1).ok());
  again.AddTrain(Row(2));
  ASSERT_TRUE(again.Finish(absl::OkStatus()).ok());
  absl::StatusOr<RunManifest> second = record::ReadManifest(dir + "/manifest.pbtxt");
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->attempts(), 2);
  EXPECT_EQ(second->exit_status(), 0);
  log = record::ReadMetricsLog(dir + "/metrics.h5");
  ASSERT_TRUE(log.ok()) << log.status();
  ASSERT_EQ(log->train.rows(), 3u);
  EXPECT_EQ(log->train.Step(1), 1);
  EXPECT_EQ(log->train.Step(2), 2);
}

TEST(RunRecord, AnUnfinishedRunIsRecordedAsFailed) {
  const ExperimentConfig c = InDir("unfinished");
  {
    RunRecord record("pretrain", "pretrain");
    ASSERT_TRUE(record.Start(c, Task().declaration).ok());
  }
  absl::StatusOr<RunManifest> m =
      record::ReadManifest(c.output().output_dir() + "/manifest.pbtxt");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->exit_status(), 1);
}

}  // namespace
}  // namespace convnextv2::record
