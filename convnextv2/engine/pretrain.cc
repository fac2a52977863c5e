#include "convnextv2/engine/pretrain.h"

#include <ATen/ATen.h>
#include <glog/logging.h>

#include <chrono>
#include <cmath>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "convnextv2/config/config.h"
#include "convnextv2/data/dataset.h"
#include "convnextv2/data/loader.h"
#include "convnextv2/data/transforms.h"
#include "convnextv2/dist/grad_sync.h"
#include "convnextv2/engine/data_parallel.h"
#include "convnextv2/engine/amp.h"
#include "convnextv2/engine/metrics.h"
#include "convnextv2/engine/named_tensors.h"
#include "convnextv2/engine/preemption.h"
#include "convnextv2/engine/reconstructions.h"
#include "convnextv2/engine/run_checkpoints.h"
#include "convnextv2/engine/run_record.h"
#include "convnextv2/engine/step_boundary.h"
#include "convnextv2/metrics/run_info.h"
#include "convnextv2/metrics/time_limit.h"
#include "convnextv2/engine/runtime.h"
#include "convnextv2/engine/train_step.h"
#include "convnextv2/models/fcmae.h"
#include "convnextv2/optim/optimizer.h"
#include "convnextv2/optim/param_groups.h"
#include "convnextv2/optim/schedule.h"
#include "convnextv2/util/files.h"
#include "convnextv2/util/signals.h"
#include "convnextv2/util/status_macros.h"

namespace convnextv2::engine {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}


std::string EpochJson(const PretrainEpochStats& e, int64_t n_parameters) {
  return absl::StrFormat(
      "{\"train_lr\": %.10g, \"train_loss\": %.10g, \"epoch\": %d, \"n_parameters\": %d}",
      e.train_lr, e.train_loss, e.epoch, n_parameters);
}

// The epoch's running meters, saved with a mid-epoch checkpoint so a resumed epoch logs the
// same means.
constexpr char kLossSum[] = "train.loss_sum", kLossCount[] = "train.loss_count",
               kLrSum[] = "train.lr_sum", kLrCount[] = "train.lr_count";

}  // namespace

std::vector<optim::ParamGroup> PretrainParamGroups(
    const torch::OrderedDict<std::string, at::Tensor>& named, double weight_decay) {
  optim::ParamGroup decay{"decay", weight_decay, 1.0, {}, {}};
  optim::ParamGroup no_decay{"no_decay", 0.0, 1.0, {}, {}};
  for (const auto& item : named) {
    if (!item.value().requires_grad()) continue;
    const std::string& name = item.key();
    const bool bias = name.size() >= 5 && name.compare(name.size() - 5, 5, ".bias") == 0;
    optim::ParamGroup& g = (item.value().dim() == 1 || bias) ? no_decay : decay;
    g.param_names.push_back(name);
    g.params.push_back(item.value());
  }
  return {no_decay, decay};
}

std::string ReconstructionFileName(int epoch) {
  return absl::StrFormat("reconstruction-%04d.png", epoch);
}

std::string ReconstructionFileName(int epoch, int64_t step) {
  return absl::StrFormat("reconstruction-%04d-step%06d.png", epoch, step);
}

namespace {

absl::StatusOr<PretrainResult> TrainPretrain(const ExperimentConfig& input_config,
                                             const PretrainOptions& options, RunRecord* record) {
  ExperimentConfig config = input_config;
  const auto start = Clock::now();
  const auto& f = config.fcmae();

  // ---- runtime -----------------------------------------------------------------------------
  absl::StatusOr<Runtime> runtime = SetUpRuntime(config);
  CONVNEXTV2_RETURN_IF_ERROR(runtime);
  const c10::Device device = runtime->device;
  const int world_size = runtime->world_size, rank = runtime->rank;
  const uint64_t seed = runtime->seed;
  const bool writer = runtime->writer();
  dist::Communicator* const comm = runtime->comm.get();

  // ---- data --------------------------------------------------------------------------------
  // Labels are unused: an image folder may hold any number of classes whatever nb_classes says.
  absl::StatusOr<std::unique_ptr<data::Dataset>> train_set =
      data::OpenDataset(config, data::Split::kTrain, data::Labels::kUnused);
  CONVNEXTV2_RETURN_IF_ERROR(train_set);
  if (f.train_subset() > 0) {
    *train_set = std::make_unique<data::PrefixDataset>(std::move(*train_set), f.train_subset());
  }
  LOG(INFO) << "train: " << (*train_set)->Describe();
  // FCMAE's recipe: RandomResizedCrop(scale 0.2-1, bicubic) + flip for image folders; the
  // small-image transform for IDX/synthetic sets.
  absl::StatusOr<std::unique_ptr<data::Transform>> train_transform =
      data::MakePretrainTransform(config);
  CONVNEXTV2_RETURN_IF_ERROR(train_transform);
  data::Loader train_loader(
      train_set->get(), train_transform->get(),
      data::LoaderOptions(config, data::Split::kTrain, rank, world_size, device));
  const int64_t steps_per_epoch = train_loader.num_batches();
  const int update_freq = config.train().update_freq();
  if (steps_per_epoch < update_freq) {
    return absl::InvalidArgumentError(absl::StrCat(
        "train.batch_size ", config.train().batch_size(), " x train.update_freq ", update_freq,
        " needs more images than the training set has (", (*train_set)->size(),
        "): no optimizer step per epoch"));
  }

  // ---- model -------------------------------------------------------------------------------
  absl::StatusOr<models::FCMAE> built = BuildFcmae(config);
  CONVNEXTV2_RETURN_IF_ERROR(built);
  models::FCMAE model = *built;
  model->to(device);
  if (comm != nullptr) {  // every rank starts from rank 0's weights
    CONVNEXTV2_RETURN_IF_ERROR(BroadcastModule(*comm, *model));
  }
  PretrainResult result;
  for (const at::Tensor& p : model->parameters()) {
    if (p.requires_grad()) result.n_parameters += p.numel();
  }
  LOG(INFO) << "model FCMAE " << config.model().model() << " (" << config.model().input_size()
            << " px, " << model->num_patches() << " patches, " << model->len_keep()
            << " visible, GRN over " << f.grn_scope() << "), number of params: "
            << result.n_parameters;

  // ---- optimizer ---------------------------------------------------------------------------
  const double lr = config::EffectiveLr(config, world_size);
  const int64_t eff_batch =
      static_cast<int64_t>(config.train().batch_size()) * update_freq * world_size;
  LOG(INFO) << absl::StrFormat(
      "base lr: %.2e, actual lr: %.2e, accumulate grad iterations: %d, effective batch size: %d",
      lr * 256.0 / eff_batch, lr, update_freq, eff_batch);
  config.mutable_optim()->set_lr(lr);
  const std::vector<optim::ParamGroup> groups =
      PretrainParamGroups(model->named_parameters(), config.optim().weight_decay());
  absl::StatusOr<std::unique_ptr<torch::optim::Optimizer>> optimizer =
      optim::CreateOptimizer(config, groups, lr);
  CONVNEXTV2_RETURN_IF_ERROR(optimizer);
  const optim::LrSchedule schedule = optim::LrSchedule::FromConfig(config, lr, steps_per_epoch);
  // Accumulation and, with use_amp, autocast plus dynamic loss scaling, as in fine-tuning
  // (main_pretrain.py always wraps the step in its NativeScaler, without autocast).
  const bool use_amp = config.train().use_amp();
  c10::ScalarType amp_dtype = c10::ScalarType::BFloat16;
  if (use_amp) {
    absl::StatusOr<c10::ScalarType> dtype = AmpDtype(config, device);
    CONVNEXTV2_RETURN_IF_ERROR(dtype);
    amp_dtype = *dtype;
  }
  std::vector<at::Tensor> trainable;
  for (const optim::ParamGroup& g : groups) {
    trainable.insert(trainable.end(), g.params.begin(), g.params.end());
  }
  StepperOptions stepper_options;
  stepper_options.update_freq = update_freq;
  stepper_options.use_scaler = use_amp;
  OptimizerStepper stepper(optimizer->get(), std::move(trainable), stepper_options);
  if (use_amp) {
    LOG(INFO) << "mixed precision: autocast to " << c10::toString(amp_dtype)
              << ", dynamic loss scale " << stepper.scaler().scale();
  }
  std::unique_ptr<dist::GradientSync> grad_sync;
  if (comm != nullptr) {
    grad_sync = SyncGradients(runtime->comm, *model, config.distributed(), &stepper);
  }

  // ---- resume ------------------------------------------------------------------------------
  RunCheckpoints ckpts(config, writer, *model, **optimizer, steps_per_epoch,
                       FcmaeModelName(config.model().model()));
  if (use_amp) AddLossScalerState(&stepper.scaler(), &ckpts);
  absl::StatusOr<LoopState> state = ckpts.Resume();
  CONVNEXTV2_RETURN_IF_ERROR(state);
  // The checkpoint holds rank 0's generator: the other ranks draw their own again (drop path).
  if (state->resumed && rank > 0) at::manual_seed(runtime->seed + 1000003 * state->global_step);

  // ---- outputs -----------------------------------------------------------------------------
  // Only rank 0 writes; the other ranks read the same output dir to resume.
  const std::string out_dir = writer ? config.output().output_dir() : std::string();
  std::optional<ReconstructionWriter> pictures;
  if (!out_dir.empty()) {
    CONVNEXTV2_RETURN_IF_ERROR(util::MakeDirs(out_dir));
    CONVNEXTV2_RETURN_IF_ERROR(
        util::WriteFileAtomically(out_dir + "/config.pbtxt", config::ToText(config)));
    if (f.vis_images() > 0) {
      absl::StatusOr<ReconstructionWriter> w =
          ReconstructionWriter::Create(config, **train_set, seed, *model, device);
      CONVNEXTV2_RETURN_IF_ERROR(w);
      pictures.emplace(std::move(*w));
    }
  }
  if (!options.command_line.empty()) LOG(INFO) << "command line: " << options.command_line;
  if (writer) {
    CONVNEXTV2_RETURN_IF_ERROR(StartLogs(config, *state, record));
  }
  auto draw = [&](const std::string& name) -> absl::Status {
    const std::string path = out_dir + "/" + name;
    absl::StatusOr<double> loss = pictures->Write(*model, path);
    CONVNEXTV2_RETURN_IF_ERROR(loss);
    LOG(INFO) << "reconstructions of " << pictures->num_images() << " images (loss "
              << absl::StrFormat("%.4f", *loss) << "): " << path;
    return absl::OkStatus();
  };

  // ---- loop --------------------------------------------------------------------------------
  const int epochs = config.train().epochs();
  const int print_freq = config.train().print_freq();
  LOG(INFO) << "Start training for " << epochs << " epochs, " << steps_per_epoch
            << " steps per epoch";
  const auto train_start = Clock::now();
  double lr_now = 0;
  const auto& k = config.checkpoint();
  const absl::StatusOr<int> preempt_signal = util::ParseSignalName(k.preempt_signal());
  CONVNEXTV2_RETURN_IF_ERROR(preempt_signal);
  const PreemptionWatch preemption(*preempt_signal,
                                   metrics::TimeLimit::FromSlurm(k.preempt_lead_seconds()));
  StepBoundaries boundaries(ckpts, preemption, comm, options.stop_epoch, options.stop_step);
  for (int epoch = state->next_epoch; epoch < epochs; ++epoch) {
    model->train();
    MeanMeter loss_meter, lr_meter, step_time;
    PretrainEpochStats stats;
    stats.epoch = epoch;
    const auto epoch_start = Clock::now();
    stepper.ZeroGrad();
    int64_t first_step = 0;
    if (epoch == state->next_epoch && state->next_step > 0) {  // resumed mid-epoch
      first_step = state->next_step;
      loss_meter.Restore(state->scalars[kLossSum], state->scalars[kLossCount]);
      lr_meter.Restore(state->scalars[kLrSum], state->scalars[kLrCount]);
    }
    data::BatchIterator batches = train_loader.Iterate(epoch, first_step);
    for (int64_t it = first_step; it < steps_per_epoch; ++it) {
      // Only the start of an accumulation group is a step boundary where the whole state is
      // consistent, so a checkpoint there resumes exactly.
      if (it % update_freq == 0) {
        absl::StatusOr<bool> stop = boundaries.Reached(epoch, it, first_step, &*state, [&] {
          return std::map<std::string, double>{{kLossSum, loss_meter.sum()},
                                               {kLossCount, loss_meter.count()},
                                               {kLrSum, lr_meter.sum()},
                                               {kLrCount, lr_meter.count()}};
        });
        CONVNEXTV2_RETURN_IF_ERROR(stop);
        if (*stop) {
          result.preempted = true;
          CONVNEXTV2_RETURN_IF_ERROR(record->Flush());
          return result;
        }
      }
      const auto step_start = Clock::now();
      if (it % update_freq == 0) {
        lr_now = schedule.At(static_cast<int64_t>(epoch) * steps_per_epoch + it);
        optim::SetLearningRates(**optimizer, groups, lr_now);
      }
      absl::StatusOr<data::Batch> batch = batches.Next();
      CONVNEXTV2_RETURN_IF_ERROR(batch);
      const at::Tensor images = batch->images.to(device, /*non_blocking=*/train_loader.pinned());
      const at::Tensor mask =
          SampleMasks(*model, config.train().seed(), epoch, batch->indices).to(device);
      at::Tensor loss;
      {
        AutocastGuard autocast(device.type(), amp_dtype, use_amp);
        loss = model->forward(images, mask).loss;
      }
      const double loss_value = loss.item<double>();
      // Under AMP a non-finite loss gives non-finite gradients, which the loss scaler skips.
      if (!std::isfinite(loss_value) && !use_amp) {
        return absl::InternalError(absl::StrFormat(
            "loss is %f at epoch %d step %d (lr %.3g); stopping training. Lower the learning "
            "rate (blr/lr) or check the data.",
            loss_value, epoch, it, lr_now));
      }
      const MicroStepResult step = stepper.Backward(loss, it);
      if (!step.error.ok()) return step.error;
      if (step.boundary && !step.stepped) {
        LOG(WARNING) << absl::StrFormat(
            "epoch %d step %d: non-finite gradients, optimizer step skipped; loss scale now %g",
            epoch, it, stepper.scaler().scale());
      }
      loss_meter.Add(loss_value);
      lr_meter.Add(lr_now);
      step_time.Add(Seconds(step_start));
      metrics::TrainRow row;
      row.step = static_cast<int64_t>(epoch) * steps_per_epoch + it;
      row.epoch = epoch;
      row.loss = loss_value;
      row.lr = row.min_lr = lr_now;  // one lr for every group in pre-training
      row.weight_decay = config.optim().weight_decay();
      if (step.boundary && step.stepped) row.grad_norm = step.grad_norm;
      row.images_per_second =
          config.train().batch_size() * world_size / std::max(step_time.recent(), 1e-9);
      row.wall_time = record->WallTime();
      record->AddTrain(row);
      state->global_step = static_cast<int64_t>(epoch) * steps_per_epoch + it + 1;
      if (pictures && f.vis_freq() > 0 && state->global_step % f.vis_freq() == 0) {
        CONVNEXTV2_RETURN_IF_ERROR(draw(ReconstructionFileName(epoch, state->global_step)));
      }
      if ((it + 1) % print_freq == 0 || it + 1 == steps_per_epoch) {
        const double eta = step_time.recent() * (steps_per_epoch - it - 1);
        LOG(INFO) << absl::StrFormat(
            "Epoch: [%d]  [%*d/%d]  eta: %s  lr: %.6f  loss: %.4f (%.4f)  img/s: %.1f  "
            "time: %.3f",
            epoch, static_cast<int>(std::to_string(steps_per_epoch).size()), it + 1,
            steps_per_epoch, FormatDuration(eta), lr_now, loss_meter.recent(), loss_meter.mean(),
            config.train().batch_size() * world_size / std::max(step_time.recent(), 1e-9),
            step_time.recent());
      }
    }
    const double epoch_seconds = Seconds(epoch_start);
    if (comm != nullptr) {
      CONVNEXTV2_RETURN_IF_ERROR(ReduceMeters(*comm, {&loss_meter}));
    }
    stats.train_loss = loss_meter.mean();
    stats.train_lr = lr_meter.mean();
    stats.images_per_second = static_cast<double>(steps_per_epoch - first_step) *
                              config.train().batch_size() * world_size / epoch_seconds;
    LOG(INFO) << absl::StrFormat("Epoch %d done in %s: loss %.4f, %.1f img/s", epoch,
                                 FormatDuration(epoch_seconds), stats.train_loss,
                                 stats.images_per_second);
    if (!out_dir.empty()) {
      if (pictures) {
        CONVNEXTV2_RETURN_IF_ERROR(draw(ReconstructionFileName(epoch)));
      }
      if (k.save_ckpt() && ((epoch + 1) % k.save_ckpt_freq() == 0 || epoch + 1 == epochs)) {
        result.weights_path = out_dir + "/" + kFcmaeWeightsFile;
        CONVNEXTV2_RETURN_IF_ERROR(
            SaveNamedTensors(model->named_parameters(), result.weights_path));
        LOG(INFO) << "weights of epoch " << epoch << ": " << result.weights_path;
      }
      CONVNEXTV2_RETURN_IF_ERROR(
          util::AppendLine(out_dir + "/log.txt", EpochJson(stats, result.n_parameters)));
    }
    result.epochs.push_back(stats);
    state->next_epoch = epoch + 1;
    state->next_step = 0;
    state->scalars.clear();
    CONVNEXTV2_RETURN_IF_ERROR(record->Flush());
    CONVNEXTV2_RETURN_IF_ERROR(ckpts.SaveEpochEnd(epoch, *state));
  }
  LOG(INFO) << "Training time " << FormatDuration(Seconds(train_start)) << " (total "
            << FormatDuration(Seconds(start)) << ")";
  return result;
}

}  // namespace

absl::StatusOr<PretrainResult> RunPretrain(const ExperimentConfig& config,
                                           const PretrainOptions& options) {
  RunRecord record("pretrain", options.command_line);
  absl::StatusOr<PretrainResult> result = TrainPretrain(config, options, &record);
  // A run stopped on a signal after saving exits 75 (requeue): the manifest says so.
  absl::Status recorded =
      result.ok() && result->preempted
          ? record.FinishWithExitStatus(kExitRequeue,
                                        "stopped on a signal after saving a checkpoint")
          : record.Finish(result.status());
  if (result.ok() && !recorded.ok()) return recorded;
  return result;
}

}  // namespace convnextv2::engine
