// The fine-tuning (supervised training) run: what `finetune` does after parsing its flags. A task
// of the training loop (loop.h): this file says how a batch becomes a loss, how to evaluate and
// what to log; the loop does the rest.
//
//   absl::StatusOr<FinetuneResult> r = RunFinetune(config, {.command_line = "..."});
//
// Records output_dir/manifest.pbtxt and output_dir/metrics.h5 (see record/run_record.h; its
// columns: record::MakeFinetuneRecord in record/task_records.h).
// Flow: device and threads -> datasets and loaders -> model from the registry -> parameter
// groups and optimizer -> epochs of training (per-iteration lr schedule) and evaluation ->
// per-epoch log rows. Writes nothing when output_dir is empty; otherwise output_dir/config.pbtxt
// (the resolved config, lr included), output_dir/log.txt (one JSON object per epoch, the
// official format) and checkpoints (run_checkpoints.h). Resumes (checkpoint.resume or
// auto_resume), initializes from checkpoint.finetune weights, or with eval.eval only evaluates.
#ifndef CONVNEXTV2_APPS_FINETUNE_H_
#define CONVNEXTV2_APPS_FINETUNE_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "convnextv2/apps/evaluate.h"
#include "convnextv2/proto/experiment.pb.h"
#include "convnextv2/run/run_options.h"

namespace convnextv2::apps {

struct EpochStats {
  int epoch = 0;
  double train_loss = 0;
  double train_class_acc = 0;  // NaN under mixup (not measured against mixed targets)
  // The epoch's means, as the official MetricLogger's global_avg: the largest group lr (the
  // official "lr"), the smallest (layer decay), the decayed groups' weight decay.
  double train_lr = 0;
  double train_min_lr = 0;
  double train_weight_decay = 0;
  double train_grad_norm = 0;  // mean over the epoch's optimizer steps
  double images_per_second = 0;
  bool evaluated = false;
  EvalStats test;
  bool evaluated_ema = false;  // model_ema_eval: the EMA weights evaluated too
  EvalStats test_ema;
};

struct FinetuneResult {
  std::vector<EpochStats> epochs;  // those run by this call (a resumed run skips the earlier)
  double max_accuracy = 0;
  double max_accuracy_ema = 0;  // with model_ema_eval
  int64_t n_parameters = 0;
  // Stopped on a signal (or RunOptions::stop_epoch/stop_step) after saving a mid-epoch
  // checkpoint: the binary exits with run::kExitRequeue.
  bool preempted = false;
  EvalStats eval_only;  // eval.eval: the evaluation of the loaded weights
};

absl::StatusOr<FinetuneResult> RunFinetune(const ExperimentConfig& config,
                                           const run::RunOptions& options = {});

}  // namespace convnextv2::apps

#endif  // CONVNEXTV2_APPS_FINETUNE_H_
