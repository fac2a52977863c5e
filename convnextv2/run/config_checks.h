// The run package's part of config validation: train.* (batch, epochs, accumulation, device,
// AMP), ema.*, checkpoint.* (saving, resuming, preemption), eval.* and distributed.*.
//
//   config::Checks checks(/*pretrain=*/false);
//   run::CheckRunConfig(config, checks);   // config::Validate calls this
//
// No libtorch: the launcher validates sweeps with it.
#ifndef CONVNEXTV2_RUN_CONFIG_CHECKS_H_
#define CONVNEXTV2_RUN_CONFIG_CHECKS_H_

#include "convnextv2/config/checks.h"
#include "convnextv2/proto/experiment.pb.h"

namespace convnextv2::run {

void CheckRunConfig(const ExperimentConfig& config, config::Checks& checks);

}  // namespace convnextv2::run

#endif  // CONVNEXTV2_RUN_CONFIG_CHECKS_H_
