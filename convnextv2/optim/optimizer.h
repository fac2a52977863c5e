// Optimizers over parameter groups, with per-group learning rates and weight decay set each step.
//
//   std::unique_ptr<torch::optim::Optimizer> opt = *CreateOptimizer(config, groups, lr);
//   SetLearningRates(*opt, groups, lr_now);   // lr_now * group.lr_scale for each group
//   SetWeightDecay(*opt, groups, wd_now);     // groups that decay at all get wd_now
//
// As the official create_optimizer: adamw (torch AdamW), adam (torch Adam: L2 added to the
// gradient), sgd (SGD with Nesterov momentum), momentum (SGD with classic momentum); opt_eps and
// opt_betas apply to the Adam family, `momentum` to the SGD family. Each ParamGroup becomes one
// torch param group with its own weight decay (so the optimizer-wide weight decay is unused).
#ifndef CONVNEXTV2_OPTIM_OPTIMIZER_H_
#define CONVNEXTV2_OPTIM_OPTIMIZER_H_

#include <torch/optim/optimizer.h>

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "convnextv2/optim/param_groups.h"
#include "convnextv2/proto/experiment.pb.h"

namespace convnextv2::optim {

// The optimizer named by config.optim().opt(), one torch param group per ParamGroup (same order),
// each starting at lr * lr_scale.
absl::StatusOr<std::unique_ptr<torch::optim::Optimizer>> CreateOptimizer(
    const ExperimentConfig& config, const std::vector<ParamGroup>& groups, double lr);

void SetLearningRates(torch::optim::Optimizer& optimizer, const std::vector<ParamGroup>& groups,
                      double lr);

// Sets weight_decay of the torch groups whose ParamGroup decays (weight_decay > 0) to `wd`; the
// no-decay groups stay at 0 (the official weight-decay schedule of ConvNeXt).
void SetWeightDecay(torch::optim::Optimizer& optimizer, const std::vector<ParamGroup>& groups,
                    double wd);

double GetLearningRate(const torch::optim::Optimizer& optimizer, size_t group);
double GetWeightDecay(const torch::optim::Optimizer& optimizer, size_t group);

// Smallest and largest lr over the groups (the official log's min_lr and lr).
std::pair<double, double> LearningRateRange(const torch::optim::Optimizer& optimizer);

}  // namespace convnextv2::optim

#endif  // CONVNEXTV2_OPTIM_OPTIMIZER_H_
