#include "convnextv2/engine/finetune.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <glog/logging.h>

#include <chrono>
#include <cmath>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "convnextv2/checkpoint/file.h"
#include "convnextv2/checkpoint/pretrained.h"
#include "convnextv2/checkpoint/state.h"
#include "convnextv2/config/config.h"
#include "convnextv2/data/dataset.h"
#include "convnextv2/data/loader.h"
#include "convnextv2/data/mixup.h"
#include "convnextv2/data/transforms.h"
#include "convnextv2/engine/data_parallel.h"
#include "convnextv2/engine/losses.h"
#include "convnextv2/engine/metrics.h"
#include "convnextv2/engine/preemption.h"
#include "convnextv2/engine/recipe.h"
#include "convnextv2/engine/run_checkpoints.h"
#include "convnextv2/engine/run_record.h"
#include "convnextv2/engine/step_boundary.h"
#include "convnextv2/metrics/run_info.h"
#include "convnextv2/metrics/time_limit.h"
#include "convnextv2/engine/runtime.h"
#include "convnextv2/models/registry.h"
#include "convnextv2/util/files.h"
#include "convnextv2/util/signals.h"
#include "convnextv2/util/status_macros.h"

namespace convnextv2::engine {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

// With `comm` (dist_eval in a multi-process run) every rank evaluates its shard and the sums
// are added up; the samples the sampler repeated to even out the ranks are not counted, so the
// result is exactly that of one process over the whole set, for any number of processes.
EvalStats Evaluate(models::ConvNeXtV2& model, const data::Loader& loader, c10::Device device,
                   const TrainingRecipe& recipe, dist::Communicator* comm, absl::Status* error) {
  c10::NoGradGuard no_grad;
  model->eval();
  EvalStats stats;
  double loss_sum = 0;
  int64_t correct1 = 0, correct5 = 0;
  data::BatchIterator batches = loader.Iterate(/*epoch=*/0);
  for (int64_t b = 0; b < loader.num_batches(); ++b) {
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
      AutocastGuard autocast = recipe.Autocast();  // the official evaluate(use_amp=...)
      logits = model->forward(images).to(at::kFloat);
    }
    const int64_t n = labels.size(0);
    loss_sum += at::cross_entropy_loss(logits, labels).item<double>() * n;
    correct1 += TopKCorrect(logits, labels, 1);
    correct5 += TopKCorrect(logits, labels, 5);
    stats.samples += n;
  }
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

std::string EpochJson(const EpochStats& e, int64_t n_parameters) {
  std::string json = absl::StrFormat(
      "{\"train_lr\": %.10g, \"train_loss\": %.10g, \"train_class_acc\": %.10g, "
      "\"train_images_per_second\": %.6g, \"train_min_lr\": %.10g, "
      "\"train_weight_decay\": %.10g, \"train_grad_norm\": %.10g",
      e.train_lr, e.train_loss, e.train_class_acc, e.images_per_second, e.train_min_lr,
      e.train_weight_decay, e.train_grad_norm);
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
  LOG(INFO) << "Load pre-trained checkpoint from: " << path << " (" << r.format
            << (r.key.empty() ? "" : ", key '" + r.key + "'") << ")";
  for (const std::string& k : r.dropped) LOG(INFO) << "Removing key " << k << " from pretrained checkpoint";
  LOG(INFO) << r.load.loaded.size() << " tensors loaded";
  if (!r.load.missing.empty()) {
    LOG(INFO) << "Weights not initialized from pretrained model: " << absl::StrJoin(r.load.missing, ", ");
  }
  if (!r.load.unexpected.empty()) {
    LOG(INFO) << "Weights from pretrained model not used: " << absl::StrJoin(r.load.unexpected, ", ");
  }
  if (!r.load.shape_mismatch.empty()) {
    LOG(INFO) << "Weights skipped for their shape: " << absl::StrJoin(r.load.shape_mismatch, ", ");
  }
}

// eval.eval: the chosen weights (model or EMA) of checkpoint.resume, or checkpoint.finetune
// weights, evaluated once. Strict: evaluating a partly loaded model would mislead.
absl::StatusOr<EvalStats> EvaluateOnly(const ExperimentConfig& config, models::ConvNeXtV2& model,
                                       const data::Loader* loader, c10::Device device,
                                       const TrainingRecipe& recipe, dist::Communicator* comm) {
  if (loader == nullptr) {
    return absl::InvalidArgumentError("eval.eval with eval.disable_eval: nothing to evaluate");
  }
  const auto& k = config.checkpoint();
  if (!k.resume().empty()) {
    absl::StatusOr<checkpoint::Checkpoint> ckpt = checkpoint::ReadCheckpoint(k.resume());
    CONVNEXTV2_RETURN_IF_ERROR(ckpt);
    const bool ema = config.eval().eval_weights() == "ema";
    const std::string what = absl::StrCat("checkpoint ", k.resume());
    CONVNEXTV2_RETURN_IF_ERROR(checkpoint::LoadModule(*ckpt, ema ? "model_ema." : "model.", *model,
                                                      /*strict=*/true, what));
    LOG(INFO) << "Evaluating the " << (ema ? "EMA" : "model") << " weights of " << k.resume()
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

// The recipe's state beyond model and optimizer: the EMA weights ("model_ema.<name>") and the
// loss scaler ("scaler.scale", "scaler.growth_tracker"), so that a resumed run continues both.
void AddRecipeState(TrainingRecipe& recipe, models::ConvNeXtV2 model, RunCheckpoints* ckpts) {
  const std::string kEma = "model_ema.";
  ckpts->AddExtraState(
      [&recipe, kEma](checkpoint::Checkpoint* ckpt) {
        if (ModelEma* ema = recipe.ema()) {
          for (const auto& item : ema->StateDict()) ckpt->Add(kEma + item.key(), item.value());
        }
      },
      [&recipe, kEma, model](const checkpoint::Checkpoint& ckpt) -> absl::Status {
        if (ModelEma* ema = recipe.ema()) {
          torch::OrderedDict<std::string, at::Tensor> state;
          for (auto& [name, tensor] : ckpt.WithPrefix(kEma)) state.insert(name, tensor);
          if (state.is_empty()) {
            LOG(WARNING) << "the checkpoint holds no EMA weights: the EMA restarts from the "
                            "resumed model";
            for (const auto& [name, tensor] : checkpoint::ModuleState(*model)) {
              state.insert(name, tensor);
            }
          }
          CONVNEXTV2_RETURN_IF_ERROR(ema->LoadStateDict(state));
        }
        return absl::OkStatus();
      });
  if (recipe.use_amp()) AddLossScalerState(&recipe.scaler(), ckpts);
}

constexpr char kLossSum[] = "train.loss_sum", kLossCount[] = "train.loss_count",
               kAccSum[] = "train.acc_sum", kAccCount[] = "train.acc_count",
               kGradSum[] = "train.grad_norm_sum", kGradCount[] = "train.grad_norm_count";

absl::StatusOr<FinetuneResult> TrainAndEvaluate(const ExperimentConfig& input_config,
                                                const RunOptions& options, RunRecord* record) {
  ExperimentConfig config = input_config;
  const auto start = Clock::now();

  // ---- runtime -----------------------------------------------------------------------------
  absl::StatusOr<Runtime> runtime = SetUpRuntime(config);
  CONVNEXTV2_RETURN_IF_ERROR(runtime);
  const c10::Device device = runtime->device;
  const int world_size = runtime->world_size, rank = runtime->rank;
  const bool writer = runtime->writer();
  dist::Communicator* const comm = runtime->comm.get();
  // dist_eval: each rank evaluates its shard (exact: padding not counted); otherwise every rank
  // evaluates the whole set, as the official script does without --dist_eval.
  const bool dist_eval = comm != nullptr && config.eval().dist_eval();
  dist::Communicator* const eval_comm = dist_eval ? comm : nullptr;

  // ---- data --------------------------------------------------------------------------------
  absl::StatusOr<std::unique_ptr<data::Dataset>> train_set =
      data::OpenDataset(config, data::Split::kTrain);
  CONVNEXTV2_RETURN_IF_ERROR(train_set);
  std::unique_ptr<data::Dataset> eval_set;
  if (!config.eval().disable_eval()) {
    absl::StatusOr<std::unique_ptr<data::Dataset>> ds =
        data::OpenDataset(config, data::Split::kEval);
    CONVNEXTV2_RETURN_IF_ERROR(ds);
    eval_set = std::move(*ds);
  }
  if ((*train_set)->num_classes() > config.model().nb_classes()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "model.nb_classes is ", config.model().nb_classes(), " but ", (*train_set)->Describe(),
        " has labels up to ", (*train_set)->num_classes() - 1));
  }
  LOG(INFO) << "train: " << (*train_set)->Describe();
  if (eval_set) LOG(INFO) << "eval: " << eval_set->Describe();
  auto train_transform = data::MakeTransform(config, data::Split::kTrain);
  CONVNEXTV2_RETURN_IF_ERROR(train_transform);
  auto eval_transform = data::MakeTransform(config, data::Split::kEval);
  CONVNEXTV2_RETURN_IF_ERROR(eval_transform);
  data::Loader train_loader(
      train_set->get(), train_transform->get(),
      data::LoaderOptions(config, data::Split::kTrain, rank, world_size, device));
  // Mixup/CutMix: soft targets and SoftTargetCrossEntropy (label smoothing folded in).
  const std::optional<data::Mixup> mixup = data::Mixup::FromConfig(config);
  const int64_t steps_per_epoch = train_loader.num_batches();
  if (steps_per_epoch == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "train.batch_size ", config.train().batch_size(), " is larger than the training set (",
        (*train_set)->size(), " images): no full batch per epoch"));
  }
  std::unique_ptr<data::Loader> eval_loader;
  if (eval_set) {
    eval_loader = std::make_unique<data::Loader>(
        eval_set.get(), eval_transform->get(),
        data::LoaderOptions(config, data::Split::kEval, dist_eval ? rank : 0,
                            dist_eval ? world_size : 1, device));
  }

  // ---- model -------------------------------------------------------------------------------
  absl::StatusOr<models::ConvNeXtV2> created = models::CreateConvNeXtV2(
      config.model().model(), config.model().nb_classes(), config.model().drop_path(),
      config.model().head_init_scale());
  CONVNEXTV2_RETURN_IF_ERROR(created);
  models::ConvNeXtV2 model = *created;
  model->to(device);
  // Every rank starts from rank 0's weights (each rank's seed differs).
  if (comm != nullptr) {
    CONVNEXTV2_RETURN_IF_ERROR(BroadcastModule(*comm, *model));
  }
  FinetuneResult result;
  for (const at::Tensor& p : model->parameters()) {
    if (p.requires_grad()) result.n_parameters += p.numel();
  }
  LOG(INFO) << "model " << config.model().model() << ", number of params: "
            << result.n_parameters;

  // ---- optimizer, schedules, AMP, EMA ------------------------------------------------------
  absl::StatusOr<std::unique_ptr<TrainingRecipe>> recipe =
      TrainingRecipe::Create(config, model, device, steps_per_epoch, world_size);
  CONVNEXTV2_RETURN_IF_ERROR(recipe);
  if (comm != nullptr) {
    (*recipe)->EnableDataParallel(runtime->comm, config.distributed());
  }
  config.mutable_optim()->set_lr((*recipe)->lr());  // recorded: a rerun uses this lr
  const double smoothing = config.aug().smoothing();

  // ---- evaluation only, resume, or initialization from pre-trained weights ------------------
  if (config.eval().eval()) {
    absl::StatusOr<EvalStats> stats =
        EvaluateOnly(config, model, eval_loader.get(), device, **recipe, eval_comm);
    CONVNEXTV2_RETURN_IF_ERROR(stats);
    result.eval_only = *stats;
    result.max_accuracy = stats->acc1;
    return result;
  }
  RunCheckpoints ckpts(config, writer, *model, (*recipe)->optimizer(),
                       steps_per_epoch);
  AddRecipeState(**recipe, model, &ckpts);
  absl::StatusOr<LoopState> state = ckpts.Resume();
  CONVNEXTV2_RETURN_IF_ERROR(state);
  // The checkpoint holds rank 0's generator: the other ranks draw their own again (drop path).
  if (state->resumed && rank > 0) at::manual_seed(runtime->seed + 1000003 * state->global_step);
  const auto& k = config.checkpoint();
  if (!state->resumed && !k.finetune().empty()) {
    absl::StatusOr<checkpoint::PretrainedReport> r = checkpoint::InitFromPretrained(
        k.finetune(), k.model_key(), k.model_prefix(), *model, /*reinit_head=*/true);
    CONVNEXTV2_RETURN_IF_ERROR(r);
    LogPretrained(k.finetune(), *r);
    // The re-initialized head differs per rank: rank 0's wins. The EMA starts from the loaded
    // weights, as the official script creates it after loading them.
    if (comm != nullptr) {
      CONVNEXTV2_RETURN_IF_ERROR(BroadcastModule(*comm, *model));
    }
    CONVNEXTV2_RETURN_IF_ERROR((*recipe)->ResetEmaFromModel());
  }
  result.max_accuracy = std::max(0.0, state->best_acc1);
  result.max_accuracy_ema = std::max(0.0, state->best_ema_acc1);

  // ---- outputs -----------------------------------------------------------------------------
  // Only rank 0 writes; the other ranks read the same output dir to resume.
  const std::string out_dir = writer ? config.output().output_dir() : std::string();
  if (!out_dir.empty()) {
    CONVNEXTV2_RETURN_IF_ERROR(util::MakeDirs(out_dir));
    CONVNEXTV2_RETURN_IF_ERROR(
        util::WriteFileAtomically(out_dir + "/config.pbtxt", config::ToText(config)));
  }
  if (!options.command_line.empty()) LOG(INFO) << "command line: " << options.command_line;
  if (writer) {
    CONVNEXTV2_RETURN_IF_ERROR(StartLogs(config, *state, record));
  }

  // ---- loop --------------------------------------------------------------------------------
  const int epochs = config.train().epochs();
  const int print_freq = config.train().print_freq();
  LOG(INFO) << "Start training for " << epochs << " epochs, " << steps_per_epoch
            << " steps per epoch";
  const auto train_start = Clock::now();
  const absl::StatusOr<int> preempt_signal = util::ParseSignalName(k.preempt_signal());
  CONVNEXTV2_RETURN_IF_ERROR(preempt_signal);
  const PreemptionWatch preemption(*preempt_signal,
                                   metrics::TimeLimit::FromSlurm(k.preempt_lead_seconds()));
  StepBoundaries boundaries(ckpts, preemption, comm, options.stop_epoch, options.stop_step);
  for (int epoch = state->next_epoch; epoch < epochs; ++epoch) {
    model->train();
    MeanMeter loss_meter, acc_meter, step_time;
    EpochStats stats;
    stats.epoch = epoch;
    const auto epoch_start = Clock::now();
    MeanMeter grad_norm_meter;
    (*recipe)->StartEpoch();
    int64_t first_step = 0;
    if (epoch == state->next_epoch && state->next_step > 0) {  // resumed mid-epoch
      first_step = state->next_step;
      loss_meter.Restore(state->scalars[kLossSum], state->scalars[kLossCount]);
      acc_meter.Restore(state->scalars[kAccSum], state->scalars[kAccCount]);
      grad_norm_meter.Restore(state->scalars[kGradSum], state->scalars[kGradCount]);
    }
    data::BatchIterator batches = train_loader.Iterate(epoch, first_step);
    for (int64_t it = first_step; it < steps_per_epoch; ++it) {
      // A step boundary: the whole state is consistent, so a checkpoint here resumes exactly.
      // With update_freq > 1 only the start of an accumulation group is such a boundary.
      if (it % (*recipe)->update_freq() == 0) {
        absl::StatusOr<bool> stop = boundaries.Reached(epoch, it, first_step, &*state, [&] {
          return std::map<std::string, double>{
              {kLossSum, loss_meter.sum()},     {kLossCount, loss_meter.count()},
              {kAccSum, acc_meter.sum()},       {kAccCount, acc_meter.count()},
              {kGradSum, grad_norm_meter.sum()}, {kGradCount, grad_norm_meter.count()}};
        });
        CONVNEXTV2_RETURN_IF_ERROR(stop);
        if (*stop) {
          result.preempted = true;
          CONVNEXTV2_RETURN_IF_ERROR(record->Flush());
          return result;
        }
      }
      const auto step_start = Clock::now();
      (*recipe)->BeginMicroBatch(epoch, it);
      const double lr_now = (*recipe)->max_lr();
      absl::StatusOr<data::Batch> batch = batches.Next();
      CONVNEXTV2_RETURN_IF_ERROR(batch);
      at::Tensor soft_targets;
      if (mixup) {
        data::SampleRng mix_rng(data::KeyedSeed(config.train().seed(), epoch, it,
                                                data::Purpose::kMixup));
        soft_targets = mixup->Apply(batch->images, batch->labels, mix_rng).to(device);
      }
      const at::Tensor images = batch->images.to(device, /*non_blocking=*/train_loader.pinned());
      const at::Tensor labels = batch->labels.to(device);
      at::Tensor logits, loss;
      {
        AutocastGuard autocast = (*recipe)->Autocast();
        logits = model->forward(images);
        loss = mixup ? SoftTargetCrossEntropy(logits, soft_targets)
                     : CrossEntropy(logits, labels, smoothing);
      }
      const double loss_value = loss.item<double>();
      // Under AMP a non-finite loss gives non-finite gradients, which the loss scaler skips.
      if (!std::isfinite(loss_value) && !(*recipe)->use_amp()) {
        return absl::InternalError(absl::StrFormat(
            "loss is %f at epoch %d step %d (lr %.3g); stopping training. Lower the learning "
            "rate (blr/lr), set clip_grad, or check the data.",
            loss_value, epoch, it, lr_now));
      }
      const MicroStepResult step = (*recipe)->Backward(loss, it);
      if (!step.error.ok()) return step.error;
      if (step.boundary && step.stepped) grad_norm_meter.Add(step.grad_norm);
      if (step.boundary && !step.stepped) {
        LOG(WARNING) << absl::StrFormat(
            "epoch %d step %d: non-finite gradients, optimizer step skipped; loss scale now %g",
            epoch, it, (*recipe)->scaler().scale());
      }
      const double acc =
          logits.argmax(1).eq(labels).to(at::kFloat).mean().item<double>();
      loss_meter.Add(loss_value);
      acc_meter.Add(acc);
      step_time.Add(Seconds(step_start));
      stats.train_lr = lr_now;
      stats.train_min_lr = (*recipe)->min_lr();
      stats.train_weight_decay = (*recipe)->weight_decay();
      state->global_step = static_cast<int64_t>(epoch) * steps_per_epoch + it + 1;
      metrics::TrainRow row;
      row.step = static_cast<int64_t>(epoch) * steps_per_epoch + it;
      row.epoch = epoch;
      row.loss = loss_value;
      row.lr = lr_now;
      row.min_lr = stats.train_min_lr;
      row.weight_decay = stats.train_weight_decay;
      if (step.boundary && step.stepped) row.grad_norm = step.grad_norm;
      row.class_acc = acc;
      row.images_per_second =
          config.train().batch_size() * world_size / std::max(step_time.recent(), 1e-9);
      row.wall_time = record->WallTime();
      record->AddTrain(row);
      if ((it + 1) % print_freq == 0 || it + 1 == steps_per_epoch) {
        const double eta = step_time.recent() * (steps_per_epoch - it - 1);
        LOG(INFO) << absl::StrFormat(
            "Epoch: [%d]  [%*d/%d]  eta: %s  lr: %.6f  min_lr: %.6f  loss: %.4f (%.4f)  "
            "class_acc: %.4f (%.4f)  weight_decay: %.4f  grad_norm: %.4f  img/s: %.0f  "
            "time: %.3f",
            epoch, static_cast<int>(std::to_string(steps_per_epoch).size()), it + 1,
            steps_per_epoch, FormatDuration(eta), lr_now, stats.train_min_lr, loss_meter.recent(),
            loss_meter.mean(), acc_meter.recent(), acc_meter.mean(), stats.train_weight_decay,
            grad_norm_meter.last(),
            config.train().batch_size() * world_size / std::max(step_time.recent(), 1e-9),
            step_time.recent());
      }
    }
    const double epoch_seconds = Seconds(epoch_start);
    if (comm != nullptr) {  // the epoch's averages over all ranks, as synchronize_between_processes
      absl::Status s = ReduceMeters(*comm, {&loss_meter, &acc_meter});
      if (!s.ok()) return s;
    }
    stats.train_loss = loss_meter.mean();
    stats.train_class_acc = acc_meter.mean();
    stats.train_grad_norm = grad_norm_meter.mean();
    stats.images_per_second = static_cast<double>(steps_per_epoch - first_step) *
                              config.train().batch_size() * world_size / epoch_seconds;
    LOG(INFO) << absl::StrFormat("Epoch %d done in %s: loss %.4f, class_acc %.4f, %.0f img/s",
                                 epoch, FormatDuration(epoch_seconds), stats.train_loss,
                                 stats.train_class_acc, stats.images_per_second);
    if (eval_loader) {
      absl::Status eval_error;
      stats.test = Evaluate(model, *eval_loader, device, **recipe, eval_comm, &eval_error);
      if (!eval_error.ok()) return eval_error;
      stats.evaluated = true;
      result.max_accuracy = std::max(result.max_accuracy, stats.test.acc1);
      if (stats.test.acc1 > state->best_acc1) {
        state->best_acc1 = stats.test.acc1;
        CONVNEXTV2_RETURN_IF_ERROR(ckpts.SaveBest(epoch, *state, *model, /*ema=*/false));
      }
      LOG(INFO) << absl::StrFormat("* Acc@1 %.3f Acc@5 %.3f loss %.3f", stats.test.acc1,
                                   stats.test.acc5, stats.test.loss);
      LOG(INFO) << absl::StrFormat("Accuracy of the model on the %d test images: %.1f%%",
                                   stats.test.samples, stats.test.acc1);
      LOG(INFO) << absl::StrFormat("Max accuracy: %.2f%%", result.max_accuracy);
      if (config.ema().model_ema() && config.ema().model_ema_eval()) {
        models::ConvNeXtV2 ema_model((*recipe)->ema_model());
        stats.test_ema = Evaluate(ema_model, *eval_loader, (*recipe)->ema_device(), **recipe,
                                  eval_comm, &eval_error);
        if (!eval_error.ok()) return eval_error;
        stats.evaluated_ema = true;
        result.max_accuracy_ema = std::max(result.max_accuracy_ema, stats.test_ema.acc1);
        if (stats.test_ema.acc1 > state->best_ema_acc1) {
          state->best_ema_acc1 = stats.test_ema.acc1;
          CONVNEXTV2_RETURN_IF_ERROR(ckpts.SaveBest(epoch, *state, *ema_model, /*ema=*/true));
        }
        LOG(INFO) << absl::StrFormat("Accuracy of the model EMA on %d test images: %.1f%%",
                                     stats.test_ema.samples, stats.test_ema.acc1);
        LOG(INFO) << absl::StrFormat("Max EMA accuracy: %.2f%%", result.max_accuracy_ema);
      }
      metrics::EvalRow row;
      row.step = static_cast<int64_t>(epoch + 1) * steps_per_epoch - 1;
      row.epoch = epoch;
      row.acc1 = stats.test.acc1;
      row.acc5 = stats.test.acc5;
      row.loss = stats.test.loss;
      if (stats.evaluated_ema) {
        row.ema_acc1 = stats.test_ema.acc1;
        row.ema_acc5 = stats.test_ema.acc5;
        row.ema_loss = stats.test_ema.loss;
      }
      row.wall_time = record->WallTime();
      record->AddEval(row);
    }
    if (!out_dir.empty()) {
      CONVNEXTV2_RETURN_IF_ERROR(
          util::AppendLine(out_dir + "/log.txt", EpochJson(stats, result.n_parameters)));
    }
    CONVNEXTV2_RETURN_IF_ERROR(record->Flush());
    result.epochs.push_back(stats);
    state->next_epoch = epoch + 1;
    state->next_step = 0;
    state->scalars.clear();
    CONVNEXTV2_RETURN_IF_ERROR(ckpts.SaveEpochEnd(epoch, *state));
  }
  LOG(INFO) << "Training time " << FormatDuration(Seconds(train_start)) << " (total "
            << FormatDuration(Seconds(start)) << ")";
  return result;
}

}  // namespace

absl::StatusOr<FinetuneResult> RunFinetune(const ExperimentConfig& config,
                                           const RunOptions& options) {
  RunRecord record("finetune", options.command_line);
  absl::StatusOr<FinetuneResult> result = TrainAndEvaluate(config, options, &record);
  // A run stopped on a signal after saving exits 75 (requeue): the manifest says so.
  absl::Status recorded =
      result.ok() && result->preempted
          ? record.FinishWithExitStatus(kExitRequeue, "stopped on a signal after saving a checkpoint")
          : record.Finish(result.status());
  if (result.ok() && !recorded.ok()) return recorded;
  return result;
}

}  // namespace convnextv2::engine
