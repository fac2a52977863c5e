#include "convnextv2/optim/optimizer.h"

#include <torch/optim/adam.h>
#include <torch/optim/adamw.h>
#include <torch/optim/sgd.h>

#include <algorithm>
#include <limits>

#include "absl/strings/str_cat.h"
#include "convnextv2/optim/algorithms.h"
#include "convnextv2/optim/optimizers.h"

namespace convnextv2::optim {

absl::StatusOr<std::unique_ptr<torch::optim::Optimizer>> CreateOptimizer(
    const ExperimentConfig& config, const std::vector<ParamGroup>& groups, double lr) {
  const OptimConfig& o = config.optim();
  absl::StatusOr<const OptimizerEntry*> entry = FindOptimizer(o.opt());
  if (!entry.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("optim.opt: ", entry.status().message()));
  }
  return OpsOf((*entry)->algorithm).create(o, **entry, groups, lr);
}

void SetLearningRates(torch::optim::Optimizer& optimizer, const std::vector<ParamGroup>& groups,
                      double lr) {
  auto& torch_groups = optimizer.param_groups();
  TORCH_CHECK(torch_groups.size() == groups.size(), "optimizer has ", torch_groups.size(),
              " param groups, expected ", groups.size());
  for (size_t i = 0; i < torch_groups.size(); ++i) {
    torch_groups[i].options().set_lr(lr * groups[i].lr_scale);
  }
}

namespace {

// OptimizerOptions has no generic weight_decay accessor: dispatch on the concrete type.
template <typename Options>
bool SetWd(torch::optim::OptimizerOptions& options, double wd) {
  auto* o = dynamic_cast<Options*>(&options);
  if (o != nullptr) o->weight_decay(wd);
  return o != nullptr;
}

template <typename Options>
bool GetWd(const torch::optim::OptimizerOptions& options, double* wd) {
  const auto* o = dynamic_cast<const Options*>(&options);
  if (o != nullptr) *wd = o->weight_decay();
  return o != nullptr;
}

}  // namespace

void SetWeightDecay(torch::optim::Optimizer& optimizer, const std::vector<ParamGroup>& groups,
                    double wd) {
  auto& torch_groups = optimizer.param_groups();
  TORCH_CHECK(torch_groups.size() == groups.size(), "optimizer has ", torch_groups.size(),
              " param groups, expected ", groups.size());
  for (size_t i = 0; i < torch_groups.size(); ++i) {
    if (groups[i].weight_decay <= 0) continue;
    auto& options = torch_groups[i].options();
    const bool known = SetWd<torch::optim::AdamWOptions>(options, wd) ||
                       SetWd<torch::optim::AdamOptions>(options, wd) ||
                       SetWd<torch::optim::SGDOptions>(options, wd);
    TORCH_CHECK(known, "SetWeightDecay: unsupported optimizer options type");
  }
}

double GetLearningRate(const torch::optim::Optimizer& optimizer, size_t group) {
  return optimizer.param_groups().at(group).options().get_lr();
}

double GetWeightDecay(const torch::optim::Optimizer& optimizer, size_t group) {
  const auto& options = optimizer.param_groups().at(group).options();
  double wd = 0;
  const bool known = GetWd<torch::optim::AdamWOptions>(options, &wd) ||
                     GetWd<torch::optim::AdamOptions>(options, &wd) ||
                     GetWd<torch::optim::SGDOptions>(options, &wd);
  TORCH_CHECK(known, "GetWeightDecay: unsupported optimizer options type");
  return wd;
}

std::pair<double, double> LearningRateRange(const torch::optim::Optimizer& optimizer) {
  double lo = std::numeric_limits<double>::infinity(), hi = 0;
  for (const auto& g : optimizer.param_groups()) {
    lo = std::min(lo, g.options().get_lr());
    hi = std::max(hi, g.options().get_lr());
  }
  return {optimizer.param_groups().empty() ? 0.0 : lo, hi};
}

}  // namespace convnextv2::optim
