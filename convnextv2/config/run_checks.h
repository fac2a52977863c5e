// Validation of the settings of a run as a whole, which the loop, the recipe, checkpointing and
// dist read together: train.* (batch, epochs, accumulation, device, AMP), ema.*, checkpoint.*
// (saving, resuming, preemption), eval.* and distributed.*. The packages below the loop check
// their own settings (models::CheckModelConfig, data::CheckDataConfig, optim::CheckOptimConfig);
// these live here, beside config::Validate, so that config never depends on run/.
//
//   config::Checks checks(/*pretrain=*/false);
//   CheckRunConfig(config, checks);   // config::Validate calls this
//
// No libtorch: the launcher validates sweeps with it.
#ifndef CONVNEXTV2_CONFIG_RUN_CHECKS_H_
#define CONVNEXTV2_CONFIG_RUN_CHECKS_H_

#include "convnextv2/config/checks.h"
#include "convnextv2/proto/experiment.pb.h"

namespace convnextv2::config {

void CheckRunConfig(const ExperimentConfig& config, config::Checks& checks);

// eval.eval_weights: which weights evaluation-only runs load from checkpoint.resume.
enum class EvalWeights {
  kModel,  // "model"
  kEma,    // "ema": the checkpoint's model_ema.*
};
// The value of a validated config.
EvalWeights EvalWeightsOf(const EvalConfig& eval);

// train.amp_dtype: the autocast dtype of --use_amp.
enum class AmpDtype {
  kAutomatic,  // "": bfloat16 on the CPU, float16 on CUDA
  kBfloat16,   // "bfloat16"
  kFloat16,    // "float16": CUDA only
};
// The value of a validated config.
AmpDtype AmpDtypeOf(const TrainConfig& train);

}  // namespace convnextv2::config

#endif  // CONVNEXTV2_CONFIG_RUN_CHECKS_H_
