// pretrain: FCMAE pre-training of ConvNeXt V2 (main_pretrain.py of the official code).
//
//   bazel run //convnextv2:pretrain                   # built-in default: atto, Fashion-MNIST 128 px
//   bazel run //convnextv2:pretrain -- --output_dir /tmp/pt --epochs 2
//   bazel run //convnextv2:pretrain -- --model convnextv2_base --mask_ratio 0.6 ...  (official)
//   bazel run //convnextv2:pretrain -- --help
#include "convnextv2/binary_main.h"
#include "convnextv2/engine/preemption.h"
#include "convnextv2/engine/pretrain.h"

int main(int argc, char** argv) {
  return convnextv2::BinaryMain(
      argc, argv, convnextv2::config::Mode::kPretrain, "pretrain",
      [](const convnextv2::ExperimentConfig& config, const std::string& command_line) {
        absl::StatusOr<convnextv2::engine::PretrainResult> result =
            convnextv2::engine::RunPretrain(config, {command_line});
        if (!result.ok()) return absl::StatusOr<int>(result.status());
        return absl::StatusOr<int>(result->preempted ? convnextv2::engine::kExitRequeue : 0);
      });
}
