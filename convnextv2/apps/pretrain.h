// The FCMAE pre-training run: what `pretrain` does after parsing its flags (main_pretrain.py and
// engine_pretrain.py of the official code). A task of the training loop (loop.h), with the same
// TrainingRecipe as fine-tuning.
//
//   absl::StatusOr<PretrainResult> r = RunPretrain(config, {.command_line = "..."});
//
// Recipe: AdamW with the configured betas (pretrain's defaults are (0.9, 0.95)), weight decay on
// every parameter except 1-D ones and biases (optim::PretrainParamGroups: timm's
// add_weight_decay, which the official script uses: GRN gamma/beta and the mask token are
// decayed there, unlike in fine-tuning),
// lr = blr * batch_size * update_freq * world_size / 256 unless lr is set, the per-iteration
// cosine schedule with warmup set at every update_freq-th micro-batch, gradient accumulation over
// update_freq micro-batches; with use_amp, autocast (bfloat16 on CPU) and dynamic loss scaling
// as in fine-tuning (a step with non-finite gradients is skipped). Each micro-batch draws its
// masks from a generator keyed by (seed, epoch, step), so a run is reproducible whatever the
// thread count.
//
// Writes nothing when output_dir is empty; otherwise output_dir/config.pbtxt, output_dir/log.txt
// (one JSON object per epoch: train_lr, train_loss, epoch, n_parameters, as the official),
// output_dir/fcmae_weights.pt (the FCMAE state dict as named tensors, see
// checkpoint/named_tensors.h; rewritten every save_ckpt_freq epochs and at the end when
// save_ckpt),
// output_dir/reconstruction-<epoch>.png every epoch when fcmae.vis_images > 0 (and
// reconstruction-<epoch>-step<step>.png every fcmae.vis_freq steps; see reconstructions.h), the
// checkpoints of run_checkpoints.h as fine-tuning writes them: checkpoint-<epoch>.pth by the
// official policy, mid-epoch ones every save_ckpt_steps or on SIGTERM/preempt_signal (then the
// run stops and the binary exits kExitRequeue). Their "model." tensors are the FCMAE state dict
// (encoder.*, proj, decoder, mask_token, pred) and their header model is "fcmae_<variant>".
// checkpoint.resume / auto_resume continue a run exactly: the masks are keyed by
// (seed, epoch, step), the torch RNG state (DropPath) and the loss scaler are restored.
#ifndef CONVNEXTV2_APPS_PRETRAIN_H_
#define CONVNEXTV2_APPS_PRETRAIN_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "convnextv2/proto/experiment.pb.h"
#include "convnextv2/run/run_options.h"

namespace convnextv2::apps {

struct PretrainEpochStats {
  int epoch = 0;
  double train_loss = 0;  // mean over the epoch's micro-batches
  double train_lr = 0;    // mean over the epoch's micro-batches
  double images_per_second = 0;
};

struct PretrainResult {
  std::vector<PretrainEpochStats> epochs;
  int64_t n_parameters = 0;
  std::string weights_path;  // empty when nothing was saved
  // Stopped on a signal (or PretrainOptions::stop_*) after saving a mid-epoch checkpoint: the
  // binary exits with run::kExitRequeue.
  bool preempted = false;
};

using PretrainOptions = run::RunOptions;

absl::StatusOr<PretrainResult> RunPretrain(const ExperimentConfig& config,
                                           const PretrainOptions& options = {});

// File names inside output_dir.
inline constexpr char kFcmaeWeightsFile[] = "fcmae_weights.pt";
std::string ReconstructionFileName(int epoch);  // "reconstruction-0007.png"
// "reconstruction-0007-step000120.png": after `step` batches of the run (fcmae.vis_freq).
std::string ReconstructionFileName(int epoch, int64_t step);

}  // namespace convnextv2::apps

#endif  // CONVNEXTV2_APPS_PRETRAIN_H_
