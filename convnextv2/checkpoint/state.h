// Training state <-> named checkpoint tensors: modules, optimizers (by parameter NAME, not by
// the optimizer's internal pointer keys), and random generators.
//
//   Checkpoint ckpt;
//   AddModule(*model, "model.", &ckpt);
//   const optim::AlgorithmOps& ops = optim::OpsOf(entry->algorithm);  // the optimizer's row
//   AddOptimizer(*optimizer, ops, model->named_parameters(), "optimizer.", &ckpt);
//   AddRngStates(&ckpt);
//   ...
//   absl::Status s = LoadModule(ckpt, "model.", *model, /*strict=*/true);
//   s = LoadOptimizer(ckpt, "optimizer.", model->named_parameters(), ops, *optimizer);
//   s = RestoreRngStates(ckpt);
#ifndef CONVNEXTV2_CHECKPOINT_STATE_H_
#define CONVNEXTV2_CHECKPOINT_STATE_H_

#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>

#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "convnextv2/checkpoint/file.h"
#include "convnextv2/optim/algorithms.h"

namespace convnextv2::checkpoint {

using TensorMap = std::map<std::string, at::Tensor>;

// Parameters and buffers under their state-dict names (official names for ConvNeXtV2).
TensorMap ModuleState(const torch::nn::Module& module);
void AddModule(const torch::nn::Module& module, absl::string_view prefix, Checkpoint* ckpt);

// What a lenient load did, for the log (the official "missing/unexpected keys" lines).
struct LoadReport {
  std::vector<std::string> loaded, missing, unexpected, shape_mismatch;
};

// Copies `state` into the module's parameters and buffers. Strict: any missing, unexpected or
// mis-shaped key is an error that names them (at most a few of each). Lenient: loads what
// matches and reports the rest.
absl::Status LoadModuleState(const TensorMap& state, torch::nn::Module& module, bool strict,
                             absl::string_view what, LoadReport* report = nullptr);
absl::Status LoadModule(const Checkpoint& ckpt, absl::string_view prefix,
                        torch::nn::Module& module, bool strict, absl::string_view what);

// Per-parameter optimizer state stored as <prefix><param name>.<field>, the fields being those
// of the optimizer's algorithm row (optim::OpsOf: step, exp_avg, exp_avg_sq, max_exp_avg_sq for
// Adam/AdamW; momentum_buffer for SGD). `ops` is the row the optimizer was created from.
void AddOptimizer(torch::optim::Optimizer& optimizer, const optim::AlgorithmOps& ops,
                  const torch::OrderedDict<std::string, at::Tensor>& named_params,
                  absl::string_view prefix, Checkpoint* ckpt);
absl::Status LoadOptimizer(const Checkpoint& ckpt, absl::string_view prefix,
                           const torch::OrderedDict<std::string, at::Tensor>& named_params,
                           const optim::AlgorithmOps& ops, torch::optim::Optimizer& optimizer);

// The default CPU generator ("rng.cpu") and each CUDA device's ("rng.cuda.<i>").
void AddRngStates(Checkpoint* ckpt);
absl::Status RestoreRngStates(const Checkpoint& ckpt);

}  // namespace convnextv2::checkpoint

#endif  // CONVNEXTV2_CHECKPOINT_STATE_H_
