#include "convnextv2/apps/finetune.h"

#include <ATen/ATen.h>
#include <glog/logging.h>

#include <algorithm>
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
#include "convnextv2/record/task_records.h"
#include "convnextv2/run/loop.h"
#include "convnextv2/run/run_checkpoints.h"
#include "convnextv2/run/runtime.h"
#include "convnextv2/train/data_parallel.h"
#include "convnextv2/train/losses.h"
#include "convnextv2/train/meters.h"
#include "convnextv2/train/recipe.h"
#include "convnextv2/util/status_macros.h"

namespace convnextv2::apps {
namespace {

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
  CONVNEXTV2_ASSIGN_OR_RETURN(const EvalStats stats,
                              Evaluate(model, *loader, device, recipe, comm));
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

  // As engine_finetune.py's MetricLogger and log_writer (record::MakeFinetuneRecord).
  const record::TaskRecord& task_record() const override { return record_; }
  absl::StatusOr<at::Tensor> Loss(const data::Batch& batch, int epoch, int64_t step,
                                  train::TrainingRecipe& recipe) override;
  void FinishStep(const run::StepInfo& step, record::TrainRow* row) override;
  std::string NonFiniteAdvice() const override {
    return "Lower the learning rate (blr/lr), set clip_grad, or check the data.";
  }

  void SummarizeEpoch(const run::EpochInfo& epoch, const run::LoopMeters& meters) override;
  absl::StatusOr<std::optional<record::EvalRow>> Evaluate(int epoch, run::LoopState* state,
                                                           run::RunCheckpoints& ckpts) override;
  absl::Status EndEpoch(const run::EpochInfo& epoch) override {
    result_.epochs.push_back(stats_);
    return absl::OkStatus();
  }

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
  record::FinetuneRecord record_;
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
  record_ = record::MakeFinetuneRecord(
      {.mixup = mixup_.has_value(), .amp = config.train().use_amp()});
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

void FinetuneTask::FinishStep(const run::StepInfo& step, record::TrainRow* row) {
  row->Set(record_.loss_scale, recipe_->scaler().scale());  // declared under AMP only
  if (mixup_) return;  // no accuracy against mixed targets
  row->Set(record_.class_acc,
           logits_.argmax(1).eq(labels_).to(at::kFloat).mean().item<double>());
}

absl::StatusOr<std::optional<record::EvalRow>> FinetuneTask::Evaluate(int epoch,
                                                                       run::LoopState* state,
                                                                       run::RunCheckpoints& ckpts) {
  if (!eval_loader_) return std::nullopt;
  CONVNEXTV2_ASSIGN_OR_RETURN(
      stats_.test, apps::Evaluate(model_, *eval_loader_, runtime_->device, *recipe_, eval_comm_));
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
  const record::EvalColumns& c = record_.eval;
  record::EvalRow row(record_.declaration);
  row.Set(c.acc1, stats_.test.acc1);
  row.Set(c.acc5, stats_.test.acc5);
  row.Set(c.loss, stats_.test.loss);
  if (stats_.evaluated_ema) {
    row.Set(c.ema_acc1, stats_.test_ema.acc1);
    row.Set(c.ema_acc5, stats_.test_ema.acc5);
    row.Set(c.ema_loss, stats_.test_ema.loss);
  }
  return row;
}

// model_ema_eval: the EMA weights evaluated too. Returns whether they were.
absl::StatusOr<bool> FinetuneTask::EvaluateEma(int epoch, run::LoopState* state,
                                               run::RunCheckpoints& ckpts, EvalStats* out) {
  if (!config_->ema().model_ema() || !config_->ema().model_ema_eval()) return false;
  // The EMA is a copy of model_, so a ConvNeXtV2 too.
  models::ConvNeXtV2 ema_model(
      std::dynamic_pointer_cast<models::ConvNeXtV2Impl>(recipe_->ema_model()));
  CONVNEXTV2_ASSIGN_OR_RETURN(*out, apps::Evaluate(ema_model, *eval_loader_,
                                                    recipe_->ema_device(), *recipe_, eval_comm_));
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
  const record::LoopColumns& c = record_.loop;
  stats_.train_lr = meters.at(c.lr).mean();
  stats_.train_min_lr = meters.at(c.min_lr).mean();
  stats_.train_weight_decay = meters.at(c.weight_decay).mean();
  stats_.train_loss = meters.at(c.loss).mean();
  stats_.train_class_acc = mixup_ ? record::kMissing : meters.at(record_.class_acc).mean();
  stats_.train_grad_norm = meters.at(c.grad_norm).mean();
  stats_.images_per_second = epoch.images_per_second;
  LOG(INFO) << absl::StrFormat(
      "Epoch %d done in %s: loss %.4f%s, %.0f img/s", epoch.epoch,
      train::FormatDuration(epoch.seconds), stats_.train_loss,
      mixup_ ? "" : absl::StrFormat(", class_acc %.4f", stats_.train_class_acc),
      stats_.images_per_second);
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
