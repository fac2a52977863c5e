// The registry of optimizers by their official names (the --opt values of the official
// create_optimizer, timm's optim_factory), with the optim.* and schedule.* validation.
//
//   absl::StatusOr<const OptimizerEntry*> e = FindOptimizer("AdamW");  // lower-cased, as timm
//   // (*e)->name == "adamw", (*e)->algorithm == Algorithm::kAdamW
//
// No libtorch: config::Validate and the launcher use this; CreateOptimizer (optimizer.h) builds
// the torch optimizer of an entry from its algorithm's row (algorithms.h), which also owns the
// save and load of its state in checkpoints. Adding an optimizer is a row in optimizers.cc, a
// row in algorithms.cc when it brings a new algorithm, and its test.
#ifndef CONVNEXTV2_OPTIM_OPTIMIZERS_H_
#define CONVNEXTV2_OPTIM_OPTIMIZERS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "convnextv2/config/checks.h"
#include "convnextv2/proto/experiment.pb.h"

namespace convnextv2::optim {

// The torch optimizer an entry builds.
enum class Algorithm {
  kAdamW,  // torch AdamW: decoupled weight decay
  kAdam,   // torch Adam: L2 added to the gradient
  kSgd,    // torch SGD with momentum (Nesterov or classic)
};

struct OptimizerEntry {
  absl::string_view name;  // lower case, as timm compares it
  Algorithm algorithm;
  bool nesterov;  // kSgd: Nesterov momentum (timm's "sgd" and "nesterov"), else classic
  // Checks of what only this optimizer requires; nullptr: none.
  void (*check)(const OptimConfig& optim, config::Checks& checks);
};

// Every registered optimizer, in the order errors list them.
const std::vector<const OptimizerEntry*>& RegisteredOptimizers();

// The entry for `name`, compared in lower case as the official opt.lower(); NotFound
// "'x' is not one of: adamw, adam, ..." otherwise.
absl::StatusOr<const OptimizerEntry*> FindOptimizer(absl::string_view name);

// optim.* and schedule.* for config::Validate (the schedules' checks are their entries', run by
// CheckScheduleConfig in schedules.h), pre-training's restrictions included (main_pretrain.py
// hard-codes AdamW without clipping or layer decay).
void CheckOptimConfig(const ExperimentConfig& config, config::Checks& checks);

}  // namespace convnextv2::optim

#endif  // CONVNEXTV2_OPTIM_OPTIMIZERS_H_
