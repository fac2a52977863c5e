#include "convnextv2/record/metrics_log.h"

#include <cmath>
#include <fstream>
#include <string>

#include "convnextv2/record/run_info.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace convnextv2::record {
namespace {

using ::testing::HasSubstr;

std::string TempPath(const std::string& name) {
  return std::string(std::getenv("TEST_TMPDIR")) + "/" + name;
}

TrainRow Train(int64_t step) {
  TrainRow r;
  r.step = step;
  r.epoch = step / 10;
  r.loss = 2.0 / (step + 1);
  r.lr = 1e-3 * step;
  r.min_lr = 1e-4 * step;
  r.class_acc = 0.01 * step;
  r.images_per_second = 100 + step;
  r.wall_time = 0.5 * step;
  return r;  // weight_decay, grad_norm stay missing
}

EvalRow Eval(int64_t epoch) {
  EvalRow r;
  r.step = epoch * 10 + 9;
  r.epoch = epoch;
  r.acc1 = 50 + epoch;
  r.acc5 = 90 + epoch;
  r.loss = 1.0 / (epoch + 1);
  return r;
}

TEST(MetricsLogTest, RoundTripKeepsEveryValueAndAttribute) {
  const std::string path = TempPath("round_trip.h5");
  Attributes attrs = {{"config", std::string("model { model: \"convnextv2_atto\" }\n")},
                      {"seed", int64_t{42}},
                      {"scale", 0.25}};
  auto writer = MetricsWriter::Create(path, attrs);
  ASSERT_TRUE(writer.ok()) << writer.status();
  for (int64_t s = 0; s < 25; ++s) {
    (*writer)->AddTrain(Train(s));
    if (s % 10 == 9) (*writer)->AddEval(Eval(s / 10));
    if (s == 12) {
      ASSERT_TRUE((*writer)->Flush().ok());  // appends across flushes
    }
  }
  writer->reset();  // the destructor flushes the rest

  absl::StatusOr<MetricsLog> log = ReadMetricsLog(path);
  ASSERT_TRUE(log.ok()) << log.status();
  ASSERT_EQ(log->train.size(), 25u);
  ASSERT_EQ(log->eval.size(), 2u);
  for (int64_t s = 0; s < 25; ++s) {
    const TrainRow want = Train(s);
    const TrainRow& got = log->train[s];
    EXPECT_EQ(got.step, s);
    EXPECT_EQ(got.epoch, want.epoch);
    EXPECT_EQ(got.loss, want.loss);
    EXPECT_EQ(got.lr, want.lr);
    EXPECT_EQ(got.min_lr, want.min_lr);
    EXPECT_EQ(got.class_acc, want.class_acc);
    EXPECT_EQ(got.images_per_second, want.images_per_second);
    EXPECT_EQ(got.wall_time, want.wall_time);
    EXPECT_TRUE(std::isnan(got.grad_norm));
    EXPECT_TRUE(std::isnan(got.weight_decay));
  }
  EXPECT_EQ(log->eval[1].step, 19);
  EXPECT_EQ(log->eval[1].acc1, 51);
  EXPECT_EQ(log->eval[1].acc5, 91);
  EXPECT_TRUE(std::isnan(log->eval[1].ema_acc1));
  EXPECT_EQ(AttributeText(log->attributes, "config"), "model { model: \"convnextv2_atto\" }\n");
  EXPECT_EQ(std::get<int64_t>(log->attributes.at("seed")), 42);
  EXPECT_EQ(std::get<double>(log->attributes.at("scale")), 0.25);
  EXPECT_EQ(AttributeText(log->attributes, "format"), "convnextv2.metrics.v1");
  EXPECT_EQ(TrainValue(log->train[3], "lr"), 3e-3);
  EXPECT_EQ(EvalValue(log->eval[0], "epoch"), 0);
}

TEST(MetricsLogTest, ResumeDropsRowsAfterTheCheckpointSoTheLogEqualsAnUninterruptedOne) {
  // Uninterrupted: steps 0..29, evals after epochs 0, 1, 2.
  const std::string straight = TempPath("straight.h5");
  {
    auto w = MetricsWriter::Create(straight, {});
    ASSERT_TRUE(w.ok());
    for (int64_t s = 0; s < 30; ++s) {
      (*w)->AddTrain(Train(s));
      if (s % 10 == 9) (*w)->AddEval(Eval(s / 10));
    }
  }
  // Interrupted: ran to step 23 (flushed), checkpoint after step 14, resumed from there.
  const std::string resumed = TempPath("resumed.h5");
  {
    auto w = MetricsWriter::Create(resumed, {{"attempt", int64_t{0}}});
    ASSERT_TRUE(w.ok());
    for (int64_t s = 0; s < 24; ++s) {
      (*w)->AddTrain(Train(s));
      if (s % 10 == 9) (*w)->AddEval(Eval(s / 10));
    }
  }
  {
    auto w = MetricsWriter::Resume(resumed, {{"attempt", int64_t{1}}}, /*last_step=*/14);
    ASSERT_TRUE(w.ok()) << w.status();
    for (int64_t s = 15; s < 30; ++s) {
      (*w)->AddTrain(Train(s));
      if (s % 10 == 9) (*w)->AddEval(Eval(s / 10));
    }
  }
  auto a = ReadMetricsLog(straight);
  auto b = ReadMetricsLog(resumed);
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_EQ(a->train.size(), b->train.size());
  ASSERT_EQ(a->eval.size(), b->eval.size());
  for (size_t i = 0; i < a->train.size(); ++i) {
    EXPECT_EQ(a->train[i].step, b->train[i].step);
    EXPECT_EQ(a->train[i].loss, b->train[i].loss);
  }
  for (size_t i = 0; i < a->eval.size(); ++i) EXPECT_EQ(a->eval[i].acc1, b->eval[i].acc1);
  EXPECT_EQ(std::get<int64_t>(b->attributes.at("attempt")), 1);
}

TEST(MetricsLogTest, TruncateAfterStep) {
  const std::string path = TempPath("truncate.h5");
  {
    auto w = MetricsWriter::Create(path, {});
    ASSERT_TRUE(w.ok());
    for (int64_t s = 0; s < 20; ++s) {
      (*w)->AddTrain(Train(s));
      if (s % 10 == 9) (*w)->AddEval(Eval(s / 10));
    }
  }
  ASSERT_TRUE(TruncateAfterStep(path, 9).ok());
  auto log = ReadMetricsLog(path);
  ASSERT_TRUE(log.ok());
  ASSERT_EQ(log->train.size(), 10u);
  EXPECT_EQ(log->train.back().step, 9);
  ASSERT_EQ(log->eval.size(), 1u);  // the eval after step 9 belongs to the kept part
  ASSERT_TRUE(TruncateAfterStep(path, 8).ok());
  log = ReadMetricsLog(path);
  EXPECT_EQ(log->train.size(), 9u);
  EXPECT_EQ(log->eval.size(), 0u);
  ASSERT_TRUE(TruncateAfterStep(path, -1).ok());
  EXPECT_EQ(ReadMetricsLog(path)->train.size(), 0u);
}

TEST(MetricsLogTest, ClearErrorsForMissingAndCorruptFiles) {
  auto missing = ReadMetricsLog(TempPath("nope.h5"));
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("nope.h5: no such metrics file"));

  const std::string bad = TempPath("bad.h5");
  std::ofstream(bad) << "this is not hdf5";
  auto corrupt = ReadMetricsLog(bad);
  ASSERT_FALSE(corrupt.ok());
  EXPECT_THAT(std::string(corrupt.status().message()), HasSubstr("cannot be opened as an HDF5"));
  EXPECT_FALSE(TruncateAfterStep(bad, 3).ok());
  // A resume onto a corrupt file fails instead of silently replacing it (nothing is lost).
  EXPECT_FALSE(MetricsWriter::Resume(bad, {}, 3).ok());

  EXPECT_FALSE(MetricsWriter::Create("/no/such/dir/m.h5", {}).ok());
}

TEST(RunInfoTest, Sha256MatchesKnownVectors) {
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(RunInfoTest, CollectsHostSlurmIdsAndVersions) {
  setenv("SLURM_ARRAY_JOB_ID", "1234", 1);
  setenv("SLURM_ARRAY_TASK_ID", "7", 1);
  const RunInfo info = CollectRunInfo();
  EXPECT_FALSE(info.host.empty());
  EXPECT_EQ(info.slurm.array_job_id, "1234");
  EXPECT_EQ(info.slurm.array_task_id, "7");
  EXPECT_EQ(info.library_versions.at("hdf5"), "1.10.8");
  EXPECT_EQ(info.library_versions.at("protobuf").substr(0, 2), "3.");
  EXPECT_EQ(info.build_mode, "opt");  // .bazelrc builds with -c opt
  EXPECT_EQ(info.start_time.size(), 20u);
  EXPECT_FALSE(info.git_commit.empty());
}

TEST(RunInfoTest, TheLaunchersCommitWins) {
  setenv("CONVNEXTV2_GIT_COMMIT", "feedbeef", 1);
  setenv("CONVNEXTV2_GIT_DIRTY", "1", 1);
  const RunInfo info = CollectRunInfo();
  unsetenv("CONVNEXTV2_GIT_COMMIT");
  unsetenv("CONVNEXTV2_GIT_DIRTY");
  EXPECT_EQ(info.git_commit, "feedbeef");
  EXPECT_TRUE(info.git_dirty);
  EXPECT_THAT(info.git_source, HasSubstr("launcher"));
}

}  // namespace
}  // namespace convnextv2::record
