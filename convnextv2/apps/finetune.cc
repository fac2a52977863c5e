#include "convnextv2/apps/finetune.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <glog/logging.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "convnextv2/checkpoint/file.h"
#include "convnextv2/checkpoint/policy.h"
#include "convnextv2/checkpoint/pretrained.h"
#include "convnextv2/checkpoint/state.h"
#include "convnextv2/config/run_checks.h"
#include "convnextv2/data/dataset.h"
#include "convnextv2/data/loader.h"
#include "convnextv2/data/mixup.h"
#include "convnextv2/data/transforms.h"
#include "convnextv2/models/registry.h"
#include "convnextv2/run/loop.h"
#include "convnextv2/run/run_checkpoints.h"
#include "convnextv2/run/runtime.h"
#include "convnextv2/train/data_parallel.h"
#include "convnextv2/train/losses.h"
#include "convnextv2/train/meters.h"
#include "convnextv2/train/recipe.h"
#include "convnextv2/util/fault_points.h"
#include "convnextv2/util/status_macros.h"

namespace convnextv2::apps {
namespace {

// engine_finetune.py's evaluate() progress (its MetricLogger.log_every(data_loader, 10)):
//   Test:  [ 10/157]  eta: 0:00:12  loss: 0.5432 (0.6120)  acc1: 87.500 (85.938)  ...
// every 10 batches and at the last, then the total time. Figures of this rank's shard: the
// last batch's, then the running mean.
class EvalProgress {
 public:
  explicit EvalProgress(int64_t batches) : batches_(batches) {}

  void Batch(int64_t b, double loss, double acc1, double acc5, int64_t n) {
    const double seconds = Seconds(last_);
    last_ = Clock::now();
    time_.Add(seconds);
    loss_.Add(loss, n);
    acc1_.Add(acc1, n);
    acc5_.Add(acc5, n);
    if (b % 10 != 0 && b + 1 != batches_) return;
    LOG(INFO) << absl::StrFormat(
        "Test:  [%*d/%d]  eta: %s  loss: %.4f (%.4f)  acc1: %.3f (%.3f)  acc5: %.3f (%.3f)  "
        "time: %.4f",
        static_cast<int>(std::to_string(batches_).size()), b, batches_,
        train::FormatDuration(time_.recent() * static_cast<double>(batches_ - b - 1)), loss,
        loss_.mean(), acc1, acc1_.mean(), acc5, acc5_.mean(), seconds);
  }
  void Finish() const {
    if (batches_ == 0) return;
    const double total = Seconds(start_);
    LOG(INFO) << absl::StrFormat("Test: Total time: %s (%.4f s / it)", train::FormatDuration(total),
                                 total / static_cast<double>(batches_));
  }

 private:
  using Clock = std::chrono::steady_clock;
  static double Seconds(Clock::time_point since) {
    return std::chrono::duration<double>(Clock::now() - since).count();
  }
  int64_t batches_;
  Clock::time_point start_ = Clock::now(), last_ = start_;
  train::MeanMeter time_, loss_, acc1_, acc5_;
};

// With `comm` (dist_eval in a multi-process run) every rank evaluates its shard and the sums
// are added up; the samples the sampler repeated to even out the ranks are not counted, so the
// result is exactly that of one process over the whole set, for any number of processes.
EvalStats Evaluate(models::ConvNeXtV2& model, const data::Loader& loader, c10::Device device,
                   const train::TrainingRecipe& recipe, dist::Communicator* comm,
                   absl::Status* error) {
  c10::NoGradGuard no_grad;
  model->eval();
  EvalStats stats;
  double loss_sum = 0;
  int64_t correct1 = 0, correct5 = 0;
  data::BatchIterator batches = loader.Iterate(/*epoch=*/0);
  EvalProgress progress(loader.num_batches());
  for (int64_t b = 0; b < loader.num_batches(); ++b) {
    util::FaultPoint("eval_batch");
    absl::StatusOr<data::Batch> batch = batches.Next();
    if (!batch.ok()) {
      *error = batch.status();
      return stats;
    }
    at::Tensor images = batch->images;
    at::Tensor labels = batch->labels;
    std::vector<int64_t> keep;
    for (size_t i = 0; i < batch->padding.size(); ++i) {
      if (!batch->padding[i]) keep.push_back(static_cast<int64_t>(i));
    }
    if (keep.empty()) continue;
    if (keep.size() != static_cast<size_t>(labels.size(0))) {
      const at::Tensor index = at::tensor(keep, at::kLong);
      images = images.index_select(0, index);
      labels = labels.index_select(0, index);
    }
    images = images.to(device, /*non_blocking=*/loader.pinned());
    labels = labels.to(device);
    at::Tensor logits;
    {
      train::AutocastGuard autocast = recipe.Autocast();  // the official evaluate(use_amp=...)
      logits = model->forward(images).to(at::kFloat);
    }
    const int64_t n = labels.size(0);
    const double loss = at::cross_entropy_loss(logits, labels).item<double>();
    const int64_t c1 = train::TopKCorrect(logits, labels, 1);
    const int64_t c5 = train::TopKCorrect(logits, labels, 5);
    loss_sum += loss * n;
    correct1 += c1;
    correct5 += c5;
    stats.samples += n;
    progress.Batch(b, loss, 100.0 * c1 / n, 100.0 * c5 / n, n);
  }
  progress.Finish();
  if (comm != nullptr) {
    std::vector<at::Tensor> sums{at::tensor(
        {loss_sum, static_cast<double>(correct1), static_cast<double>(correct5),
         static_cast<double>(stats.samples)},
        at::kDouble)};
    if (absl::Status s = comm->AllReduceSum(sums); !s.ok()) {
      *error = s;
      return stats;
    }
    const at::Tensor& host = sums[0];
    loss_sum = host[0].item<double>();
    correct1 = static_cast<int64_t>(std::llround(host[1].item<double>()));
    correct5 = static_cast<int64_t>(std::llround(host[2].item<double>()));
    stats.samples = static_cast<int64_t>(std::llround(host[3].item<double>()));
  }
  if (stats.samples > 0) {
    stats.acc1 = 100.0 * correct1 / stats.samples;
    stats.acc5 = 100.0 * correct5 / stats.samples;
    stats.loss = loss_sum / stats.samples;
  }
  return stats;
}

// The official keys in its order; train_class_acc only without mixup (the official script
// logs no class accuracy against mixed targets).
std::string EpochJson(const EpochStats& e, int64_t n_parameters) {
  std::string json = absl::StrFormat("{\"train_lr\": %.10g, \"train_loss\": %.10g, ",
                                     e.train_lr, e.train_loss);
  if (!std::isnan(e.train_class_acc)) {
    absl::StrAppendFormat(&json, "\"train_class_acc\": %.10g, ", e.train_class_acc);
  }
  absl::StrAppendFormat(&json,
                        "\"train_images_per_second\": %.6g, \"train_min_lr\": %.10g, "
                        "\"train_weight_decay\": %.10g, \"train_grad_norm\": %.10g",
                        e.images_per_second, e.train_min_lr, e.train_weight_decay,
                        e.train_grad_norm);
  if (e.evaluated) {
    absl::StrAppendFormat(&json, ", \"test_loss\": %.10g, \"test_acc1\": %.10g, "
                          "\"test_acc5\": %.10g",
                          e.test.loss, e.test.acc1, e.test.acc5);
  }
  if (e.evaluated_ema) {
    absl::StrAppendFormat(&json, ", \"test_loss_ema\": %.10g, \"test_acc1_ema\": %.10g, "
                          "\"test_acc5_ema\": %.10g",
                          e.test_ema.loss, e.test_ema.acc1, e.test_ema.acc5);
  }
  absl::StrAppendFormat(&json, ", \"epoch\": %d, \"n_parameters\": %d}", e.epoch, n_parameters);
  return json;
}

void LogPretrained(const std::string& path, const checkpoint::PretrainedReport& r) {
  for (const std::string& line : checkpoint::DescribeLoad(path, r)) LOG(INFO) << line;
}

// eval.eval: the chosen weights (model or EMA) of checkpoint.resume, or checkpoint.finetune
// weights, evaluated once. Strict: evaluating a partly loaded model would mislead.
absl::StatusOr<EvalStats> EvaluateOnly(const ExperimentConfig& config, models::ConvNeXtV2& model,
                                       const data::Loader* loader, c10::Device device,
                                       const train::TrainingRecipe& recipe,
                                       dist::Communicator* comm) {
  if (loader == nullptr) {
    return absl::InvalidArgumentError("eval.eval with eval.disable_eval: nothing to evaluate");
  }
  const auto& k = config.checkpoint();
  std::string resume = k.resume();
  std::optional<checkpoint::Checkpoint> ckpt;
  const std::string& out_dir = config.output().output_dir();
  if (resume.empty() && k.auto_resume() && !out_dir.empty()) {
    // main_finetune.py's auto_load_model: output_dir's newest checkpoint, before --finetune.
    CONVNEXTV2_ASSIGN_OR_RETURN(std::optional<checkpoint::Found> found,
                                checkpoint::FindNewestValid(out_dir));
    if (found) {
      for (const std::string& why : found->skipped) {
        LOG(WARNING) << "auto_resume: skipping invalid checkpoint: " << why;
      }
      LOG(INFO) << "auto_resume: evaluating the newest checkpoint of " << out_dir;
      resume = found->path;
      ckpt = std::move(found->checkpoint);
    } else if (k.finetune().empty()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "eval.eval: ", out_dir, " holds no checkpoint-N.pth to evaluate (auto_resume), and "
          "neither checkpoint.resume nor checkpoint.finetune is set"));
    }
  }
  if (!resume.empty()) {
    if (!ckpt) {
      CONVNEXTV2_ASSIGN_OR_RETURN(ckpt, checkpoint::ReadCheckpoint(resume));
    }
    const bool ema = config::EvalWeightsOf(config.eval()) == config::EvalWeights::kEma;
    const std::string what = absl::StrCat("checkpoint ", resume);
    CONVNEXTV2_RETURN_IF_ERROR(checkpoint::LoadModule(*ckpt, ema ? "model_ema." : "model.", *model,
                                                      /*strict=*/true, what));
    LOG(INFO) << "Evaluating the " << (ema ? "EMA" : "model") << " weights of " << resume
              << " (epoch " << ckpt->header.epoch() << ")";
  } else {
    absl::StatusOr<checkpoint::PretrainedReport> r = checkpoint::InitFromPretrained(
        k.finetune(), k.model_key(), k.model_prefix(), *model, /*reinit_head=*/false);
    CONVNEXTV2_RETURN_IF_ERROR(r);
    LogPretrained(k.finetune(), *r);
    if (!r->load.missing.empty() || !r->load.shape_mismatch.empty()) {
      return absl::FailedPreconditionError(absl::StrCat(
          k.finetune(), " does not hold every weight of ", config.model().model(),
          " (missing: ", absl::StrJoin(r->load.missing, ", "), "; mis-shaped: ",
          absl::StrJoin(r->load.shape_mismatch, ", "), "); evaluation needs all of them"));
    }
  }
  absl::Status error;
  const EvalStats stats = Evaluate(model, *loader, device, recipe, comm, &error);
  if (!error.ok()) return error;
  LOG(INFO) << absl::StrFormat("* Acc@1 %.3f Acc@5 %.3f loss %.3f", stats.acc1, stats.acc5,
                               stats.loss);
  LOG(INFO) << absl::StrFormat("Accuracy of the network on %d test images: %.5f%%",
                               stats.samples, stats.acc1);
  return stats;
}

// Supervised training of a ConvNeXtV2 classifier: main_finetune.py / engine_finetune.py.
class FinetuneTask : public run::TrainingTask {
 public:
  explicit FinetuneTask(FinetuneResult* result) : result_(*result) {}

  absl::Status Build(const ExperimentConfig& config, const run::Runtime& runtime) override;
  const data::Loader& train_loader() const override { return *train_loader_; }
  std::shared_ptr<torch::nn::Module> model() const override { return model_.ptr(); }
  std::string DescribeModel() const override {
    return absl::StrCat("model ", config_->model().model());
  }
  train::RecipeOptions recipe_options() override {
    train::RecipeOptions options;
    options.groups = [this] {
      return optim::FinetuneParamGroups(*config_, model_->named_parameters(),
                                        model_->options.depths());
    };
    return options;
  }
  std::vector<std::string> class_names() const override { return train_set_->class_names(); }
  absl::StatusOr<bool> BeforeResume(train::TrainingRecipe& recipe) override;
  absl::Status AfterResume(const run::LoopState& state, train::TrainingRecipe& recipe) override;

  // As engine_finetune.py's MetricLogger: the epoch's log.txt row has the means of lr,
  // min_lr and weight_decay (the same on every rank: not reduced), class_acc only without mixup.
  void DeclareMeters(run::LoopMeters* meters) const override {
    if (!mixup_) meters->Declare("acc", /*reduce=*/true);
    meters->Declare("grad_norm", /*reduce=*/false);
    meters->Declare("lr", /*reduce=*/false);
    meters->Declare("min_lr", /*reduce=*/false);
    meters->Declare("weight_decay", /*reduce=*/false);
  }
  absl::StatusOr<at::Tensor> Loss(const data::Batch& batch, int epoch, int64_t step,
                                  train::TrainingRecipe& recipe) override;
  void FinishStep(const run::StepInfo& step, run::LoopMeters* meters,
                  metrics::TrainRow* row) override;
  absl::StatusOr<std::vector<std::pair<std::string, double>>> StepScalars(
      const run::StepInfo& step, const metrics::TrainRow& row) override;
  std::string ProgressFields(const run::StepInfo& step, const run::LoopMeters& meters,
                             const metrics::TrainRow& row) const override;
  std::string NonFiniteAdvice() const override {
    return "Lower the learning rate (blr/lr), set clip_grad, or check the data.";
  }

  void SummarizeEpoch(const run::EpochInfo& epoch, const run::LoopMeters& meters) override;
  absl::StatusOr<std::optional<metrics::EvalRow>> Evaluate(int epoch, run::LoopState* state,
                                                           run::RunCheckpoints& ckpts) override;
  absl::StatusOr<std::string> EndEpoch(const run::EpochInfo& epoch) override;

 private:
  absl::Status OpenData();
  absl::StatusOr<bool> EvaluateEma(int epoch, run::LoopState* state, run::RunCheckpoints& ckpts,
                                   EvalStats* out);

  FinetuneResult& result_;
  const ExperimentConfig* config_ = nullptr;
  const run::Runtime* runtime_ = nullptr;
  train::TrainingRecipe* recipe_ = nullptr;
  // dist_eval: each rank evaluates its shard (exact: padding not counted); otherwise every rank
  // evaluates the whole set, as the official script does without --dist_eval.
  dist::Communicator* eval_comm_ = nullptr;
  std::unique_ptr<data::Dataset> train_set_, eval_set_;
  std::unique_ptr<data::Transform> train_transform_, eval_transform_;
  std::unique_ptr<data::Loader> train_loader_, eval_loader_;
  // Mixup/CutMix: soft targets and SoftTargetCrossEntropy (label smoothing folded in).
  std::optional<data::Mixup> mixup_;
  models::ConvNeXtV2 model_{nullptr};
  at::Tensor logits_, labels_;  // of the current micro-batch, for its accuracy
  EpochStats stats_;            // of the current epoch
};

absl::Status FinetuneTask::OpenData() {
  const ExperimentConfig& config = *config_;
  CONVNEXTV2_ASSIGN_OR_RETURN(train_set_, data::OpenDataset(config, data::Split::kTrain));
  if (!config.eval().disable_eval()) {
    CONVNEXTV2_ASSIGN_OR_RETURN(eval_set_, data::OpenDataset(config, data::Split::kEval));
  }
  LOG(INFO) << "train: " << train_set_->Describe();
  if (eval_set_) LOG(INFO) << "eval: " << eval_set_->Describe();
  CONVNEXTV2_ASSIGN_OR_RETURN(train_transform_, data::MakeTransform(config, data::Split::kTrain));
  CONVNEXTV2_ASSIGN_OR_RETURN(eval_transform_, data::MakeTransform(config, data::Split::kEval));
  const run::Runtime& rt = *runtime_;
  train_loader_ = std::make_unique<data::Loader>(
      train_set_.get(), train_transform_.get(),
      data::LoaderOptions(config, data::Split::kTrain, rt.rank, rt.world_size, rt.device));
  mixup_ = data::Mixup::FromConfig(config);
  if (train_loader_->num_batches() == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "train.batch_size ", config.train().batch_size(), " is larger than the training set (",
        train_set_->size(), " images): no full batch per epoch"));
  }
  if (eval_set_) {
    const bool dist_eval = eval_comm_ != nullptr;
    eval_loader_ = std::make_unique<data::Loader>(
        eval_set_.get(), eval_transform_.get(),
        data::LoaderOptions(config, data::Split::kEval, dist_eval ? rt.rank : 0,
                            dist_eval ? rt.world_size : 1, rt.device));
  }
  return absl::OkStatus();
}

absl::Status FinetuneTask::Build(const ExperimentConfig& config, const run::Runtime& runtime) {
  config_ = &config;
  runtime_ = &runtime;
  if (runtime.comm != nullptr && config.eval().dist_eval()) eval_comm_ = runtime.comm.get();
  CONVNEXTV2_RETURN_IF_ERROR(OpenData());
  CONVNEXTV2_ASSIGN_OR_RETURN(
      model_, models::CreateConvNeXtV2(config.model().model(), config.model().nb_classes(),
                                       config.model().drop_path(),
                                       config.model().head_init_scale()));
  model_->to(runtime.device);
  return absl::OkStatus();
}

// eval.eval ends the run after evaluating; otherwise training follows.
absl::StatusOr<bool> FinetuneTask::BeforeResume(train::TrainingRecipe& recipe) {
  recipe_ = &recipe;
  if (!config_->eval().eval()) return false;
  CONVNEXTV2_ASSIGN_OR_RETURN(result_.eval_only,
                              EvaluateOnly(*config_, model_, eval_loader_.get(), runtime_->device,
                                           recipe, eval_comm_));
  result_.max_accuracy = result_.eval_only.acc1;
  return true;
}

// A fresh run with checkpoint.finetune starts from pre-trained weights.
absl::Status FinetuneTask::AfterResume(const run::LoopState& state, train::TrainingRecipe& recipe) {
  const auto& k = config_->checkpoint();
  if (!state.resumed && !k.finetune().empty()) {
    CONVNEXTV2_ASSIGN_OR_RETURN(
        const checkpoint::PretrainedReport r,
        checkpoint::InitFromPretrained(k.finetune(), k.model_key(), k.model_prefix(), *model_,
                                       /*reinit_head=*/true));
    LogPretrained(k.finetune(), r);
    // The re-initialized head differs per rank: rank 0's wins. The EMA starts from the loaded
    // weights, as the official script creates it after loading them.
    if (runtime_->comm != nullptr) {
      CONVNEXTV2_RETURN_IF_ERROR(train::BroadcastModule(*runtime_->comm, *model_));
    }
    CONVNEXTV2_RETURN_IF_ERROR(recipe.ResetEmaFromModel());
  }
  result_.max_accuracy = std::max(0.0, state.best_acc1);
  result_.max_accuracy_ema = std::max(0.0, state.best_ema_acc1);
  return absl::OkStatus();
}

absl::StatusOr<at::Tensor> FinetuneTask::Loss(const data::Batch& batch, int epoch, int64_t step,
                                              train::TrainingRecipe& recipe) {
  at::Tensor images = batch.images;
  at::Tensor soft_targets;
  const c10::Device device = runtime_->device;
  if (mixup_) {
    data::SampleRng mix_rng(
        data::KeyedSeed(config_->train().seed(), epoch, step, data::Purpose::kMixup));
    soft_targets = mixup_->Apply(images, batch.labels, mix_rng).to(device);
  }
  images = images.to(device, /*non_blocking=*/train_loader_->pinned());
  labels_ = batch.labels.to(device);
  at::Tensor loss;
  {
    train::AutocastGuard autocast = recipe.Autocast();
    logits_ = model_->forward(images);
    loss = mixup_ ? train::SoftTargetCrossEntropy(logits_, soft_targets)
                  : train::CrossEntropy(logits_, labels_, config_->aug().smoothing());
  }
  return loss;
}

void FinetuneTask::FinishStep(const run::StepInfo& step, run::LoopMeters* meters,
                              metrics::TrainRow* row) {
  if (step.result.boundary && step.result.stepped) {
    (*meters)["grad_norm"].Add(step.result.grad_norm);
  }
  (*meters)["lr"].Add(row->lr);
  (*meters)["min_lr"].Add(row->min_lr);
  (*meters)["weight_decay"].Add(row->weight_decay);
  if (mixup_) return;  // no accuracy against mixed targets
  const double acc = logits_.argmax(1).eq(labels_).to(at::kFloat).mean().item<double>();
  (*meters)["acc"].Add(acc);
  row->class_acc = acc;
}

// engine_finetune.py's log_writer, every micro-batch: class_acc only without mixup, the weight
// decay only when some group has one, the gradient norm only under AMP at optimizer steps.
absl::StatusOr<std::vector<std::pair<std::string, double>>> FinetuneTask::StepScalars(
    const run::StepInfo& step, const metrics::TrainRow& row) {
  std::vector<std::pair<std::string, double>> values{{"loss/loss", row.loss}};
  if (!mixup_) values.emplace_back("loss/class_acc", row.class_acc);
  values.emplace_back("opt/lr", row.lr);
  values.emplace_back("opt/min_lr", row.min_lr);
  if (row.weight_decay > 0) values.emplace_back("opt/weight_decay", row.weight_decay);
  if (recipe_->use_amp() && step.result.boundary) {
    values.emplace_back("opt/grad_norm", step.result.grad_norm);
  }
  return values;
}

std::string FinetuneTask::ProgressFields(const run::StepInfo& step, const run::LoopMeters& meters,
                                         const metrics::TrainRow& row) const {
  const std::string class_acc =
      mixup_ ? "" : absl::StrFormat("  class_acc: %.4f (%.4f)", meters.at("acc").recent(),
                                    meters.at("acc").mean());
  return absl::StrFormat("min_lr: %.6f  loss: %.4f (%.4f)%s  weight_decay: %.4f  grad_norm: %.4f",
                         row.min_lr, meters.at("loss").recent(), meters.at("loss").mean(),
                         class_acc, row.weight_decay, meters.at("grad_norm").last());
}

absl::StatusOr<std::optional<metrics::EvalRow>> FinetuneTask::Evaluate(int epoch,
                                                                       run::LoopState* state,
                                                                       run::RunCheckpoints& ckpts) {
  if (!eval_loader_) return std::nullopt;
  absl::Status eval_error;
  stats_.test = apps::Evaluate(model_, *eval_loader_, runtime_->device, *recipe_, eval_comm_,
                                 &eval_error);
  CONVNEXTV2_RETURN_IF_ERROR(eval_error);
  stats_.evaluated = true;
  result_.max_accuracy = std::max(result_.max_accuracy, stats_.test.acc1);
  if (stats_.test.acc1 > state->best_acc1) {
    state->best_acc1 = stats_.test.acc1;
    CONVNEXTV2_RETURN_IF_ERROR(ckpts.SaveBest(epoch, *state, *model_, /*ema=*/false));
  }
  LOG(INFO) << absl::StrFormat("* Acc@1 %.3f Acc@5 %.3f loss %.3f", stats_.test.acc1,
                               stats_.test.acc5, stats_.test.loss);
  LOG(INFO) << absl::StrFormat("Accuracy of the model on the %d test images: %.1f%%",
                               stats_.test.samples, stats_.test.acc1);
  LOG(INFO) << absl::StrFormat("Max accuracy: %.2f%%", result_.max_accuracy);
  CONVNEXTV2_ASSIGN_OR_RETURN(stats_.evaluated_ema,
                              EvaluateEma(epoch, state, ckpts, &stats_.test_ema));
  metrics::EvalRow row;
  row.step = static_cast<int64_t>(epoch + 1) * train_loader_->num_batches() - 1;
  row.epoch = epoch;
  row.acc1 = stats_.test.acc1;
  row.acc5 = stats_.test.acc5;
  row.loss = stats_.test.loss;
  if (stats_.evaluated_ema) {
    row.ema_acc1 = stats_.test_ema.acc1;
    row.ema_acc5 = stats_.test_ema.acc5;
    row.ema_loss = stats_.test_ema.loss;
  }
  return row;
}

// model_ema_eval: the EMA weights evaluated too. Returns whether they were.
absl::StatusOr<bool> FinetuneTask::EvaluateEma(int epoch, run::LoopState* state,
                                               run::RunCheckpoints& ckpts, EvalStats* out) {
  if (!config_->ema().model_ema() || !config_->ema().model_ema_eval()) return false;
  models::ConvNeXtV2 ema_model(recipe_->ema_model());
  absl::Status eval_error;
  *out = apps::Evaluate(ema_model, *eval_loader_, recipe_->ema_device(), *recipe_, eval_comm_,
                          &eval_error);
  CONVNEXTV2_RETURN_IF_ERROR(eval_error);
  result_.max_accuracy_ema = std::max(result_.max_accuracy_ema, out->acc1);
  if (out->acc1 > state->best_ema_acc1) {
    state->best_ema_acc1 = out->acc1;
    CONVNEXTV2_RETURN_IF_ERROR(ckpts.SaveBest(epoch, *state, *ema_model, /*ema=*/true));
  }
  LOG(INFO) << absl::StrFormat("Accuracy of the model EMA on %d test images: %.1f%%",
                               out->samples, out->acc1);
  LOG(INFO) << absl::StrFormat("Max EMA accuracy: %.2f%%", result_.max_accuracy_ema);
  return true;
}

void FinetuneTask::SummarizeEpoch(const run::EpochInfo& epoch, const run::LoopMeters& meters) {
  stats_ = EpochStats();
  stats_.epoch = epoch.epoch;
  stats_.train_lr = meters.at("lr").mean();
  stats_.train_min_lr = meters.at("min_lr").mean();
  stats_.train_weight_decay = meters.at("weight_decay").mean();
  stats_.train_loss = meters.at("loss").mean();
  stats_.train_class_acc = mixup_ ? metrics::kMissing : meters.at("acc").mean();
  stats_.train_grad_norm = meters.at("grad_norm").mean();
  stats_.images_per_second = epoch.images_per_second;
  LOG(INFO) << absl::StrFormat(
      "Epoch %d done in %s: loss %.4f%s, %.0f img/s", epoch.epoch,
      train::FormatDuration(epoch.seconds), stats_.train_loss,
      mixup_ ? "" : absl::StrFormat(", class_acc %.4f", stats_.train_class_acc),
      stats_.images_per_second);
}

absl::StatusOr<std::string> FinetuneTask::EndEpoch(const run::EpochInfo& epoch) {
  result_.epochs.push_back(stats_);
  return EpochJson(stats_, epoch.n_parameters);
}

}  // namespace

absl::StatusOr<FinetuneResult> RunFinetune(const ExperimentConfig& config,
                                           const run::RunOptions& options) {
  FinetuneResult result;
  FinetuneTask task(&result);
  CONVNEXTV2_ASSIGN_OR_RETURN(const run::LoopResult loop,
                              run::RunTraining("finetune", config, options, task));
  result.n_parameters = loop.n_parameters;
  result.preempted = loop.preempted;
  return result;
}

}  // namespace convnextv2::apps
