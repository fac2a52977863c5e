#include "convnextv2/apps/pretrain.h"

#include <ATen/ATen.h>
#include <glog/logging.h>

#include <chrono>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "convnextv2/apps/reconstructions.h"
#include "convnextv2/checkpoint/named_tensors.h"
#include "convnextv2/data/dataset.h"
#include "convnextv2/data/loader.h"
#include "convnextv2/data/transforms.h"
#include "convnextv2/dist/process_group.h"
#include "convnextv2/models/fcmae.h"
#include "convnextv2/models/fcmae_build.h"
#include "convnextv2/optim/param_groups.h"
#include "convnextv2/record/task_records.h"
#include "convnextv2/run/loop.h"
#include "convnextv2/run/run_checkpoints.h"
#include "convnextv2/run/runtime.h"
#include "convnextv2/train/amp.h"
#include "convnextv2/train/meters.h"
#include "convnextv2/util/status_macros.h"

namespace convnextv2::apps {
namespace {

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

std::string ReconstructionFileName(int epoch) {
  return absl::StrFormat("reconstruction-%04d.png", epoch);
}

std::string ReconstructionFileName(int epoch, int64_t step) {
  return absl::StrFormat("reconstruction-%04d-step%06d.png", epoch, step);
}

namespace {

// FCMAE pre-training: main_pretrain.py / engine_pretrain.py.
class PretrainTask : public run::TrainingTask {
 public:
  explicit PretrainTask(PretrainResult* result) : result_(*result) {}

  absl::Status Build(const ExperimentConfig& config, const run::Runtime& runtime) override;
  const data::Loader& train_loader() const override { return *train_loader_; }
  std::shared_ptr<torch::nn::Module> model() const override { return model_.ptr(); }
  std::string DescribeModel() const override;
  train::RecipeOptions recipe_options() override {
    train::RecipeOptions options;
    options.groups = [this]() -> absl::StatusOr<std::vector<optim::ParamGroup>> {
      return optim::PretrainParamGroups(model_->named_parameters(),
                                        config_->optim().weight_decay());
    };
    options.allow_ema = false;  // main_pretrain.py keeps no EMA
    return options;
  }
  std::string checkpoint_model_name() const override {
    return run::FcmaeModelName(config_->model().model());
  }
  absl::Status OpenOutputs(const std::string& out_dir) override;

  // As engine_pretrain.py's MetricLogger and log_writer (record::MakePretrainRecord).
  const record::TaskRecord& task_record() const override { return record_; }
  absl::StatusOr<at::Tensor> Loss(const data::Batch& batch, int epoch, int64_t step,
                                  train::TrainingRecipe& recipe) override;
  absl::Status AfterStep(int epoch, int64_t global_step) override;
  int64_t ScalarStep(int epoch, int64_t step, int64_t steps_per_epoch) const override;
  std::string NonFiniteAdvice() const override {
    return "Lower the learning rate (blr/lr) or check the data.";
  }

  void SummarizeEpoch(const run::EpochInfo& epoch, const run::LoopMeters& meters) override;
  absl::Status EndEpoch(const run::EpochInfo& epoch) override;

 private:
  absl::Status Draw(const std::string& name);
  absl::Status SaveWeights(int epoch);

  PretrainResult& result_;
  const ExperimentConfig* config_ = nullptr;
  const run::Runtime* runtime_ = nullptr;
  std::unique_ptr<data::Dataset> train_set_;
  std::unique_ptr<data::Transform> train_transform_;
  std::unique_ptr<data::Loader> train_loader_;
  models::FCMAE model_{nullptr};
  std::string out_dir_;
  std::optional<ReconstructionWriter> pictures_;
  PretrainEpochStats stats_;  // of the current epoch
  record::TaskRecord record_ = record::MakePretrainRecord();
};

absl::Status PretrainTask::Build(const ExperimentConfig& config, const run::Runtime& runtime) {
  config_ = &config;
  runtime_ = &runtime;
  // Labels are unused: an image folder may hold any number of classes whatever nb_classes says.
  CONVNEXTV2_ASSIGN_OR_RETURN(
      train_set_, data::OpenDataset(config, data::Split::kTrain, data::Labels::kUnused));
  if (config.fcmae().train_subset() > 0) {
    train_set_ = std::make_unique<data::PrefixDataset>(std::move(train_set_),
                                                       config.fcmae().train_subset());
  }
  LOG(INFO) << "train: " << train_set_->Describe();
  // FCMAE's recipe: RandomResizedCrop(scale 0.2-1, bicubic) + flip for image folders; the
  // small-image transform for IDX/synthetic sets.
  CONVNEXTV2_ASSIGN_OR_RETURN(train_transform_, data::MakePretrainTransform(config));
  train_loader_ = std::make_unique<data::Loader>(
      train_set_.get(), train_transform_.get(),
      data::LoaderOptions(config, data::Split::kTrain, runtime.rank, runtime.world_size,
                          runtime.device));
  const int update_freq = config.train().update_freq();
  if (train_loader_->num_batches() < update_freq) {
    return absl::InvalidArgumentError(absl::StrCat(
        "train.batch_size ", config.train().batch_size(), " x train.update_freq ", update_freq,
        " needs more images than the training set has (", train_set_->size(),
        "): no optimizer step per epoch"));
  }
  CONVNEXTV2_ASSIGN_OR_RETURN(model_, models::BuildFcmae(config));
  model_->to(runtime.device);
  return absl::OkStatus();
}

std::string PretrainTask::DescribeModel() const {
  return absl::StrCat("model FCMAE ", config_->model().model(), " (",
                      config_->model().input_size(), " px, ", model_->num_patches(),
                      " patches, ", model_->len_keep(), " visible, GRN over ",
                      config_->fcmae().grn_scope(), ")");
}

absl::Status PretrainTask::OpenOutputs(const std::string& out_dir) {
  out_dir_ = out_dir;
  if (config_->fcmae().vis_images() > 0) {
    CONVNEXTV2_ASSIGN_OR_RETURN(
        pictures_, ReconstructionWriter::Create(*config_, *train_set_, runtime_->seed, *model_,
                                                runtime_->device));
  }
  return absl::OkStatus();
}

// Pictures and weights are written between steps while a person waits: each says when it
// starts and how long it took.
absl::Status PretrainTask::Draw(const std::string& name) {
  const std::string path = out_dir_ + "/" + name;
  LOG(INFO) << "reconstructions of " << pictures_->num_images() << " images: writing " << path;
  const auto start = std::chrono::steady_clock::now();
  CONVNEXTV2_ASSIGN_OR_RETURN(const double loss, pictures_->Write(*model_, path));
  LOG(INFO) << absl::StrFormat("reconstructions written in %.1f s (loss %.4f): %s",
                               SecondsSince(start), loss, path);
  return absl::OkStatus();
}

absl::Status PretrainTask::SaveWeights(int epoch) {
  result_.weights_path = out_dir_ + "/" + kFcmaeWeightsFile;
  LOG(INFO) << "weights of epoch " << epoch << ": writing " << result_.weights_path;
  const auto start = std::chrono::steady_clock::now();
  CONVNEXTV2_RETURN_IF_ERROR(
      checkpoint::SaveNamedTensors(model_->named_parameters(), result_.weights_path));
  LOG(INFO) << absl::StrFormat("weights of epoch %d written in %.1f s: %s", epoch,
                               SecondsSince(start), result_.weights_path);
  return absl::OkStatus();
}

absl::StatusOr<at::Tensor> PretrainTask::Loss(const data::Batch& batch, int epoch, int64_t step,
                                              train::TrainingRecipe& recipe) {
  const c10::Device device = runtime_->device;
  const at::Tensor images = batch.images.to(device, /*non_blocking=*/train_loader_->pinned());
  const at::Tensor mask =
      models::SampleMasks(*model_, config_->train().seed(), epoch, batch.indices).to(device);
  train::AutocastGuard autocast = recipe.Autocast();
  return model_->forward(images, mask).loss;
}

absl::Status PretrainTask::AfterStep(int epoch, int64_t global_step) {
  const int64_t vis_freq = config_->fcmae().vis_freq();
  if (!pictures_ || vis_freq <= 0 || global_step % vis_freq != 0) return absl::OkStatus();
  return Draw(ReconstructionFileName(epoch, global_step));
}

// engine_pretrain.py's x axis: epoch_1000x = int((data_iter_step / len(data_loader) + epoch)
// * 1000), which calibrates curves of different batch sizes.
int64_t PretrainTask::ScalarStep(int epoch, int64_t step, int64_t steps_per_epoch) const {
  return static_cast<int64_t>(
      (static_cast<double>(step) / static_cast<double>(steps_per_epoch) + epoch) * 1000);
}

void PretrainTask::SummarizeEpoch(const run::EpochInfo& epoch, const run::LoopMeters& meters) {
  stats_ = PretrainEpochStats();
  stats_.epoch = epoch.epoch;
  stats_.train_loss = meters.at(record_.loop.loss).mean();
  stats_.train_lr = meters.at(record_.loop.lr).mean();
  stats_.images_per_second = epoch.images_per_second;
  LOG(INFO) << absl::StrFormat("Epoch %d done in %s: loss %.4f, %.1f img/s", epoch.epoch,
                               train::FormatDuration(epoch.seconds), stats_.train_loss,
                               stats_.images_per_second);
}

absl::Status PretrainTask::EndEpoch(const run::EpochInfo& epoch) {
  const auto& k = config_->checkpoint();
  const int epochs = config_->train().epochs();
  if (!out_dir_.empty()) {
    if (pictures_) CONVNEXTV2_RETURN_IF_ERROR(Draw(ReconstructionFileName(epoch.epoch)));
    if (k.save_ckpt() &&
        ((epoch.epoch + 1) % k.save_ckpt_freq() == 0 || epoch.epoch + 1 == epochs)) {
      CONVNEXTV2_RETURN_IF_ERROR(SaveWeights(epoch.epoch));
    }
  }
  result_.epochs.push_back(stats_);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<PretrainResult> RunPretrain(const ExperimentConfig& config,
                                           const PretrainOptions& options) {
  PretrainResult result;
  PretrainTask task(&result);
  CONVNEXTV2_ASSIGN_OR_RETURN(const run::LoopResult loop,
                              run::RunTraining("pretrain", config, options, task));
  result.n_parameters = loop.n_parameters;
  result.preempted = loop.preempted;
  return result;
}

}  // namespace convnextv2::apps
