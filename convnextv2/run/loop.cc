#include "convnextv2/run/loop.h"

#include <ATen/ATen.h>
#include <glog/logging.h>

#include <algorithm>
#include <chrono>
#include <cmath>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "convnextv2/checkpoint/file.h"
#include "convnextv2/checkpoint/state.h"
#include "convnextv2/config/config.h"
#include "convnextv2/dist/time_limit.h"
#include "convnextv2/run/preemption.h"
#include "convnextv2/record/run_record.h"
#include "convnextv2/run/step_boundary.h"
#include "convnextv2/tensorboard/event_writer.h"
#include "convnextv2/train/data_parallel.h"
#include "convnextv2/train/ema.h"
#include "convnextv2/util/fault_points.h"
#include "convnextv2/util/files.h"
#include "convnextv2/util/signals.h"
#include "convnextv2/util/status_macros.h"

namespace convnextv2::run {

namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

// The recipe's state beyond model and optimizer: the EMA weights ("model_ema.<name>") and the
// loss scaler ("scaler.scale", "scaler.growth_tracker"), so that a resumed run continues both.
void AddRecipeState(train::TrainingRecipe& recipe, std::shared_ptr<torch::nn::Module> model,
                    RunCheckpoints* ckpts) {
  const std::string kEma = "model_ema.";
  ckpts->AddExtraState(
      [&recipe, kEma](checkpoint::Checkpoint* ckpt) {
        if (train::ModelEma* ema = recipe.ema()) {
          for (const auto& item : ema->StateDict()) ckpt->Add(kEma + item.key(), item.value());
        }
      },
      [&recipe, kEma, model](const checkpoint::Checkpoint& ckpt) -> absl::Status {
        train::ModelEma* ema = recipe.ema();
        if (ema == nullptr) return absl::OkStatus();
        torch::OrderedDict<std::string, at::Tensor> state;
        for (auto& [name, tensor] : ckpt.WithPrefix(kEma)) state.insert(name, tensor);
        if (state.is_empty()) {
          LOG(WARNING) << "the checkpoint holds no EMA weights: the EMA restarts from the "
                          "resumed model";
          for (const auto& [name, tensor] : checkpoint::ModuleState(*model)) {
            state.insert(name, tensor);
          }
        }
        return ema->LoadStateDict(state);
      });
  if (recipe.use_amp()) AddLossScalerState(&recipe.scaler(), ckpts);
}

// One run of the loop. Members hold what the phases share; each phase is one method.
class Loop {
 public:
  Loop(const ExperimentConfig& config, const RunOptions& options, TrainingTask& task,
       record::RunRecord* record)
      : config_(config), options_(options), task_(task), record_(record) {}

  absl::StatusOr<LoopResult> Run();

 private:
  absl::Status SetUp();                 // runtime, task, model, recipe
  absl::StatusOr<bool> Resume();        // checkpoints; true: the task ended the run
  absl::Status OpenOutputs();           // output dir, config.pbtxt, logs
  absl::Status OpenTensorBoard();       // output.log_dir
  absl::Status TrainEpochs();
  // One epoch from state_.next_step; false when the run stopped at a step boundary.
  absl::StatusOr<bool> TrainEpoch(int epoch);
  absl::Status Step(int epoch, int64_t it, data::BatchIterator& batches, LoopMeters& meters,
                    train::MeanMeter& step_time);
  void FillRow(const StepInfo& step, record::TrainRow* row) const;  // the loop's columns
  absl::Status EndEpoch(int epoch, int64_t first_step, Clock::time_point start,
                        LoopMeters& meters);
  void LogProgress(const StepInfo& step, const LoopMeters& meters,
                   const train::MeanMeter& step_time, const record::TrainRow& row) const;
  const record::TaskRecord& rec() const { return task_.task_record(); }

  // ---- records: the hook points of logging ----
  absl::Status RecordStep(const StepInfo& step, const record::TrainRow& row);
  absl::Status RecordEpoch(const EpochInfo& info, const LoopMeters& meters,
                           std::optional<record::EvalRow> eval);
  absl::Status FlushRecords();

  double ImagesPerSecond(double seconds) const {
    return config_.train().batch_size() * runtime_.world_size / std::max(seconds, 1e-9);
  }

  ExperimentConfig config_;  // lr resolved by the recipe
  const RunOptions& options_;
  TrainingTask& task_;
  record::RunRecord* record_;
  Clock::time_point start_ = Clock::now();
  Runtime runtime_;
  std::shared_ptr<torch::nn::Module> model_;
  int64_t steps_per_epoch_ = 0;
  std::unique_ptr<train::TrainingRecipe> recipe_;
  std::unique_ptr<RunCheckpoints> ckpts_;
  LoopState state_;
  std::string out_dir_;
  std::unique_ptr<PreemptionWatch> preemption_;
  std::unique_ptr<StepBoundaries> boundaries_;
  std::unique_ptr<tensorboard::EventWriter> events_;  // rank 0 with log_dir
  LoopResult result_;
};

absl::StatusOr<LoopResult> Loop::Run() {
  CONVNEXTV2_RETURN_IF_ERROR(SetUp());
  CONVNEXTV2_ASSIGN_OR_RETURN(const bool ended, Resume());
  if (ended) {
    result_.ended_before_training = true;
    return result_;
  }
  CONVNEXTV2_RETURN_IF_ERROR(OpenOutputs());
  CONVNEXTV2_RETURN_IF_ERROR(TrainEpochs());
  return result_;
}

absl::Status Loop::SetUp() {
  CONVNEXTV2_ASSIGN_OR_RETURN(runtime_, SetUpRuntime(config_));
  CONVNEXTV2_RETURN_IF_ERROR(task_.Build(config_, runtime_));
  steps_per_epoch_ = task_.train_loader().num_batches();
  model_ = task_.model();
  // Every rank starts from rank 0's weights (each rank's seed differs).
  if (runtime_.comm != nullptr) {
    CONVNEXTV2_RETURN_IF_ERROR(train::BroadcastModule(*runtime_.comm, *model_));
  }
  for (const at::Tensor& p : model_->parameters()) {
    if (p.requires_grad()) result_.n_parameters += p.numel();
  }
  LOG(INFO) << task_.DescribeModel() << ", number of params: " << result_.n_parameters;
  CONVNEXTV2_ASSIGN_OR_RETURN(
      recipe_, train::TrainingRecipe::Create(config_, model_, runtime_.device, steps_per_epoch_,
                                      runtime_.world_size, task_.recipe_options()));
  if (runtime_.comm != nullptr) recipe_->EnableDataParallel(runtime_.comm, config_.distributed());
  config_.mutable_optim()->set_lr(recipe_->lr());  // recorded: a rerun uses this lr
  return absl::OkStatus();
}

absl::StatusOr<bool> Loop::Resume() {
  CONVNEXTV2_ASSIGN_OR_RETURN(const bool ended, task_.BeforeResume(*recipe_));
  if (ended) return true;
  ckpts_ = std::make_unique<RunCheckpoints>(config_, runtime_.writer(), *model_,
                                            recipe_->optimizer(), steps_per_epoch_,
                                            task_.checkpoint_model_name());
  ckpts_->SetBeforeSave([this] { return FlushRecords(); });
  ckpts_->SetClassNames(task_.class_names());
  AddRecipeState(*recipe_, model_, ckpts_.get());
  task_.AddCheckpointState(ckpts_.get());
  CONVNEXTV2_ASSIGN_OR_RETURN(state_, ckpts_->Resume());
  CONVNEXTV2_RETURN_IF_ERROR(task_.AfterResume(state_, *recipe_));
  return false;
}

absl::Status Loop::OpenOutputs() {
  // Only rank 0 writes; the other ranks read the same output dir to resume.
  out_dir_ = runtime_.writer() ? config_.output().output_dir() : std::string();
  if (!out_dir_.empty()) {
    CONVNEXTV2_RETURN_IF_ERROR(util::MakeDirs(out_dir_));
    CONVNEXTV2_RETURN_IF_ERROR(
        util::WriteFileAtomically(out_dir_ + "/config.pbtxt", config::ToText(config_)));
    CONVNEXTV2_RETURN_IF_ERROR(task_.OpenOutputs(out_dir_));
  }
  if (!options_.command_line.empty()) LOG(INFO) << "command line: " << options_.command_line;
  record_->SetClassNames(task_.class_names());
  if (runtime_.writer()) {
    CONVNEXTV2_RETURN_IF_ERROR(StartLogs(config_, state_, rec().declaration, record_));
  }
  return OpenTensorBoard();
}

absl::Status Loop::OpenTensorBoard() {
  const std::string& dir = config_.output().log_dir();
  if (dir.empty() || !runtime_.writer()) return absl::OkStatus();
  if (state_.resumed) {  // no step twice: drop what the files hold past the checkpoint
    const int next_epoch = state_.next_epoch;
    const int64_t next = task_.ScalarStep(next_epoch, state_.next_step, steps_per_epoch_);
    CONVNEXTV2_ASSIGN_OR_RETURN(
        const tensorboard::TruncateReport r,
        tensorboard::TruncateEvents(dir, [next_epoch, next](absl::string_view tag, int64_t x) {
          return absl::StartsWith(tag, "perf/") ? x < next_epoch : x < next;
        }));
    if (r.rewritten > 0) {
      LOG(INFO) << "log_dir " << dir << ": dropped " << r.dropped << " TensorBoard values past "
                << "the resumed checkpoint from " << r.rewritten << " of " << r.files
                << " event files";
    }
  }
  CONVNEXTV2_ASSIGN_OR_RETURN(events_, tensorboard::EventWriter::Open(dir));
  LOG(INFO) << "TensorBoard events: " << events_->path();
  return absl::OkStatus();
}

absl::Status Loop::TrainEpochs() {
  const int epochs = config_.train().epochs();
  LOG(INFO) << "Start training for " << epochs << " epochs, " << steps_per_epoch_
            << " steps per epoch";
  const auto train_start = Clock::now();
  const auto& k = config_.checkpoint();
  CONVNEXTV2_ASSIGN_OR_RETURN(const int preempt_signal, util::ParseSignalName(k.preempt_signal()));
  preemption_ = std::make_unique<PreemptionWatch>(
      preempt_signal, dist::TimeLimit::FromSlurm(k.preempt_lead_seconds()));
  boundaries_ = std::make_unique<StepBoundaries>(*ckpts_, *preemption_, runtime_.comm.get(),
                                                 options_.stop_epoch, options_.stop_step);
  for (int epoch = state_.next_epoch; epoch < epochs; ++epoch) {
    CONVNEXTV2_ASSIGN_OR_RETURN(const bool finished, TrainEpoch(epoch));
    if (!finished) {
      // Rank 0 has saved (StepBoundaries) and exits 75, requeue me. The others exit 0 at once:
      // a launcher that ends a step at its first non-zero exit (srun --kill-on-bad-exit,
      // torchrun) would kill rank 0 while it closes its files, and report that kill, not 75.
      result_.preempted = runtime_.rank == 0;
      return absl::OkStatus();
    }
  }
  // No rank reports success before rank 0 has written the run's last files: a rank killed while
  // saving them makes the others fail.
  if (runtime_.comm != nullptr) CONVNEXTV2_RETURN_IF_ERROR(runtime_.comm->Barrier());
  LOG(INFO) << "Training time " << train::FormatDuration(Seconds(train_start)) << " (total "
            << train::FormatDuration(Seconds(start_)) << ")";
  return absl::OkStatus();
}

absl::StatusOr<bool> Loop::TrainEpoch(int epoch) {
  model_->train();
  LoopMeters meters(rec().declaration);
  train::MeanMeter step_time;
  const auto epoch_start = Clock::now();
  recipe_->StartEpoch();
  int64_t first_step = 0;
  if (epoch == state_.next_epoch && state_.next_step > 0) {  // resumed mid-epoch
    first_step = state_.next_step;
    meters.Restore(RankScalars(state_.scalars, runtime_.rank, runtime_.world_size));
  }
  data::BatchIterator batches = task_.train_loader().Iterate(epoch, first_step);
  for (int64_t it = first_step; it < steps_per_epoch_; ++it) {
    // A step boundary: the whole state is consistent, so a checkpoint here resumes exactly.
    // With update_freq > 1 only the start of an accumulation group is such a boundary.
    if (it % recipe_->update_freq() == 0) {
      CONVNEXTV2_ASSIGN_OR_RETURN(
          const bool stop, boundaries_->Reached(epoch, it, first_step, &state_,
                                                [&meters] { return meters.Sums(); }));
      if (stop) return false;  // the checkpoint's save flushed the records first
    }
    CONVNEXTV2_RETURN_IF_ERROR(Step(epoch, it, batches, meters, step_time));
  }
  CONVNEXTV2_RETURN_IF_ERROR(EndEpoch(epoch, first_step, epoch_start, meters));
  return true;
}

absl::Status Loop::Step(int epoch, int64_t it, data::BatchIterator& batches, LoopMeters& meters,
                        train::MeanMeter& step_time) {
  const auto step_start = Clock::now();
  // The checkpoint holds rank 0's generator only: the other ranks reseed theirs (drop path) from
  // the step at every step, so a run resumed at any step draws what an unstopped one does.
  if (runtime_.rank > 0) {
    at::manual_seed(runtime_.seed + 1000003 * static_cast<uint64_t>(epoch * steps_per_epoch_ + it));
  }
  recipe_->BeginMicroBatch(epoch, it);
  StepInfo step{epoch, it, steps_per_epoch_, 0.0, recipe_->max_lr(), {}};
  CONVNEXTV2_ASSIGN_OR_RETURN(const data::Batch batch, batches.Next());
  CONVNEXTV2_ASSIGN_OR_RETURN(const at::Tensor loss, task_.Loss(batch, epoch, it, *recipe_));
  step.loss = loss.item<double>();
  // As the official scripts, in both precisions: under AMP the loss scaler skips steps whose
  // gradients overflow, but a non-finite loss itself stops the run.
  if (!std::isfinite(step.loss)) {
    return absl::InternalError(absl::StrFormat(
        "loss is %f at epoch %d step %d (lr %.3g); stopping training. %s", step.loss, epoch, it,
        step.lr, task_.NonFiniteAdvice()));
  }
  step.result = recipe_->Backward(loss, it);
  util::FaultPoint("train_step");  // gradients (and the optimizer step) done, row not recorded
  CONVNEXTV2_RETURN_IF_ERROR(step.result.error);
  if (step.result.boundary && !step.result.stepped) {
    LOG(WARNING) << absl::StrFormat(
        "epoch %d step %d: non-finite gradients, optimizer step skipped; loss scale now %g",
        epoch, it, recipe_->scaler().scale());
  }
  record::TrainRow row(rec().declaration);
  FillRow(step, &row);
  task_.FinishStep(step, &row);
  meters.AddRow(row);
  step_time.Add(Seconds(step_start));
  row.Set(rec().loop.images_per_second, ImagesPerSecond(step_time.recent()));
  CONVNEXTV2_RETURN_IF_ERROR(RecordStep(step, row));
  state_.global_step = static_cast<int64_t>(epoch) * steps_per_epoch_ + it + 1;
  CONVNEXTV2_RETURN_IF_ERROR(task_.AfterStep(epoch, state_.global_step));
  if ((it + 1) % config_.train().print_freq() == 0 || it + 1 == steps_per_epoch_) {
    LogProgress(step, meters, step_time, row);
  }
  return absl::OkStatus();
}

void Loop::FillRow(const StepInfo& step, record::TrainRow* row) const {
  const record::LoopColumns& c = rec().loop;
  const int64_t update_freq = recipe_->update_freq();
  row->Set(c.step, static_cast<int64_t>(step.epoch) * steps_per_epoch_ + step.step);
  row->Set(c.epoch, int64_t{step.epoch});
  row->Set(c.optimizer_step, static_cast<int64_t>(step.epoch) * (steps_per_epoch_ / update_freq) +
                                 step.step / update_freq);
  row->Set(c.loss, step.loss);
  row->Set(c.lr, step.lr);
  row->Set(c.min_lr, recipe_->min_lr());
  row->Set(c.weight_decay, recipe_->weight_decay());
  if (step.result.boundary && step.result.stepped) row->Set(c.grad_norm, step.result.grad_norm);
}

void Loop::LogProgress(const StepInfo& step, const LoopMeters& meters,
                       const train::MeanMeter& step_time, const record::TrainRow& row) const {
  const double eta = step_time.recent() * (steps_per_epoch_ - step.step - 1);
  LOG(INFO) << absl::StrFormat(
      "Epoch: [%d]  [%*d/%d]  eta: %s  %s  time: %.3f", step.epoch,
      static_cast<int>(std::to_string(steps_per_epoch_).size()), step.step + 1, steps_per_epoch_,
      train::FormatDuration(eta), ProgressFields(rec().declaration, row, meters),
      step_time.recent());
}

absl::Status Loop::EndEpoch(int epoch, int64_t first_step, Clock::time_point start,
                            LoopMeters& meters) {
  EpochInfo info;
  info.epoch = epoch;
  info.first_step = first_step;
  info.seconds = Seconds(start);
  info.n_parameters = result_.n_parameters;
  if (runtime_.comm != nullptr) {  // the epoch's averages over all ranks
    CONVNEXTV2_RETURN_IF_ERROR(train::ReduceMeters(*runtime_.comm, meters.Reduced()));
  }
  info.images_per_second = static_cast<double>(steps_per_epoch_ - first_step) *
                           config_.train().batch_size() * runtime_.world_size / info.seconds;
  task_.SummarizeEpoch(info, meters);
  CONVNEXTV2_ASSIGN_OR_RETURN(std::optional<record::EvalRow> eval,
                              task_.Evaluate(epoch, &state_, *ckpts_));
  CONVNEXTV2_RETURN_IF_ERROR(task_.EndEpoch(info));
  CONVNEXTV2_RETURN_IF_ERROR(RecordEpoch(info, meters, std::move(eval)));
  CONVNEXTV2_RETURN_IF_ERROR(FlushRecords());
  state_.next_epoch = epoch + 1;
  state_.next_step = 0;
  state_.scalars.clear();
  return ckpts_->SaveEpochEnd(epoch, state_);
}

absl::Status Loop::RecordStep(const StepInfo& step, const record::TrainRow& row) {
  record::TrainRow recorded = row;
  recorded.Set(rec().loop.wall_time, record_->WallTime());
  record_->AddTrain(recorded);
  if (config_.output().log_dir().empty()) return absl::OkStatus();
  CONVNEXTV2_ASSIGN_OR_RETURN(const Scalars values,
                              StepScalars(rec().declaration, row, step.result.boundary,
                                          runtime_.comm.get(), runtime_.world_size));
  if (events_ == nullptr) return absl::OkStatus();
  const int64_t x = task_.ScalarStep(step.epoch, step.step, steps_per_epoch_);
  for (const auto& [tag, value] : values) {
    CONVNEXTV2_RETURN_IF_ERROR(events_->AddScalar(tag, x, value));
  }
  return absl::OkStatus();
}

absl::Status Loop::RecordEpoch(const EpochInfo& info, const LoopMeters& meters,
                               std::optional<record::EvalRow> eval) {
  const int epoch = info.epoch;
  if (eval) {
    const record::EvalColumns& e = rec().eval;
    eval->Set(e.step, static_cast<int64_t>(epoch + 1) * steps_per_epoch_ - 1);
    eval->Set(e.epoch, int64_t{epoch});
    eval->Set(e.wall_time, record_->WallTime());
    record_->AddEval(*eval);
  }
  if (eval && events_ != nullptr) {  // main_finetune.py: head "perf", step = epoch
    for (const auto& [tag, value] : EvalScalars(rec().declaration, *eval)) {
      CONVNEXTV2_RETURN_IF_ERROR(events_->AddScalar(tag, epoch, value));
    }
  }
  if (out_dir_.empty()) return absl::OkStatus();
  std::vector<record::LogEntry> entries =
      EpochLogEntries(rec(), meters, eval, info.images_per_second);
  entries.push_back({"epoch", static_cast<double>(epoch), "%d"});
  entries.push_back({"n_parameters", static_cast<double>(info.n_parameters), "%d"});
  for (record::LogEntry& e : task_.ExtraLogEntries(info)) entries.push_back(std::move(e));
  util::FaultPoint("log_append");
  return util::AppendLine(out_dir_ + "/log.txt", record::LogTxtLine(entries));
}

// Rows and events reach the disk (fsynced) before a checkpoint that covers them is written.
absl::Status Loop::FlushRecords() {
  CONVNEXTV2_RETURN_IF_ERROR(record_->Flush());
  return events_ != nullptr ? events_->Flush() : absl::OkStatus();
}

}  // namespace

absl::StatusOr<LoopResult> RunTraining(const std::string& program, const ExperimentConfig& config,
                                       const RunOptions& options, TrainingTask& task) {
  record::RunRecord record(program, options.command_line);
  absl::StatusOr<LoopResult> result = Loop(config, options, task, &record).Run();
  // A run stopped on a signal after saving exits 75 (requeue): the manifest says so.
  absl::Status recorded =
      result.ok() && result->preempted
          ? record.FinishWithExitStatus(kExitRequeue,
                                        "stopped on a signal after saving a checkpoint")
          : record.Finish(result.status());
  if (result.ok() && !recorded.ok()) return recorded;
  return result;
}

}  // namespace convnextv2::run
