#include "convnextv2/record/metrics_log.h"

#include <cmath>
#include <fstream>
#include <string>

#include "convnextv2/record/run_info.h"
#include "convnextv2/record/task_records.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace convnextv2::record {
namespace {

using ::testing::HasSubstr;

std::string TempPath(const std::string& name) {
  return std::string(std::getenv("TEST_TMPDIR")) + "/" + name;
}

const Declaration& Finetune() {
  static const FinetuneRecord* r = new FinetuneRecord(MakeFinetuneRecord({}));
  return r->declaration;
}

NamedValues Train(int64_t step) {
  return {{"step", step},
          {"epoch", step / 10},
          {"loss", 2.0 / (step + 1)},
          {"lr", 1e-3 * step},
          {"min_lr", 1e-4 * step},
          {"class_acc", 0.01 * step},
          {"images_per_second", 100 + step},
          {"wall_time", 0.5 * step}};  // weight_decay, grad_norm stay missing
}

NamedValues Eval(int64_t epoch) {
  return {{"step", epoch * 10 + 9},
          {"epoch", epoch},
          {"acc1", 50 + epoch},
          {"acc5", 90 + epoch},
          {"loss", 1.0 / (epoch + 1)}};
}

double Get(const NamedValues& row, const std::string& name) {
  for (const auto& [n, v] : row) {
    if (n == name) return v;
  }
  return kMissing;
}

TEST(MetricsLogTest, RoundTripKeepsEveryValueAndAttribute) {
  const std::string path = TempPath("round_trip.h5");
  Attributes attrs = {{"config", std::string("model { model: \"convnextv2_atto\" }\n")},
                      {"seed", int64_t{42}},
                      {"scale", 0.25}};
  auto writer = MetricsWriter::Create(path, attrs, Finetune());
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
  ASSERT_EQ(log->train.rows(), 25u);
  ASSERT_EQ(log->eval.rows(), 2u);
  const Table& t = log->train;
  for (int64_t s = 0; s < 25; ++s) {
    const NamedValues want = Train(s);
    EXPECT_EQ(t.Step(s), s);
    EXPECT_EQ(t.Epoch(s), Get(want, "epoch"));
    for (const char* c : {"loss", "lr", "min_lr", "class_acc", "images_per_second", "wall_time"}) {
      EXPECT_EQ(t.Value(c, s), Get(want, c)) << c << " at step " << s;
    }
    EXPECT_TRUE(std::isnan(t.Value("grad_norm", s)));
    EXPECT_TRUE(std::isnan(t.Value("weight_decay", s)));
  }
  EXPECT_EQ(log->eval.Step(1), 19);
  EXPECT_EQ(log->eval.Value("acc1", 1), 51);
  EXPECT_EQ(log->eval.Value("acc5", 1), 91);
  EXPECT_TRUE(std::isnan(log->eval.Value("ema_acc1", 1)));
  EXPECT_EQ(AttributeText(log->attributes, "config"), "model { model: \"convnextv2_atto\" }\n");
  EXPECT_EQ(std::get<int64_t>(log->attributes.at("seed")), 42);
  EXPECT_EQ(std::get<double>(log->attributes.at("scale")), 0.25);
  EXPECT_EQ(AttributeText(log->attributes, "format"), "convnextv2.metrics.v2");
  EXPECT_EQ(log->format_version, 2);
  EXPECT_EQ(log->train.Value("lr", 3), 3e-3);
  EXPECT_EQ(log->eval.Value("epoch", 0), 0);
  // Every declared column is in the file, with its declared type.
  for (const ColumnSpec& c : Finetune().columns(Group::kTrain)) {
    ASSERT_NE(t.Find(c.name), nullptr) << c.name;
    EXPECT_EQ(t.Find(c.name)->type, c.type) << c.name;
  }
}

TEST(MetricsLogTest, ResumeDropsRowsAfterTheCheckpointSoTheLogEqualsAnUninterruptedOne) {
  // Uninterrupted: steps 0..29, evals after epochs 0, 1, 2.
  const std::string straight = TempPath("straight.h5");
  {
    auto w = MetricsWriter::Create(straight, {}, Finetune());
    ASSERT_TRUE(w.ok());
    for (int64_t s = 0; s < 30; ++s) {
      (*w)->AddTrain(Train(s));
      if (s % 10 == 9) (*w)->AddEval(Eval(s / 10));
    }
  }
  // Interrupted: ran to step 23 (flushed), checkpoint after step 14, resumed from there.
  const std::string resumed = TempPath("resumed.h5");
  {
    auto w = MetricsWriter::Create(resumed, {{"attempt", int64_t{0}}}, Finetune());
    ASSERT_TRUE(w.ok());
    for (int64_t s = 0; s < 24; ++s) {
      (*w)->AddTrain(Train(s));
      if (s % 10 == 9) (*w)->AddEval(Eval(s / 10));
    }
  }
  {
    auto w = MetricsWriter::Resume(resumed, {{"attempt", int64_t{1}}}, /*last_step=*/14,
                                   Finetune());
    ASSERT_TRUE(w.ok()) << w.status();
    for (int64_t s = 15; s < 30; ++s) {
      (*w)->AddTrain(Train(s));
      if (s % 10 == 9) (*w)->AddEval(Eval(s / 10));
    }
  }
  auto a = ReadMetricsLog(straight);
  auto b = ReadMetricsLog(resumed);
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_EQ(a->train.rows(), b->train.rows());
  ASSERT_EQ(a->eval.rows(), b->eval.rows());
  for (size_t i = 0; i < a->train.rows(); ++i) {
    EXPECT_EQ(a->train.Step(i), b->train.Step(i));
    EXPECT_EQ(a->train.Value("loss", i), b->train.Value("loss", i));
  }
  for (size_t i = 0; i < a->eval.rows(); ++i) {
    EXPECT_EQ(a->eval.Value("acc1", i), b->eval.Value("acc1", i));
  }
  EXPECT_EQ(std::get<int64_t>(b->attributes.at("attempt")), 1);
}

TEST(MetricsLogTest, TruncateAfterStep) {
  const std::string path = TempPath("truncate.h5");
  {
    auto w = MetricsWriter::Create(path, {}, Finetune());
    ASSERT_TRUE(w.ok());
    for (int64_t s = 0; s < 20; ++s) {
      (*w)->AddTrain(Train(s));
      if (s % 10 == 9) (*w)->AddEval(Eval(s / 10));
    }
  }
  ASSERT_TRUE(TruncateAfterStep(path, 9).ok());
  auto log = ReadMetricsLog(path);
  ASSERT_TRUE(log.ok());
  ASSERT_EQ(log->train.rows(), 10u);
  EXPECT_EQ(log->train.Step(9), 9);
  ASSERT_EQ(log->eval.rows(), 1u);  // the eval after step 9 belongs to the kept part
  ASSERT_TRUE(TruncateAfterStep(path, 8).ok());
  log = ReadMetricsLog(path);
  EXPECT_EQ(log->train.rows(), 9u);
  EXPECT_EQ(log->eval.rows(), 0u);
  ASSERT_TRUE(TruncateAfterStep(path, -1).ok());
  EXPECT_EQ(ReadMetricsLog(path)->train.rows(), 0u);
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
  EXPECT_FALSE(MetricsWriter::Resume(bad, {}, 3, Finetune()).ok());

  EXPECT_FALSE(MetricsWriter::Create("/no/such/dir/m.h5", {}, Finetune()).ok());
}

// A column this binary does not declare (a newer binary's, another task's) is kept with its
// name, type and values through Resume and TruncateAfterStep; new rows leave it absent.
TEST(MetricsLogTest, UnknownColumnsSurviveResumeAndTruncation) {
  const std::string path = TempPath("unknown.h5");
  Declaration newer;
  newer.AddTrainInt({.name = "step"});
  newer.AddTrainInt({.name = "epoch"});
  newer.AddTrain({.name = "loss"});
  newer.AddTrain({.name = "future_float"});
  newer.AddTrainInt({.name = "future_int"});
  newer.AddEvalInt({.name = "step"});
  newer.AddEvalInt({.name = "epoch"});
  {
    auto w = MetricsWriter::Create(path, {}, newer);
    ASSERT_TRUE(w.ok()) << w.status();
    for (int64_t s = 0; s < 6; ++s) {
      (*w)->AddTrain({{"step", s}, {"loss", 1.0 + s}, {"future_float", 0.5 * s},
                      {"future_int", 7 * s}});
    }
  }
  {
    auto w = MetricsWriter::Resume(path, {}, /*last_step=*/3, Finetune());
    ASSERT_TRUE(w.ok()) << w.status();
    (*w)->AddTrain({{"step", 4}, {"loss", 9.0}});
  }
  ASSERT_TRUE(TruncateAfterStep(path, 4).ok());
  absl::StatusOr<MetricsLog> log = ReadMetricsLog(path);
  ASSERT_TRUE(log.ok()) << log.status();
  ASSERT_EQ(log->train.rows(), 5u);
  const Column* f = log->train.Find("future_float");
  const Column* i = log->train.Find("future_int");
  ASSERT_NE(f, nullptr);
  ASSERT_NE(i, nullptr);
  EXPECT_EQ(f->type, ColumnType::kFloat64);
  EXPECT_EQ(i->type, ColumnType::kInt64);
  for (int64_t s = 0; s < 4; ++s) {
    EXPECT_EQ(log->train.Value("future_float", s), 0.5 * s);
    EXPECT_EQ(log->train.Value("future_int", s), 7 * s);
  }
  EXPECT_TRUE(std::isnan(log->train.Value("future_float", 4)));  // written by this binary
  EXPECT_TRUE(std::isnan(log->train.Value("future_int", 4)));
  EXPECT_EQ(log->train.Value("loss", 4), 9.0);
  EXPECT_NE(log->train.Find("class_acc"), nullptr);  // the declared columns were added
}

// A file of a newer format is read (compare, report) but never rewritten here.
TEST(MetricsLogTest, ANewerFormatIsReadButNotResumedOrTruncated) {
  const std::string path = TempPath("newer.h5");
  {
    auto w = MetricsWriter::Create(path, {}, Finetune());
    ASSERT_TRUE(w.ok());
    (*w)->AddTrain(Train(0));
    ASSERT_TRUE((*w)->SetAttributes({{"format", std::string("convnextv2.metrics.v99")}}).ok());
  }
  absl::StatusOr<MetricsLog> log = ReadMetricsLog(path);
  ASSERT_TRUE(log.ok()) << log.status();
  EXPECT_EQ(log->format_version, 99);
  EXPECT_EQ(log->train.rows(), 1u);
  absl::StatusOr<std::unique_ptr<MetricsWriter>> resumed =
      MetricsWriter::Resume(path, {}, 0, Finetune());
  ASSERT_FALSE(resumed.ok());
  EXPECT_EQ(resumed.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(resumed.status().message()),
              HasSubstr("is of format convnextv2.metrics.v99, newer than this binary's "
                        "convnextv2.metrics.v2"));
  EXPECT_FALSE(TruncateAfterStep(path, 0).ok());
  EXPECT_EQ(ReadMetricsLog(path)->format_version, 99);  // untouched

  // Not ours at all: no format, or another one.
  ASSERT_TRUE(MetricsWriter::Create(path, {}, Finetune()).ok());
  {
    auto w = MetricsWriter::Create(path, {}, Finetune());
    ASSERT_TRUE((*w)->SetAttributes({{"format", std::string("something.else")}}).ok());
  }
  EXPECT_THAT(std::string(ReadMetricsLog(path).status().message()),
              HasSubstr("format attribute is 'something.else', not convnextv2.metrics.v<N>"));
}

// HDF5 converts between integer and float types silently: the reader checks the stored types.
TEST(MetricsLogTest, StoredTypesAreChecked) {
  const std::string path = TempPath("types.h5");
  auto write = [&path](bool float_step, bool int_loss) {
    Declaration d;
    if (float_step) {
      d.AddTrain({.name = "step"});
    } else {
      d.AddTrainInt({.name = "step"});
    }
    d.AddTrainInt({.name = "epoch"});
    if (int_loss) {
      d.AddTrainInt({.name = "loss"});
    } else {
      d.AddTrain({.name = "loss"});
    }
    d.AddEvalInt({.name = "step"});
    d.AddEvalInt({.name = "epoch"});
    ASSERT_TRUE(MetricsWriter::Create(path, {}, d).ok());
  };
  write(/*float_step=*/true, /*int_loss=*/false);
  EXPECT_THAT(std::string(ReadMetricsLog(path).status().message()),
              HasSubstr("dataset /train/step is stored as float64, not int64"));
  write(false, /*int_loss=*/true);
  EXPECT_THAT(std::string(ReadMetricsLog(path).status().message()),
              HasSubstr("dataset /train/loss is stored as int64, not float64"));
  write(false, false);
  EXPECT_TRUE(ReadMetricsLog(path).ok());
  // step and epoch are required.
  Declaration no_epoch;
  no_epoch.AddTrainInt({.name = "step"});
  no_epoch.AddEvalInt({.name = "step"});
  no_epoch.AddEvalInt({.name = "epoch"});
  ASSERT_TRUE(MetricsWriter::Create(path, {}, no_epoch).ok());
  EXPECT_THAT(std::string(ReadMetricsLog(path).status().message()),
              HasSubstr("dataset /train/epoch is missing"));
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
