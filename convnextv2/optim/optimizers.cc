#include "convnextv2/optim/optimizers.h"

#include "absl/base/attributes.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "convnextv2/optim/layer_decay_type.h"
#include "convnextv2/optim/schedules.h"

namespace convnextv2::optim {
namespace {

void CheckNesterovMomentum(const OptimConfig& o, config::Checks& checks) {
  checks.Require(o.momentum() > 0, "optim.momentum: ", o.momentum(), " must be positive for opt ",
                 o.opt(), " (Nesterov momentum); use opt momentum or adamw otherwise");
}

ABSL_CONST_INIT const OptimizerEntry kAdamW = {"adamw", Algorithm::kAdamW, false, nullptr};
ABSL_CONST_INIT const OptimizerEntry kAdam = {"adam", Algorithm::kAdam, false, nullptr};
// timm: "sgd" and "nesterov" are SGD with Nesterov momentum, "momentum" is classic momentum.
ABSL_CONST_INIT const OptimizerEntry kSgd = {"sgd", Algorithm::kSgd, true,
                                             CheckNesterovMomentum};
ABSL_CONST_INIT const OptimizerEntry kNesterov = {"nesterov", Algorithm::kSgd, true,
                                                  CheckNesterovMomentum};
ABSL_CONST_INIT const OptimizerEntry kMomentum = {"momentum", Algorithm::kSgd, false, nullptr};

std::string OptimizerNamesList() {
  return absl::StrJoin(RegisteredOptimizers(), ", ",
                       [](std::string* out, const OptimizerEntry* entry) {
                         absl::StrAppend(out, entry->name);
                       });
}

void CheckOptim(const OptimConfig& o, config::Checks& checks) {
  absl::StatusOr<const OptimizerEntry*> entry = FindOptimizer(o.opt());
  if (!entry.ok()) {
    checks.Add(absl::StrCat("optim.opt: ", entry.status().message()));
  } else if ((*entry)->check != nullptr) {
    (*entry)->check(o, checks);
  }
  checks.Require(o.opt_eps() > 0, "optim.opt_eps: ", o.opt_eps(), " must be positive");
  checks.Require(o.opt_betas_size() == 0 || o.opt_betas_size() == 2,
                 "optim.opt_betas: needs two values (beta1 beta2), got ", o.opt_betas_size());
  for (double b : o.opt_betas()) {
    checks.Require(b >= 0 && b < 1, "optim.opt_betas: ", b, " must be in [0, 1)");
  }
  checks.Require(o.momentum() >= 0 && o.momentum() < 1, "optim.momentum: ", o.momentum(),
                 " must be in [0, 1)");
  checks.Require(o.weight_decay() >= 0, "optim.weight_decay: ", o.weight_decay(),
                 " must be >= 0");
  checks.Require(!o.has_lr() || o.lr() >= 0, "optim.lr: ", o.lr(), " must be >= 0");
  checks.Require(o.blr() > 0, "optim.blr: ", o.blr(), " must be positive");
  checks.Require(o.layer_decay() > 0, "optim.layer_decay: ", o.layer_decay(),
                 " must be positive");
  LayerDecayTypes().Check(o.layer_decay_type(), checks);
  checks.Require(!o.has_clip_grad() || o.clip_grad() > 0, "optim.clip_grad: ", o.clip_grad(),
                 " must be positive (leave it unset for no clipping)");
}

// main_pretrain.py hard-codes AdamW without gradient clipping or layer decay.
void CheckPretrainOptim(const OptimConfig& o, config::Checks& checks) {
  absl::StatusOr<const OptimizerEntry*> entry = FindOptimizer(o.opt());
  checks.Require(!entry.ok() || (*entry)->algorithm == Algorithm::kAdamW, "optim.opt: '",
                 o.opt(), "' cannot be used: pretrain uses AdamW");
  checks.Require(!o.has_clip_grad(), "optim.clip_grad: pretrain does not clip gradients");
  checks.Require(o.layer_decay() == 1.0, "optim.layer_decay: ", o.layer_decay(),
                 " cannot be used in pretrain (it is a fine-tuning setting)");
  checks.Require(!o.has_weight_decay_end(),
                 "optim.weight_decay_end is not supported by this build yet");
}

}  // namespace

const std::vector<const OptimizerEntry*>& RegisteredOptimizers() {
  static const auto* const kOptimizers = new std::vector<const OptimizerEntry*>{
      &kAdamW, &kAdam, &kSgd, &kNesterov, &kMomentum,
  };
  return *kOptimizers;
}

absl::StatusOr<const OptimizerEntry*> FindOptimizer(absl::string_view name) {
  const std::string lower = absl::AsciiStrToLower(name);
  for (const OptimizerEntry* entry : RegisteredOptimizers()) {
    if (entry->name == lower) return entry;
  }
  return absl::NotFoundError(
      absl::StrCat("'", name, "' is not one of: ", OptimizerNamesList(),
                   " (compared in lower case, as timm's create_optimizer)"));
}

void CheckOptimConfig(const ExperimentConfig& config, config::Checks& checks) {
  CheckOptim(config.optim(), checks);
  CheckScheduleConfig(config, checks);  // the schedule entries' own checks (schedules.h)
  if (checks.pretrain()) CheckPretrainOptim(config.optim(), checks);
}

}  // namespace convnextv2::optim
