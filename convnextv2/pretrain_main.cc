// pretrain: FCMAE pre-training of ConvNeXt V2 (main_pretrain.py of the official code), and
// `pretrain visualize`, the reconstruction picture of one of its checkpoints.
//
//   bazel run //convnextv2:pretrain                   # built-in default: atto, Fashion-MNIST 128 px
//   bazel run //convnextv2:pretrain -- --output_dir /tmp/pt --epochs 2
//   bazel run //convnextv2:pretrain -- --model convnextv2_base --mask_ratio 0.6 ...  (official)
//   bazel run //convnextv2:pretrain -- visualize /tmp/pt/checkpoint-1.pth   # PNG, no training
//   bazel run //convnextv2:pretrain -- --help
//
// Drawing a checkpoint trains nothing and takes its config from the checkpoint, so it is a
// subcommand rather than a field of the run's config. The older spelling, the field
// fcmae.visualize (`pretrain --visualize CHECKPOINT`), still works and says it is deprecated.
#include <cstdio>
#include <cstring>
#include <vector>

#include "convnextv2/apps/pretrain.h"
#include "convnextv2/apps/visualize.h"
#include "convnextv2/binary_main.h"
#include "convnextv2/run/preemption.h"
#include "convnextv2/util/status_macros.h"

namespace {

namespace apps = convnextv2::apps;

constexpr char kVisualizeUsage[] =
    "usage: pretrain visualize CHECKPOINT [--vis_output PNG] [--vis_images N] "
    "[--<field> VALUE]...\n"
    "  Writes the reconstruction PNG of a pre-training checkpoint (default: next to it,\n"
    "  <name>-reconstruction.png), prints its path and exits; trains nothing. The base config\n"
    "  is the one stored in the checkpoint; flags override single fields (--config is refused).\n"
    "  pretrain --help lists the fields.\n";

// The command line `argv` as the visualize code reads it: fcmae.visualize names the checkpoint.
absl::StatusOr<int> DrawReconstruction(int argc, char** argv) {
  absl::StatusOr<convnextv2::ExperimentConfig> c = apps::VisualizeConfig(argc, argv);
  CONVNEXTV2_RETURN_IF_ERROR(c);
  absl::StatusOr<std::string> png = apps::VisualizeCheckpoint(*c);
  CONVNEXTV2_RETURN_IF_ERROR(png);
  std::printf("%s\n", png->c_str());
  return 0;
}

// `pretrain visualize CHECKPOINT [flags]`, run as `pretrain --visualize CHECKPOINT [flags]`.
int Visualize(int argc, char** argv) {
  if (argc < 3 || argv[2][0] == '-') {
    const bool help = argc >= 3 && (std::strcmp(argv[2], "--help") == 0 ||
                                    std::strcmp(argv[2], "-h") == 0);
    std::fputs(kVisualizeUsage, help ? stdout : stderr);
    return help ? 0 : 2;
  }
  static char kFlag[] = "--visualize";
  std::vector<char*> args = {argv[0], kFlag};
  args.insert(args.end(), argv + 2, argv + argc);
  const int n = static_cast<int>(args.size());
  char** p = args.data();
  return convnextv2::BinaryMain(
      n, p, convnextv2::config::Mode::kPretrain, "pretrain",
      [n, p](const convnextv2::ExperimentConfig&, const std::string&) {
        return DrawReconstruction(n, p);
      });
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && std::strcmp(argv[1], "visualize") == 0) return Visualize(argc, argv);
  return convnextv2::BinaryMain(
      argc, argv, convnextv2::config::Mode::kPretrain, "pretrain",
      [argc, argv](const convnextv2::ExperimentConfig& config,
                   const std::string& command_line) -> absl::StatusOr<int> {
        if (!config.fcmae().visualize().empty()) {
          std::fprintf(stderr,
                       "pretrain: fcmae.visualize (--visualize CHECKPOINT) is deprecated; "
                       "write `pretrain visualize CHECKPOINT [flags]`\n");
          return DrawReconstruction(argc, argv);
        }
        absl::StatusOr<apps::PretrainResult> result =
            apps::RunPretrain(config, {command_line});
        CONVNEXTV2_RETURN_IF_ERROR(result);
        return result->preempted ? convnextv2::run::kExitRequeue : 0;
      });
}
