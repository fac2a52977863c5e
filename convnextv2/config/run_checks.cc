#include "convnextv2/config/run_checks.h"

#include <algorithm>
#include <optional>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "convnextv2/config/choices.h"
#include "convnextv2/util/signals.h"

namespace convnextv2::config {
namespace {

// cpu, cuda, cuda:N (N a GPU index of this node) or empty for automatic.
bool IsDeviceName(absl::string_view d) {
  if (d.empty() || d == "cpu" || d == "cuda") return true;
  if (!absl::ConsumePrefix(&d, "cuda:") || d.empty() || d.size() > 4) return false;
  return std::all_of(d.begin(), d.end(), [](char ch) { return ch >= '0' && ch <= '9'; });
}

const Choices<AmpDtype>& AmpDtypeChoices() {
  static const auto* const kChoices = new Choices<AmpDtype>(
      "train.amp_dtype",
      {{"bfloat16", AmpDtype::kBfloat16}, {"float16", AmpDtype::kFloat16},
       {"", AmpDtype::kAutomatic}},
      "automatic");
  return *kChoices;
}

void CheckTrain(const TrainConfig& t, Checks& checks) {
  checks.Require(t.batch_size() > 0, "train.batch_size: ", t.batch_size(), " must be positive");
  checks.Require(t.epochs() > 0, "train.epochs: ", t.epochs(), " must be positive");
  checks.Require(t.update_freq() >= 1, "train.update_freq: ", t.update_freq(), " must be >= 1");
  checks.Require(t.start_epoch() >= 0 && t.start_epoch() < std::max(t.epochs(), 1),
                 "train.start_epoch: ", t.start_epoch(), " must be in [0, epochs)");
  const absl::string_view device = t.device();
  checks.Require(IsDeviceName(device), "train.device: '", device,
                 "' is not one of: cpu, cuda, cuda:N, or empty for automatic");
  checks.Require(t.num_threads() >= 0, "train.num_threads: ", t.num_threads(), " must be >= 0");
  checks.Require(t.print_freq() > 0, "train.print_freq: ", t.print_freq(), " must be positive");
  const std::optional<AmpDtype> amp = AmpDtypeChoices().Check(t.amp_dtype(), checks);
  checks.Require(amp != AmpDtype::kFloat16 || device != "cpu", "train.amp_dtype: ",
                 "float16 needs a CUDA device (CPU autocast supports bfloat16 only)");
}

void CheckEma(const EmaConfig& e, Checks& checks) {
  checks.Require(e.model_ema_decay() >= 0 && e.model_ema_decay() <= 1, "ema.model_ema_decay: ",
                 e.model_ema_decay(), " must be in [0, 1]");
  checks.Require(!e.model_ema_eval() || e.model_ema(),
                 "ema.model_ema_eval: true needs ema.model_ema: true (there is no EMA to "
                 "evaluate)");
  checks.Require(!e.model_ema_force_cpu() || e.model_ema(),
                 "ema.model_ema_force_cpu: true needs ema.model_ema: true");
}

void CheckCheckpoint(const CheckpointConfig& k, Checks& checks) {
  checks.Require(k.save_ckpt_freq() > 0, "checkpoint.save_ckpt_freq: ", k.save_ckpt_freq(),
                 " must be positive");
  checks.Require(k.save_ckpt_num() > 0, "checkpoint.save_ckpt_num: ", k.save_ckpt_num(),
                 " must be positive");
  checks.Require(k.save_ckpt_steps() >= 0, "checkpoint.save_ckpt_steps: ", k.save_ckpt_steps(),
                 " must be >= 0 (0: no periodic mid-epoch checkpoints)");
  checks.Require(k.preempt_lead_seconds() >= 0, "checkpoint.preempt_lead_seconds: ",
                 k.preempt_lead_seconds(),
                 " must be >= 0 (0: do not watch the Slurm time limit)");
  if (absl::StatusOr<int> sig = util::ParseSignalName(k.preempt_signal()); !sig.ok()) {
    checks.Add(absl::StrCat("checkpoint.preempt_signal: ", sig.status().message()));
  }
  checks.Require(!absl::StrContains(k.model_key(), "||") && !k.model_key().empty(),
                 "checkpoint.model_key: '", k.model_key(),
                 "' must be key names separated by '|'");
  checks.Require(k.resume().empty() || k.finetune().empty(),
                 "checkpoint.resume and checkpoint.finetune are both set: resume continues a "
                 "run (all state), finetune only initializes weights");
  if (checks.pretrain()) {
    checks.Require(k.finetune().empty(), "checkpoint.finetune is not supported by this build yet");
  }
}

const Choices<EvalWeights>& EvalWeightsChoices() {
  static const auto* const kChoices = new Choices<EvalWeights>(
      "eval.eval_weights", {{"model", EvalWeights::kModel}, {"ema", EvalWeights::kEma}});
  return *kChoices;
}

void CheckEval(const ExperimentConfig& c, Checks& checks) {
  const EvalConfig& e = c.eval();
  const CheckpointConfig& k = c.checkpoint();
  const std::optional<EvalWeights> weights = EvalWeightsChoices().Check(e.eval_weights(), checks);
  // As main_finetune.py: without resume, auto_resume evaluates output_dir's newest checkpoint.
  checks.Require(!e.eval() || !k.resume().empty() || !k.finetune().empty() ||
                     (k.auto_resume() && !c.output().output_dir().empty()),
                 "eval.eval: evaluation only needs weights: set checkpoint.resume (a convnextv2 "
                 "checkpoint, checkpoint-best.pth included), checkpoint.finetune (PyTorch or "
                 "pre-training weights), or output.output_dir with checkpoint.auto_resume (its "
                 "newest checkpoint-N.pth is evaluated)");
  checks.Require(weights != EvalWeights::kEma || k.finetune().empty(),
                 "eval.eval_weights: ema needs a convnextv2 checkpoint in checkpoint.resume");
}

void CheckDistributed(const DistributedConfig& d, Checks& checks) {
  checks.Require(d.world_size() >= 1, "distributed.world_size: ", d.world_size(),
                 " must be >= 1");
  checks.Require(d.dist_timeout() >= 1, "distributed.dist_timeout: ", d.dist_timeout(),
                 " must be >= 1 (seconds)");
  checks.Require(d.bucket_cap_mb() >= 1, "distributed.bucket_cap_mb: ", d.bucket_cap_mb(),
                 " must be >= 1 (MiB)");
}

}  // namespace

AmpDtype AmpDtypeOf(const TrainConfig& train) { return AmpDtypeChoices().Of(train.amp_dtype()); }

EvalWeights EvalWeightsOf(const EvalConfig& eval) {
  return EvalWeightsChoices().Of(eval.eval_weights());
}

void CheckRunConfig(const ExperimentConfig& config, Checks& checks) {
  CheckTrain(config.train(), checks);
  CheckEma(config.ema(), checks);
  CheckCheckpoint(config.checkpoint(), checks);
  CheckEval(config, checks);
  CheckDistributed(config.distributed(), checks);
}

}  // namespace convnextv2::config
