// The one training loop (Caffe's Solver): it owns the runtime, epochs, steps, accumulation
// boundaries, stops and saves at step boundaries, checkpoints and resume, the run's records
// (log.txt, manifest.pbtxt, metrics.h5) and the evaluation schedule. A TrainingTask supplies
// what differs between runs: the data and model, how a batch becomes a loss, the evaluation,
// extra checkpoint state, pictures and its declared record (record/task_records.h: the
// columns of metrics.h5 and how each shows in log.txt, TensorBoard and the progress line, which
// the loop reads; the loop fills the loop columns, the task its own). Fine-tuning (finetune.h) and FCMAE
// pre-training (pretrain.h) are such tasks; tests use a fake one.
//
//   class MyTask : public TrainingTask { ... };
//   MyTask task(config);
//   absl::StatusOr<LoopResult> r = RunTraining("mytool", config, options, task);
//
// Order of one run: runtime (device, threads, seed, process group) -> task.Build (data, model)
// -> weights broadcast from rank 0 -> parameter count -> TrainingRecipe (optimizer, schedules,
// AMP, EMA, gradient sync) -> task.BeforeResume (may finish the run: evaluation only) ->
// checkpoints and resume -> task.AfterResume -> output dir, config.pbtxt, task.OpenOutputs ->
// logs -> epochs. In an epoch: before each micro-batch that starts an accumulation group, a
// step boundary (stop or save there); then lr/wd, task.Loss, backward and step, the step's
// metrics row (task.FinishStep sets the task's columns) and the declared meters, the progress
// line, task.AfterStep. At the epoch's end: meters reduced over ranks, task.SummarizeEpoch,
// task.Evaluate (every epoch), task.EndEpoch, the log.txt row, the records flushed, then the
// end-of-epoch checkpoint.
//
// Hook points where the records go (each one function in loop.cc): RecordStep (one metrics row
// per micro-batch, and the declared TensorBoard values), RecordEpoch (the eval row, its
// declared TensorBoard values at step = epoch, and the log.txt row), FlushRecords (at every
// epoch's end, and before every checkpoint a run can resume from is written: RunCheckpoints
// calls it, so rows and events are on disk before the checkpoint that covers them becomes
// visible). With output.log_dir, rank 0 writes TensorBoard event files there; a resumed run
// first drops the values past its checkpoint (tensorboard::TruncateEvents), as metrics.h5.
#ifndef CONVNEXTV2_RUN_LOOP_H_
#define CONVNEXTV2_RUN_LOOP_H_

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>
#include <torch/nn/module.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "convnextv2/data/loader.h"
#include "convnextv2/record/declaration.h"
#include "convnextv2/record/log_txt.h"
#include "convnextv2/record/task_records.h"
#include "convnextv2/run/loop_records.h"
#include "convnextv2/proto/experiment.pb.h"
#include "convnextv2/run/run_checkpoints.h"
#include "convnextv2/run/run_options.h"
#include "convnextv2/run/runtime.h"
#include "convnextv2/train/meters.h"
#include "convnextv2/train/recipe.h"

namespace convnextv2::run {

// What the loop knows of one micro-batch after its optimizer work, for the task's meters.
struct StepInfo {
  int epoch = 0;
  int64_t step = 0;            // micro-batch within the epoch
  int64_t steps_per_epoch = 0;
  double loss = 0;
  double lr = 0;               // largest group lr of this step (set before the forward pass)
  train::MicroStepResult result;  // boundary, stepped, grad_norm
};

// The epoch as the loop saw it, for the task's log lines and stats.
struct EpochInfo {
  int epoch = 0;
  int64_t first_step = 0;      // > 0 when the epoch was resumed mid-way
  double seconds = 0;
  double images_per_second = 0;
  int64_t n_parameters = 0;                      // trainable, of task.model()
};

class TrainingTask {
 public:
  virtual ~TrainingTask() = default;

  // ---- set up, in this order ----
  // Opens the data and builds the model (on runtime.device); called once, after the runtime.
  virtual absl::Status Build(const ExperimentConfig& config, const Runtime& runtime) = 0;
  virtual const data::Loader& train_loader() const = 0;
  virtual std::shared_ptr<torch::nn::Module> model() const = 0;
  // "model convnextv2_atto": the log line's start before ", number of params: N".
  virtual std::string DescribeModel() const = 0;
  virtual train::RecipeOptions recipe_options() = 0;
  // After the recipe exists, before resume. Returning true ends the run here (evaluation only).
  virtual absl::StatusOr<bool> BeforeResume(train::TrainingRecipe& recipe) { return false; }
  // The checkpoint header's model name (empty: model.model); runs resume only their own kind.
  virtual std::string checkpoint_model_name() const { return ""; }
  // The classes' names (index = label), recorded in manifest.pbtxt and in every checkpoint
  // header for `predict`; empty: none (pre-training).
  virtual std::vector<std::string> class_names() const { return {}; }
  // Further checkpoint state beyond model, optimizer, RNGs and the recipe's EMA / loss scaler.
  virtual void AddCheckpointState(RunCheckpoints* ckpts) {}
  // After resume (or a fresh start): e.g. initialize from pre-trained weights.
  virtual absl::Status AfterResume(const LoopState& state, train::TrainingRecipe& recipe) {
    return absl::OkStatus();
  }
  // Rank 0 with an output dir only, after config.pbtxt is written.
  virtual absl::Status OpenOutputs(const std::string& out_dir) { return absl::OkStatus(); }

  // The task's declared record (valid after Build): every column of its metrics.h5.
  virtual const record::TaskRecord& task_record() const = 0;

  // ---- training ----
  // The mean loss of one micro-batch, computed under recipe.Autocast().
  virtual absl::StatusOr<at::Tensor> Loss(const data::Batch& batch, int epoch, int64_t step,
                                          train::TrainingRecipe& recipe) = 0;
  // After backward and the optimizer's work: the task's columns of the row (the loop's are set;
  // the declared meters take the row's values afterwards).
  virtual void FinishStep(const StepInfo& step, record::TrainRow* row) {}
  // After the row is recorded (`global_step` micro-batches done): e.g. pictures every N steps.
  virtual absl::Status AfterStep(int epoch, int64_t global_step) { return absl::OkStatus(); }
  // Added to the error when a loss is not finite (what the user can change).
  virtual std::string NonFiniteAdvice() const = 0;

  // ---- TensorBoard (output.log_dir; the loop writes on rank 0) ----
  // The x of micro-batch `step` of `epoch` for the task's TensorBoard values: by default the
  // global micro-batch index (engine_finetune.py's log_writer step). Must not decrease along a
  // run: a resumed run drops the values at or past its checkpoint's position.
  virtual int64_t ScalarStep(int epoch, int64_t step, int64_t steps_per_epoch) const {
    return static_cast<int64_t>(epoch) * steps_per_epoch + step;
  }

  // ---- the epoch's end, in this order ----
  // The epoch's training figures (the meters are reduced over the ranks): stats and log line.
  virtual void SummarizeEpoch(const EpochInfo& epoch, const LoopMeters& meters) = 0;
  // Called every epoch after SummarizeEpoch. Returns the eval row (the loop sets its step,
  // epoch and wall_time) or nullopt when there is nothing to evaluate.
  // Updates state's best accuracies and writes best checkpoints through `ckpts`.
  virtual absl::StatusOr<std::optional<record::EvalRow>> Evaluate(int epoch, LoopState* state,
                                                                   RunCheckpoints& ckpts) {
    return std::nullopt;
  }
  // After the evaluation: e.g. writes pictures or weights. The loop then writes the epoch's
  // log.txt row from the declaration: the train columns' log keys (their meters' means), the
  // eval row's, "epoch", "n_parameters", then ExtraLogEntries.
  virtual absl::Status EndEpoch(const EpochInfo& epoch) { return absl::OkStatus(); }
  virtual std::vector<record::LogEntry> ExtraLogEntries(const EpochInfo& epoch) const {
    return {};
  }
};

struct LoopResult {
  int64_t n_parameters = 0;
  // Stopped on a signal (or RunOptions::stop_*) after saving a mid-epoch checkpoint: the
  // binary exits with run::kExitRequeue. Rank 0 only; the other ranks stop with it and exit 0.
  bool preempted = false;
  bool ended_before_training = false;  // task.BeforeResume finished the run
};

// One run of `task`, recorded in output_dir/manifest.pbtxt (program `program`) and metrics.h5.
absl::StatusOr<LoopResult> RunTraining(const std::string& program, const ExperimentConfig& config,
                                       const RunOptions& options, TrainingTask& task);

}  // namespace convnextv2::run

#endif  // CONVNEXTV2_RUN_LOOP_H_
