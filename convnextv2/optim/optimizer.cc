#include "convnextv2/optim/optimizer.h"

#include <torch/optim/adamw.h>

#include "absl/strings/str_cat.h"

namespace convnextv2::optim {

absl::StatusOr<std::unique_ptr<torch::optim::Optimizer>> CreateOptimizer(
    const ExperimentConfig& config, const std::vector<ParamGroup>& groups, double lr) {
  const OptimConfig& o = config.optim();
  if (o.opt() == "adamw") {
    torch::optim::AdamWOptions defaults(lr);
    defaults.eps(o.opt_eps());
    if (o.opt_betas_size() == 2) defaults.betas({o.opt_betas(0), o.opt_betas(1)});
    std::vector<torch::optim::OptimizerParamGroup> torch_groups;
    for (const ParamGroup& g : groups) {
      auto options = std::make_unique<torch::optim::AdamWOptions>(defaults);
      options->weight_decay(g.weight_decay);
      options->lr(lr * g.lr_scale);
      torch_groups.emplace_back(g.params, std::move(options));
    }
    return std::unique_ptr<torch::optim::Optimizer>(
        new torch::optim::AdamW(std::move(torch_groups), defaults));
  }
  return absl::UnimplementedError(
      absl::StrCat("optim.opt ", o.opt(), " is not supported by this build yet"));
}

void SetLearningRates(torch::optim::Optimizer& optimizer, const std::vector<ParamGroup>& groups,
                      double lr) {
  auto& torch_groups = optimizer.param_groups();
  for (size_t i = 0; i < torch_groups.size(); ++i) {
    torch_groups[i].options().set_lr(lr * groups[i].lr_scale);
  }
}

double GetLearningRate(const torch::optim::Optimizer& optimizer, size_t group) {
  return optimizer.param_groups()[group].options().get_lr();
}

}  // namespace convnextv2::optim
