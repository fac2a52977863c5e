// The training loops' data-parallel glue over dist::Communicator: identical starting weights
// and epoch averages over all ranks.
//
//   if (comm) BroadcastModule(*comm, *model);              // after creating / loading weights
//   ...
//   if (comm) ReduceMeters(*comm, {&loss_meter, &acc_meter});  // epoch end: global means
#ifndef CONVNEXTV2_ENGINE_DATA_PARALLEL_H_
#define CONVNEXTV2_ENGINE_DATA_PARALLEL_H_

#include <torch/nn/module.h>

#include <vector>

#include "absl/status/status.h"
#include "convnextv2/dist/process_group.h"
#include "convnextv2/engine/metrics.h"

namespace convnextv2::engine {

// Copies rank 0's parameters and buffers into every rank's module.
absl::Status BroadcastModule(dist::Communicator& comm, const torch::nn::Module& module);

// Replaces each meter's (sum, count) by its sum over ranks, so mean() is the global mean.
absl::Status ReduceMeters(dist::Communicator& comm, const std::vector<MeanMeter*>& meters);

}  // namespace convnextv2::engine

#endif  // CONVNEXTV2_ENGINE_DATA_PARALLEL_H_
