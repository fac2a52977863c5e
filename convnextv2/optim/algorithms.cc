#include "convnextv2/optim/algorithms.h"

#include <torch/optim/adam.h>
#include <torch/optim/adamw.h>
#include <torch/optim/sgd.h>

#include <cstdlib>
#include <utility>

#include "absl/strings/str_cat.h"
#include "convnextv2/util/status_macros.h"

namespace convnextv2::optim {
namespace {

// One torch param group per ParamGroup, each with a copy of `defaults` at its lr and decay.
template <typename Options>
std::vector<torch::optim::OptimizerParamGroup> TorchGroups(const Options& defaults,
                                                          const std::vector<ParamGroup>& groups,
                                                          double lr) {
  std::vector<torch::optim::OptimizerParamGroup> torch_groups;
  for (const ParamGroup& g : groups) {
    auto options = std::make_unique<Options>(defaults);
    options->weight_decay(g.weight_decay);
    options->lr(lr * g.lr_scale);
    torch_groups.emplace_back(g.params, std::move(options));
  }
  return torch_groups;
}

template <typename Options>
void SetAdamFamily(const OptimConfig& o, Options* options) {
  options->eps(o.opt_eps());
  if (o.opt_betas_size() == 2) options->betas({o.opt_betas(0), o.opt_betas(1)});
}

// The state a row's optimizer keeps; anything else is a row used on another optimizer.
template <typename State>
const State& StateOf(const torch::optim::OptimizerParamState& state) {
  const auto* s = dynamic_cast<const State*>(&state);
  TORCH_CHECK(s != nullptr, "optimizer state of another algorithm than the one saving it");
  return *s;
}

absl::StatusOr<std::unique_ptr<torch::optim::Optimizer>> CreateAdamW(
    const OptimConfig& o, const OptimizerEntry& /*entry*/, const std::vector<ParamGroup>& groups,
    double lr) {
  torch::optim::AdamWOptions defaults(lr);
  SetAdamFamily(o, &defaults);
  defaults.weight_decay(0.0);
  return std::unique_ptr<torch::optim::Optimizer>(
      new torch::optim::AdamW(TorchGroups(defaults, groups, lr), defaults));
}

absl::StatusOr<std::unique_ptr<torch::optim::Optimizer>> CreateAdam(
    const OptimConfig& o, const OptimizerEntry& /*entry*/, const std::vector<ParamGroup>& groups,
    double lr) {
  torch::optim::AdamOptions defaults(lr);
  SetAdamFamily(o, &defaults);
  return std::unique_ptr<torch::optim::Optimizer>(
      new torch::optim::Adam(TorchGroups(defaults, groups, lr), defaults));
}

absl::StatusOr<std::unique_ptr<torch::optim::Optimizer>> CreateSgd(
    const OptimConfig& o, const OptimizerEntry& entry, const std::vector<ParamGroup>& groups,
    double lr) {
  if (entry.nesterov && o.momentum() <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "optim.opt ", o.opt(), " uses Nesterov momentum, which needs optim.momentum > 0 (got ",
        o.momentum(), ")"));
  }
  torch::optim::SGDOptions defaults(lr);
  defaults.momentum(o.momentum()).nesterov(entry.nesterov);
  return std::unique_ptr<torch::optim::Optimizer>(
      new torch::optim::SGD(TorchGroups(defaults, groups, lr), defaults));
}

at::Tensor StepTensor(int64_t step) { return at::scalar_tensor(step, at::kLong); }

// Adam and AdamW keep the same fields: step, exp_avg, exp_avg_sq, max_exp_avg_sq (amsgrad).
template <typename State>
std::vector<StateField> SaveAdamFamily(const torch::optim::OptimizerParamState& state) {
  const State& a = StateOf<State>(state);
  std::vector<StateField> fields = {{"step", StepTensor(a.step())},
                                    {"exp_avg", a.exp_avg()},
                                    {"exp_avg_sq", a.exp_avg_sq()}};
  if (a.max_exp_avg_sq().defined()) fields.push_back({"max_exp_avg_sq", a.max_exp_avg_sq()});
  return fields;
}

template <typename State>
absl::StatusOr<std::unique_ptr<torch::optim::OptimizerParamState>> LoadAdamFamily(
    const SavedFields& fields) {
  CONVNEXTV2_ASSIGN_OR_RETURN(at::Tensor exp_avg, fields.LikeParam("exp_avg"));
  CONVNEXTV2_ASSIGN_OR_RETURN(at::Tensor exp_avg_sq, fields.LikeParam("exp_avg_sq"));
  CONVNEXTV2_ASSIGN_OR_RETURN(const int64_t steps, fields.Count("step"));
  auto a = std::make_unique<State>();
  a->step(steps).exp_avg(exp_avg).exp_avg_sq(exp_avg_sq);
  if (fields.Has("max_exp_avg_sq")) {
    CONVNEXTV2_ASSIGN_OR_RETURN(at::Tensor max_sq, fields.LikeParam("max_exp_avg_sq"));
    a->max_exp_avg_sq(max_sq);
  }
  return std::unique_ptr<torch::optim::OptimizerParamState>(std::move(a));
}

std::vector<StateField> SaveSgd(const torch::optim::OptimizerParamState& state) {
  return {{"momentum_buffer", StateOf<torch::optim::SGDParamState>(state).momentum_buffer()}};
}

absl::StatusOr<std::unique_ptr<torch::optim::OptimizerParamState>> LoadSgd(
    const SavedFields& fields) {
  CONVNEXTV2_ASSIGN_OR_RETURN(at::Tensor buf, fields.LikeParam("momentum_buffer"));
  auto m = std::make_unique<torch::optim::SGDParamState>();
  m->momentum_buffer(buf);
  return std::unique_ptr<torch::optim::OptimizerParamState>(std::move(m));
}

const AlgorithmOps kAdamWOps = {Algorithm::kAdamW, CreateAdamW,
                                SaveAdamFamily<torch::optim::AdamWParamState>,
                                LoadAdamFamily<torch::optim::AdamWParamState>};
const AlgorithmOps kAdamOps = {Algorithm::kAdam, CreateAdam,
                               SaveAdamFamily<torch::optim::AdamParamState>,
                               LoadAdamFamily<torch::optim::AdamParamState>};
const AlgorithmOps kSgdOps = {Algorithm::kSgd, CreateSgd, SaveSgd, LoadSgd};

}  // namespace

const AlgorithmOps& OpsOf(Algorithm algorithm) {
  switch (algorithm) {
    case Algorithm::kAdamW:
      return kAdamWOps;
    case Algorithm::kAdam:
      return kAdamOps;
    case Algorithm::kSgd:
      return kSgdOps;
  }
  TORCH_CHECK(false, "OpsOf: no row for algorithm ", static_cast<int>(algorithm));
  std::abort();  // not reached
}

}  // namespace convnextv2::optim
