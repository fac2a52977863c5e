// The fine-tuning (supervised training) run: what `finetune` does after parsing its flags.
//
//   absl::StatusOr<FinetuneResult> r = RunFinetune(config, {.command_line = "..."});
//
// Records output_dir/manifest.pbtxt and output_dir/metrics.h5 (see run_record.h).
// Flow: device and threads -> datasets and loaders -> model from the registry -> parameter
// groups and optimizer -> epochs of training (per-iteration lr schedule) and evaluation ->
// per-epoch log rows. Writes nothing when output_dir is empty; otherwise output_dir/config.pbtxt
// (the resolved config, lr included) and output_dir/log.txt (one JSON object per epoch, the
// official format).
#ifndef CONVNEXTV2_ENGINE_FINETUNE_H_
#define CONVNEXTV2_ENGINE_FINETUNE_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "convnextv2/proto/experiment.pb.h"

namespace convnextv2::engine {

struct EvalStats {
  double acc1 = 0;  // percent
  double acc5 = 0;  // percent
  double loss = 0;
  int64_t samples = 0;
};

struct EpochStats {
  int epoch = 0;
  double train_loss = 0;
  double train_class_acc = 0;
  double train_lr = 0;
  double images_per_second = 0;
  bool evaluated = false;
  EvalStats test;
};

struct FinetuneResult {
  std::vector<EpochStats> epochs;
  double max_accuracy = 0;
  int64_t n_parameters = 0;
};

struct RunOptions {
  std::string command_line;  // for the log
};

absl::StatusOr<FinetuneResult> RunFinetune(const ExperimentConfig& config,
                                           const RunOptions& options = {});

}  // namespace convnextv2::engine

#endif  // CONVNEXTV2_ENGINE_FINETUNE_H_
