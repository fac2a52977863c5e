// A training run's checkpoints: resume at start, saves by the official policy, mid-epoch saves
// on request or on a signal. The loop keeps its position in a LoopState; everything else
// (model, optimizer, RNGs, extra state such as EMA weights) is gathered here.
//
//   RunCheckpoints ckpts(config, /*writer=*/rank == 0, *model, *optimizer, steps_per_epoch);
//   absl::StatusOr<LoopState> state = ckpts.Resume();      // resume / auto_resume / fresh
//   ... after each epoch (after eval and the log row):
//   ckpts.SaveEpochEnd(epoch, *state);
//   ... at a step boundary when preempted:
//   ckpts.SaveMidEpoch(epoch, *state);
#ifndef CONVNEXTV2_RUN_RUN_CHECKPOINTS_H_
#define CONVNEXTV2_RUN_RUN_CHECKPOINTS_H_

#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>

#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "convnextv2/checkpoint/file.h"
#include "convnextv2/checkpoint/header_fields.h"
#include "convnextv2/proto/experiment.pb.h"
#include "convnextv2/record/run_record.h"
#include "convnextv2/train/loss_scaler.h"

namespace convnextv2::run {

// The loop's position (the next batch to run) and its exact running values.
struct LoopState {
  int next_epoch = 0;
  int64_t next_step = 0;
  int64_t global_step = 0;
  double best_acc1 = -1;      // percent; -1 before the first evaluation
  double best_ema_acc1 = -1;
  std::map<std::string, double> scalars;  // e.g. the epoch's running meter sums
  bool resumed = false;
};

class RunCheckpoints {
 public:
  // `model_name` goes into the header and must match on resume; empty means model.model.
  // Pre-training passes FcmaeModelName(model.model), so that neither kind of run resumes
  // from the other's checkpoints.
  RunCheckpoints(const ExperimentConfig& config, bool writer, torch::nn::Module& model,
                 torch::optim::Optimizer& optimizer, int64_t steps_per_epoch,
                 std::string model_name = "");

  // Further state saved with every training checkpoint and restored on resume (EMA weights
  // under "model_ema.", a loss scaler under "scaler." ...).
  void AddExtraState(std::function<void(checkpoint::Checkpoint*)> save,
                     std::function<absl::Status(const checkpoint::Checkpoint&)> load);

  // Called before a checkpoint a run can resume from (epoch end, mid-epoch) is written: the
  // run's records (metrics.h5) must be durable up to the step it covers, or a kill after the
  // save loses rows that the resumed run never writes again. An error stops the save.
  void SetBeforeSave(std::function<absl::Status()> before_save) {
    before_save_ = std::move(before_save);
  }
  // The classes' names written into every checkpoint header (CheckpointHeader.class_names).
  void SetClassNames(std::vector<std::string> names) { class_names_ = std::move(names); }

  // checkpoint.resume if set, else with auto_resume the newest valid checkpoint in output_dir,
  // else a fresh LoopState (start_epoch). Restores model, optimizer, RNGs and extra state
  // strictly; logs what it skipped and which settings differ from the checkpoint's config.
  absl::StatusOr<LoopState> Resume();

  // checkpoint-<epoch>.pth every save_ckpt_freq epochs and at the last one, keeping the newest
  // save_ckpt_num; drops superseded mid-epoch checkpoints. No-op without output_dir/save_ckpt.
  absl::Status SaveEpochEnd(int epoch, const LoopState& state);
  // checkpoint-<epoch>-step<s>.pth at the state's position (saved even with save_ckpt off:
  // it is what a preempted run needs to continue).
  absl::Status SaveMidEpoch(int epoch, const LoopState& state);
  // checkpoint-best.pth: the model's weights under `model`; checkpoint-best-ema.pth: the EMA
  // weights under `model_ema` and, as the official file, the model's under `model` (so that
  // `--finetune` with the default model_key loads it). Header best_of says which is the best.
  absl::Status SaveBest(int epoch, const LoopState& state, const torch::nn::Module& weights,
                        bool ema);

  // Whether a periodic mid-epoch save (save_ckpt_steps) is due before running batch `step`.
  bool PeriodicSaveDue(int64_t global_step, int64_t step) const;

 private:
  // checkpoint.resume, or with auto_resume the newest valid one in output_dir: false if none.
  absl::StatusOr<bool> FindResumeCheckpoint(std::string* path, checkpoint::Checkpoint* ckpt) const;
  // A training state of this kind of run (model, optimizer, steps per epoch).
  absl::Status CheckResumable(const checkpoint::CheckpointHeader& header,
                              const std::string& what) const;
  // Model, optimizer, RNGs and extra state, strictly.
  absl::Status Restore(const checkpoint::Checkpoint& ckpt, const std::string& what);
  checkpoint::CheckpointHeader Header(checkpoint::Kind kind, int epoch,
                                      const LoopState& state) const;
  checkpoint::Checkpoint Build(int epoch, const LoopState& state) const;
  absl::Status Write(const std::string& path, const checkpoint::Checkpoint& ckpt) const;
  // A resumable checkpoint: before_save_, then Build and Write.
  absl::Status WriteTraining(const std::string& path, int epoch, const LoopState& state) const;

  const ExperimentConfig& config_;
  bool writer_;
  torch::nn::Module& model_;
  torch::optim::Optimizer& optimizer_;
  int64_t steps_per_epoch_;
  std::string model_name_;
  std::vector<std::function<void(checkpoint::Checkpoint*)>> extra_save_;
  std::vector<std::function<absl::Status(const checkpoint::Checkpoint&)>> extra_load_;
  std::function<absl::Status()> before_save_;
  std::vector<std::string> class_names_;
};

// Saves a use_amp run's loss scaler with every training checkpoint ("scaler.scale",
// "scaler.growth_tracker") and restores it on resume; a checkpoint without them (saved without
// use_amp) leaves the scaler at its initial scale, with a warning. `scaler` must outlive ckpts.
void AddLossScalerState(train::LossScaler* scaler, RunCheckpoints* ckpts);

// The header model name of FCMAE pre-training checkpoints: "fcmae_convnextv2_atto".
std::string FcmaeModelName(absl::string_view variant);

// Keeps only log.txt rows of epochs before `next_epoch` (a resumed run rewrites the rest).
absl::Status TruncateEpochLog(const std::string& path, int next_epoch);

// Opens a run's logs where its (possibly resumed) state stands: a resumed run first drops the
// log.txt rows of epochs it repeats, then the record starts (manifest.pbtxt, metrics.h5 without
// the rows after the checkpoint's step). Shared by the fine-tuning and pre-training loops.
absl::Status StartLogs(const ExperimentConfig& config, const LoopState& state,
                       const record::Declaration& declaration, record::RunRecord* record);

// The fields of `current` that differ from the config stored in a checkpoint, one per line
// ("optim.lr: 0.001 -> 0.002"), empty when equal or unparsable.
std::vector<std::string> ConfigChanges(const std::string& stored_text,
                                       const ExperimentConfig& current);

}  // namespace convnextv2::run

#endif  // CONVNEXTV2_RUN_RUN_CHECKPOINTS_H_
