// The training loop on its own, with a fake task whose losses are known in closed form: one
// scalar weight w (starting at 1), loss w^2 for every batch, plain SGD with lr 0.25, so each
// optimizer step halves w and the loss of optimizer step k is 0.25^k. No ConvNeXt anywhere.
#include "convnextv2/run/loop.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/nn/module.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "convnextv2/checkpoint/file.h"
#include "convnextv2/config/config.h"
#include "convnextv2/record/metrics_log.h"
#include "convnextv2/data/synthetic_dataset.h"
#include "convnextv2/data/transforms.h"
#include "convnextv2/tensorboard/event.pb.h"
#include "convnextv2/tensorboard/event_writer.h"

namespace convnextv2::run {
namespace {

namespace fs = std::filesystem;

struct ScalarImpl : torch::nn::Module {
  ScalarImpl() { w = register_parameter("w", at::ones({1})); }
  at::Tensor w;
};

// Every image becomes 3 x 2 x 2 zeros: the fake task looks only at the batch's indices.
class ZeroTransform : public data::Transform {
 public:
  at::Tensor Apply(const data::Image&, data::SampleRng&) const override {
    return at::zeros({3, 2, 2});
  }
  int output_size() const override { return 2; }
};

struct Call {
  int epoch;
  int64_t step;
  std::vector<int64_t> indices;
  float w;  // the weight the forward pass saw
  bool operator==(const Call& o) const {
    return std::tie(epoch, step, indices, w) == std::tie(o.epoch, o.step, o.indices, o.w);
  }
};

// The loop's columns, "w" (the weight the forward pass saw: a meter, in log.txt) and acc1.
record::TaskRecord FakeRecord(record::TrainFloat* w) {
  record::TaskRecord r;
  record::Declaration& d = r.declaration;
  r.loop.step = d.AddTrainInt({.name = "step"});
  r.loop.epoch = d.AddTrainInt({.name = "epoch"});
  r.loop.optimizer_step = d.AddTrainInt({.name = "optimizer_step"});
  r.loop.loss = d.AddTrain({.name = "loss", .meter = true, .rank_mean = true,
                            .log_key = "train_loss", .tensorboard = {.tag = "loss/w2"},
                            .progress = {record::ProgressField::kRecentAndMean, "loss"}});
  *w = d.AddTrain({.name = "w", .meter = true, .log_key = "w"});
  r.loop.images_per_second = d.AddTrain({.name = "images_per_second", .timing = true});
  r.loop.wall_time = d.AddTrain({.name = "wall_time", .timing = true});
  r.eval.step = d.AddEvalInt({.name = "step"});
  r.eval.epoch = d.AddEvalInt({.name = "epoch"});
  r.eval.acc1 = d.AddEval({.name = "acc1", .tensorboard = {.tag = "perf/test_acc1"}});
  r.eval.wall_time = d.AddEval({.name = "wall_time", .timing = true});
  return r;
}

class FakeTask : public TrainingTask {
 public:
  absl::Status Build(const ExperimentConfig& config, const Runtime& runtime) override {
    config_ = &config;
    dataset_ = std::make_unique<data::SyntheticDataset>(24, 2, 4, 1);
    loader_ = std::make_unique<data::Loader>(
        dataset_.get(), &transform_,
        data::LoaderOptions(config, data::Split::kTrain, runtime.rank, runtime.world_size,
                            runtime.device));
    model_ = std::make_shared<ScalarImpl>();
    return absl::OkStatus();
  }
  const data::Loader& train_loader() const override { return *loader_; }
  std::shared_ptr<torch::nn::Module> model() const override { return model_; }
  std::string DescribeModel() const override { return "model scalar"; }
  train::RecipeOptions recipe_options() override {
    train::RecipeOptions o;
    o.groups = [this]() -> absl::StatusOr<std::vector<optim::ParamGroup>> {
      return std::vector<optim::ParamGroup>{{"all", 0.0, 1.0, -1, {"w"}, {model_->w}}};
    };
    return o;
  }
  const record::TaskRecord& task_record() const override { return record_; }
  absl::StatusOr<at::Tensor> Loss(const data::Batch& batch, int epoch, int64_t step,
                                  train::TrainingRecipe& recipe) override {
    calls.push_back({epoch, step, batch.indices, model_->w.item<float>()});
    if (nan_at_step == step) return model_->w.sum() * std::nan("");
    return (model_->w * model_->w).sum();
  }
  void FinishStep(const StepInfo& step, record::TrainRow* row) override {
    row->Set(w_, calls.back().w);
    if (step.result.boundary) boundaries.push_back(step.step);
  }
  std::string NonFiniteAdvice() const override { return "Fake advice."; }
  void SummarizeEpoch(const EpochInfo& epoch, const LoopMeters& meters) override {
    loss_mean = meters.at(record_.loop.loss).mean();
    w_mean = meters.at(w_).mean();
  }
  absl::StatusOr<std::optional<record::EvalRow>> Evaluate(int epoch, LoopState* state,
                                                           RunCheckpoints&) override {
    evaluated.push_back(epoch);
    evaluated_after_calls.push_back(calls.size());
    record::EvalRow row(record_.declaration);
    row.Set(record_.eval.acc1, 100.0 * (epoch + 1) / 10);
    return row;
  }
  // log.txt: {"train_loss": ..., "w": ..., "epoch": e, "n_parameters": 1, "first_step": s}
  std::vector<record::LogEntry> ExtraLogEntries(const EpochInfo& epoch) const override {
    return {{"first_step", static_cast<double>(epoch.first_step), "%d"}};
  }

  std::vector<Call> calls;
  std::vector<int64_t> boundaries;
  std::vector<int> evaluated;
  std::vector<size_t> evaluated_after_calls;
  int64_t nan_at_step = -1;
  double loss_mean = 0, w_mean = 0;

 private:
  const ExperimentConfig* config_ = nullptr;
  std::unique_ptr<data::SyntheticDataset> dataset_;
  ZeroTransform transform_;
  std::unique_ptr<data::Loader> loader_;
  std::shared_ptr<ScalarImpl> model_;
  record::TrainFloat w_;
  record::TaskRecord record_ = FakeRecord(&w_);
};

std::string Dir(const std::string& name) {
  const std::string d = std::string(getenv("TEST_TMPDIR")) + "/" + name;
  fs::remove_all(d);
  return d;
}

// 24 images in batches of 4: 6 steps per epoch.
ExperimentConfig FakeRun(const std::string& out_dir, int update_freq = 1) {
  ExperimentConfig c = config::ModeDefaults(config::Mode::kFinetune);
  absl::StatusOr<ExperimentConfig> parsed = config::ParseText(R"pb(
    train { batch_size: 4 epochs: 3 num_threads: 1 print_freq: 2 seed: 3 }
    schedule { warmup_epochs: 0 min_lr: 0.25 }
    optim { opt: "momentum" momentum: 0 lr: 0.25 weight_decay: 0 }
    data { num_workers: 1 }
  )pb", "test");
  EXPECT_TRUE(parsed.ok()) << parsed.status();
  c.MergeFrom(*parsed);
  c.mutable_train()->set_update_freq(update_freq);
  c.mutable_output()->set_output_dir(out_dir);
  return c;
}

std::vector<std::string> LogRows(const std::string& dir) {
  std::ifstream in(dir + "/log.txt");
  std::stringstream s;
  s << in.rdbuf();
  return absl::StrSplit(s.str(), '\n', absl::SkipEmpty());
}

TEST(LoopMeters, SumsRestoreAndReduced) {
  record::Declaration d;
  d.AddTrainInt({.name = "step"});
  const record::TrainFloat loss = d.AddTrain({.name = "loss", .meter = true, .rank_mean = true});
  const record::TrainFloat acc = d.AddTrain({.name = "class_acc", .meter = true,
                                             .meter_key = "acc"});
  const record::TrainFloat lr = d.AddTrain({.name = "lr"});  // no meter
  LoopMeters m(d);
  m[loss].Add(2.0);
  m[loss].Add(4.0);
  record::TrainRow row(d);
  row.Set(acc, 0.5);
  row.Set(lr, 1.0);
  m.AddRow(row);  // the row's meter columns that are not NaN: acc only
  const std::map<std::string, double> sums = m.Sums();
  EXPECT_EQ(sums.at("train.loss_sum"), 6.0);
  EXPECT_EQ(sums.at("train.loss_count"), 2.0);
  EXPECT_EQ(sums.at("train.acc_sum"), 0.5);
  EXPECT_EQ(sums.at("train.acc_count"), 1.0);
  EXPECT_EQ(sums.size(), 4u);  // lr has no meter
  LoopMeters restored(d);
  restored.Restore(sums);
  EXPECT_EQ(restored.at(loss).mean(), 3.0);
  EXPECT_EQ(restored.at(acc).mean(), 0.5);
  ASSERT_EQ(restored.Reduced().size(), 1u);  // only "loss" is averaged over ranks
  EXPECT_EQ(restored.Reduced()[0], &restored[loss]);
  // A column without a meter is a declaration error, caught where it is used.
  EXPECT_DEATH(m[lr], "lr is not declared with a meter");
}

TEST(Loop, LossesAreTheKnownOnesAndEveryBatchRunsOnceInOrder) {
  const std::string dir = Dir("plain");
  FakeTask task;
  absl::StatusOr<LoopResult> r = RunTraining("fake", FakeRun(dir), {}, task);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->preempted);
  EXPECT_EQ(r->n_parameters, 1);
  ASSERT_EQ(task.calls.size(), 18u);
  for (size_t i = 0; i < task.calls.size(); ++i) {
    EXPECT_EQ(task.calls[i].epoch, static_cast<int>(i / 6));
    EXPECT_EQ(task.calls[i].step, static_cast<int64_t>(i % 6));
    EXPECT_EQ(task.calls[i].w, std::pow(0.5f, static_cast<float>(i))) << i;  // halved each step
    EXPECT_EQ(task.calls[i].indices.size(), 4u);
  }
  EXPECT_EQ(task.evaluated, (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(task.evaluated_after_calls, (std::vector<size_t>{6, 12, 18}));  // after each epoch
  // The epoch's mean loss: steps 12..17 of the run have loss 0.25^k.
  double mean = 0;
  for (int k = 12; k < 18; ++k) mean += std::pow(0.25, k) / 6;
  EXPECT_DOUBLE_EQ(task.loss_mean, mean);
  const std::vector<std::string> rows = LogRows(dir);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0], absl::StrFormat("{\"train_loss\": %.10g, \"w\": %.10g, \"epoch\": 0, "
                                     "\"n_parameters\": 1, \"first_step\": 0}",
                                     (1 + 0.25 + 0.0625 + std::pow(0.25, 3) + std::pow(0.25, 4) +
                                      std::pow(0.25, 5)) / 6,
                                     (1 + 0.5 + 0.25 + 0.125 + 0.0625 + 0.03125) / 6));
  for (const char* f : {"config.pbtxt", "manifest.pbtxt", "metrics.h5", "checkpoint-2.pth"}) {
    EXPECT_TRUE(fs::exists(dir + "/" + f)) << f;
  }
}

TEST(Loop, AccumulationStepsOnlyAtGroupEnds) {
  FakeTask task;
  absl::StatusOr<LoopResult> r = RunTraining("fake", FakeRun("", /*update_freq=*/3), {}, task);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(task.calls.size(), 18u);
  for (size_t i = 0; i < task.calls.size(); ++i) {
    // w / 3 backpropagated 3 times is one step on w^2: w halves once per group of 3.
    EXPECT_EQ(task.calls[i].w, std::pow(0.5f, static_cast<float>(i / 3))) << i;
  }
  EXPECT_EQ(task.boundaries, (std::vector<int64_t>{2, 5, 2, 5, 2, 5}));
}

// metrics.h5's `step` is the global micro-batch index (in its eval rows too: the last
// micro-batch before the evaluation), `optimizer_step` the optimizer step a micro-batch's
// gradients go into: with update_freq 2, 6 micro-batches and 3 optimizer steps per epoch.
TEST(Loop, StepCountsMicroBatchesAndOptimizerStepCountsOptimizerSteps) {
  const std::string dir = Dir("update_freq2");
  FakeTask task;
  ASSERT_TRUE(RunTraining("fake", FakeRun(dir, /*update_freq=*/2), {}, task).ok());
  absl::StatusOr<record::MetricsLog> log = record::ReadMetricsLog(dir + "/metrics.h5");
  ASSERT_TRUE(log.ok()) << log.status();
  ASSERT_EQ(log->train.rows(), 18u);
  for (int64_t i = 0; i < 18; ++i) {
    EXPECT_EQ(log->train.Step(i), i);
    EXPECT_EQ(log->train.Epoch(i), i / 6);
    EXPECT_EQ(log->train.Int("optimizer_step", i), (i / 6) * 3 + (i % 6) / 2) << i;
  }
  ASSERT_EQ(log->eval.rows(), 3u);
  EXPECT_EQ(log->eval.Step(0), 5);
  EXPECT_EQ(log->eval.Step(2), 17);
  EXPECT_EQ(log->eval.Value("acc1", 2), 30);
}

TEST(Loop, StopMidEpochAndResumeEqualsTheUninterruptedRun) {
  const std::string a = Dir("uninterrupted"), b = Dir("stopped");
  FakeTask whole;
  ASSERT_TRUE(RunTraining("fake", FakeRun(a, 2), {}, whole).ok());
  FakeTask first;
  RunOptions stop;
  stop.stop_epoch = 1;
  stop.stop_step = 3;  // not a group start with update_freq 2: the loop stops at step 4
  absl::StatusOr<LoopResult> r1 = RunTraining("fake", FakeRun(b, 2), stop, first);
  ASSERT_TRUE(r1.ok()) << r1.status();
  EXPECT_FALSE(r1->preempted);  // step 3 is inside a group: never a boundary, so no stop
  FakeTask again;
  stop.stop_step = 4;
  fs::remove_all(b);
  r1 = RunTraining("fake", FakeRun(b, 2), stop, again);
  ASSERT_TRUE(r1.ok()) << r1.status();
  EXPECT_TRUE(r1->preempted);
  ASSERT_EQ(again.calls.size(), 10u);  // epoch 0 and steps 0-3 of epoch 1
  EXPECT_TRUE(fs::exists(b + "/checkpoint-1-step4.pth"));
  EXPECT_EQ(LogRows(b).size(), 1u);
  FakeTask rest;
  absl::StatusOr<LoopResult> r2 = RunTraining("fake", FakeRun(b, 2), {}, rest);
  ASSERT_TRUE(r2.ok()) << r2.status();
  ASSERT_EQ(rest.calls.size(), 8u);
  EXPECT_EQ(rest.calls[0].epoch, 1);
  EXPECT_EQ(rest.calls[0].step, 4);
  // The same batches with the same weights, and the same epoch means (the meters continued).
  std::vector<Call> joined(again.calls.begin(), again.calls.end());
  joined.insert(joined.end(), rest.calls.begin(), rest.calls.end());
  EXPECT_TRUE(joined == whole.calls);
  std::vector<std::string> rows_a = LogRows(a), rows_b = LogRows(b);
  ASSERT_EQ(rows_b.size(), 3u);
  EXPECT_EQ(rows_a[0], rows_b[0]);
  EXPECT_EQ(rows_a[2], rows_b[2]);
  // Epoch 1 resumed at step 4: the same means, and the loop said where it started.
  EXPECT_EQ(std::regex_replace(rows_b[1], std::regex("\"first_step\": 4"), "\"first_step\": 0"),
            rows_a[1]);
}

TEST(Loop, NonFiniteLossIsAnErrorNamingTheStep) {
  FakeTask task;
  task.nan_at_step = 2;
  absl::StatusOr<LoopResult> r = RunTraining("fake", FakeRun(""), {}, task);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("at epoch 0 step 2"), std::string::npos) << r.status();
  EXPECT_NE(r.status().message().find("Fake advice."), std::string::npos) << r.status();
  EXPECT_EQ(task.calls.size(), 3u);
}

TEST(Loop, NonFiniteLossStopsUnderAmpToo) {
  FakeTask task;
  task.nan_at_step = 1;
  ExperimentConfig c = FakeRun("");
  c.mutable_train()->set_use_amp(true);  // the loss scaler would skip the step; the loop stops
  absl::StatusOr<LoopResult> r = RunTraining("fake", c, {}, task);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("at epoch 0 step 1"), std::string::npos) << r.status();
  EXPECT_EQ(task.calls.size(), 2u);
}

// (tag, step) -> value of every scalar in every event file of `dir`, read back with the
// library's checked reader; a (tag, step) seen twice fails.
std::map<std::pair<std::string, int64_t>, float> Scalars(const std::string& dir) {
  std::map<std::pair<std::string, int64_t>, float> out;
  for (const auto& entry : fs::directory_iterator(dir)) {
    absl::StatusOr<tensorboard::Records> records =
        tensorboard::ReadRecords(entry.path().string());
    EXPECT_TRUE(records.ok()) << records.status();
    if (!records.ok()) continue;
    for (const std::string& data : records->data) {
      tensorboard::Event event;
      EXPECT_TRUE(event.ParseFromString(data));
      for (const auto& v : event.summary().value()) {
        const bool fresh = out.emplace(std::make_pair(v.tag(), event.step()), v.simple_value()).second;
        EXPECT_TRUE(fresh) << v.tag() << " at step " << event.step() << " written twice";
      }
    }
  }
  return out;
}

// --log_dir: the task's values at every micro-batch, perf/test_* at every epoch; a resumed run
// first drops what a killed attempt wrote past its checkpoint, so each step is there once and
// the record equals the uninterrupted run's.
TEST(Loop, TensorBoardValuesSurviveAStopAndResume) {
  const std::string a = Dir("tb_whole"), b = Dir("tb_resumed");
  ExperimentConfig whole_config = FakeRun(a, 2);
  whole_config.mutable_output()->set_log_dir(a + "/tb");
  FakeTask whole;
  ASSERT_TRUE(RunTraining("fake", whole_config, {}, whole).ok());
  const auto expected = Scalars(a + "/tb");
  ASSERT_EQ(expected.size(), 18u + 3u);  // 3 epochs x 6 micro-batches, 3 evaluations
  EXPECT_FLOAT_EQ(expected.at({"loss/w2", 0}), 1.0f);
  EXPECT_FLOAT_EQ(expected.at({"loss/w2", 2}), 0.25f);  // one optimizer step per 2 batches
  EXPECT_FLOAT_EQ(expected.at({"perf/test_acc1", 2}), 30.0f);

  ExperimentConfig config = FakeRun(b, 2);
  config.mutable_output()->set_log_dir(b + "/tb");
  RunOptions stop;
  stop.stop_epoch = 1;
  stop.stop_step = 4;
  FakeTask first;
  ASSERT_TRUE(RunTraining("fake", config, stop, first).ok());
  {  // what a killed attempt wrote after the checkpoint at epoch 1 step 4 (global step 10)
    auto late = tensorboard::EventWriter::Open(b + "/tb");
    ASSERT_TRUE(late.ok()) << late.status();
    ASSERT_TRUE((*late)->AddScalar("loss/w2", 10, 99.0).ok());
    ASSERT_TRUE((*late)->AddScalar("perf/test_acc1", 1, 99.0).ok());
    ASSERT_TRUE((*late)->Flush().ok());
  }
  FakeTask rest;
  ASSERT_TRUE(RunTraining("fake", config, {}, rest).ok());
  EXPECT_EQ(Scalars(b + "/tb"), expected);
}

TEST(Loop, EndingBeforeTrainingRunsNoStep) {
  struct EvalOnly : FakeTask {
    absl::StatusOr<bool> BeforeResume(train::TrainingRecipe&) override { return true; }
  } task;
  const std::string dir = Dir("eval_only");
  absl::StatusOr<LoopResult> r = RunTraining("fake", FakeRun(dir), {}, task);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->ended_before_training);
  EXPECT_TRUE(task.calls.empty());
  EXPECT_FALSE(fs::exists(dir + "/log.txt"));
}

}  // namespace
}  // namespace convnextv2::run
