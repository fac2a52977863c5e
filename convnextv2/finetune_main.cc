// finetune: supervised training of ConvNeXt V2 (main_finetune.py of the official code).
//
//   bazel run //convnextv2:finetune                         # built-in default: Fashion-MNIST
//   bazel run //convnextv2:finetune -- --config=configs/x.pbtxt --set optim.lr=1e-3
//   bazel run //convnextv2:finetune -- --model convnextv2_atto --batch_size 32 ...  (official)
//   bazel run //convnextv2:finetune -- --help
#include "convnextv2/apps/finetune.h"
#include "convnextv2/binary_main.h"
#include "convnextv2/run/preemption.h"

int main(int argc, char** argv) {
  return convnextv2::BinaryMain(
      argc, argv, convnextv2::config::Mode::kFinetune, "finetune",
      [](const convnextv2::ExperimentConfig& config, const std::string& command_line) {
        absl::StatusOr<convnextv2::apps::FinetuneResult> result =
            convnextv2::apps::RunFinetune(config, {command_line});
        if (!result.ok()) return absl::StatusOr<int>(result.status());
        return absl::StatusOr<int>(result->preempted ? convnextv2::run::kExitRequeue : 0);
      });
}
