// The training loops' data-parallel glue over dist::Communicator: identical starting weights
// and epoch averages over all ranks.
//
//   if (comm) BroadcastModule(*comm, *model);              // after creating / loading weights
//   ...
//   if (comm) ReduceMeters(*comm, {&loss_meter, &acc_meter});  // epoch end: global means
#ifndef CONVNEXTV2_TRAIN_DATA_PARALLEL_H_
#define CONVNEXTV2_TRAIN_DATA_PARALLEL_H_

#include <torch/nn/module.h>

#include <vector>

#include "absl/status/status.h"
#include "convnextv2/dist/grad_sync.h"
#include "convnextv2/dist/process_group.h"
#include "convnextv2/proto/experiment.pb.h"
#include "convnextv2/train/meters.h"
#include "convnextv2/train/train_step.h"

namespace convnextv2::train {

// Copies rank 0's parameters and buffers into every rank's module.
absl::Status BroadcastModule(dist::Communicator& comm, const torch::nn::Module& module);

// Makes `stepper` average the gradients of `module`'s trainable parameters over the ranks at
// each accumulation boundary, in buckets of config.bucket_cap_mb started during backward. The
// returned sync must live as long as the stepper uses it.
std::unique_ptr<dist::GradientSync> SyncGradients(std::shared_ptr<dist::Communicator> comm,
                                                  const torch::nn::Module& module,
                                                  const DistributedConfig& config,
                                                  OptimizerStepper* stepper);

// Replaces each meter's (sum, count) by its sum over ranks, so mean() is the global mean.
absl::Status ReduceMeters(dist::Communicator& comm, const std::vector<MeanMeter*>& meters);

}  // namespace convnextv2::train

#endif  // CONVNEXTV2_TRAIN_DATA_PARALLEL_H_
