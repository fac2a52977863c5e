// Optimizers over parameter groups, with per-group learning rates set each step.
//
//   std::unique_ptr<torch::optim::Optimizer> opt = CreateOptimizer(config, groups, lr);
//   SetLearningRates(*opt, groups, lr_now);   // lr_now * group.lr_scale for each group
#ifndef CONVNEXTV2_OPTIM_OPTIMIZER_H_
#define CONVNEXTV2_OPTIM_OPTIMIZER_H_

#include <torch/optim/optimizer.h>

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "convnextv2/optim/param_groups.h"
#include "convnextv2/proto/experiment.pb.h"

namespace convnextv2::optim {

// The optimizer named by config.optim().opt(), one torch param group per ParamGroup (same order).
absl::StatusOr<std::unique_ptr<torch::optim::Optimizer>> CreateOptimizer(
    const ExperimentConfig& config, const std::vector<ParamGroup>& groups, double lr);

void SetLearningRates(torch::optim::Optimizer& optimizer, const std::vector<ParamGroup>& groups,
                      double lr);

double GetLearningRate(const torch::optim::Optimizer& optimizer, size_t group);

}  // namespace convnextv2::optim

#endif  // CONVNEXTV2_OPTIM_OPTIMIZER_H_
