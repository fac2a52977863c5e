// pretrain: FCMAE pre-training of ConvNeXt V2 (main_pretrain.py of the official code).
//
//   bazel run //convnextv2:pretrain                   # built-in default: atto, Fashion-MNIST 128 px
//   bazel run //convnextv2:pretrain -- --output_dir /tmp/pt --epochs 2
//   bazel run //convnextv2:pretrain -- --model convnextv2_base --mask_ratio 0.6 ...  (official)
//   bazel run //convnextv2:pretrain -- --visualize /tmp/pt/checkpoint-1.pth  # PNG, no training
//   bazel run //convnextv2:pretrain -- --help
#include <cstdio>

#include "convnextv2/apps/pretrain.h"
#include "convnextv2/apps/visualize.h"
#include "convnextv2/binary_main.h"
#include "convnextv2/run/preemption.h"
#include "convnextv2/util/status_macros.h"

int main(int argc, char** argv) {
  namespace apps = convnextv2::apps;
  return convnextv2::BinaryMain(
      argc, argv, convnextv2::config::Mode::kPretrain, "pretrain",
      [argc, argv](const convnextv2::ExperimentConfig& config,
                   const std::string& command_line) -> absl::StatusOr<int> {
        if (!config.fcmae().visualize().empty()) {
          absl::StatusOr<convnextv2::ExperimentConfig> c = apps::VisualizeConfig(argc, argv);
          CONVNEXTV2_RETURN_IF_ERROR(c);
          absl::StatusOr<std::string> png = apps::VisualizeCheckpoint(*c);
          CONVNEXTV2_RETURN_IF_ERROR(png);
          std::printf("%s\n", png->c_str());
          return 0;
        }
        absl::StatusOr<apps::PretrainResult> result =
            apps::RunPretrain(config, {command_line});
        CONVNEXTV2_RETURN_IF_ERROR(result);
        return result->preempted ? convnextv2::run::kExitRequeue : 0;
      });
}
