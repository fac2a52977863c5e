#include "convnextv2/apps/visualize.h"

#include <ATen/ATen.h>
#include <glog/logging.h>

#include <filesystem>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "convnextv2/apps/reconstructions.h"
#include "convnextv2/checkpoint/file.h"
#include "convnextv2/checkpoint/state.h"
#include "convnextv2/config/command_line.h"
#include "convnextv2/config/config.h"
#include "convnextv2/data/dataset.h"
#include "convnextv2/models/fcmae_build.h"
#include "convnextv2/run/run_checkpoints.h"
#include "convnextv2/run/runtime.h"
#include "convnextv2/util/files.h"
#include "convnextv2/util/status_macros.h"

namespace convnextv2::apps {

std::string DefaultVisOutput(const std::string& checkpoint) {
  absl::string_view stem = checkpoint;
  absl::ConsumeSuffix(&stem, ".pth");
  return absl::StrCat(stem, "-reconstruction.png");
}

absl::StatusOr<ExperimentConfig> VisualizeConfig(int argc, const char* const* argv) {
  for (int i = 1; i < argc; ++i) {
    const absl::string_view arg = argv[i];
    if (arg == "--config" || arg == "-config" || absl::StartsWith(arg, "--config=") ||
        absl::StartsWith(arg, "-config=")) {
      return absl::InvalidArgumentError(
          "--config cannot be used with --visualize: the base config is the one stored in the "
          "checkpoint; override single fields with flags (e.g. --vis_images 16)");
    }
  }
  // Only the assignments of this command line matter; BinaryMain has already refused unknown
  // flags, so anything else is for gflags.
  absl::StatusOr<config::CommandLine> cl = config::ParseCommandLine(
      argc, argv, config::Mode::kPretrain, config::BuiltinDefault{"", ""},
      [](absl::string_view) { return true; });
  CONVNEXTV2_RETURN_IF_ERROR(cl);
  const std::string& path = cl->config.fcmae().visualize();
  if (path.empty()) return absl::InvalidArgumentError("fcmae.visualize: no checkpoint given");
  absl::StatusOr<checkpoint::CheckpointHeader> header = checkpoint::ReadHeader(path);
  CONVNEXTV2_RETURN_IF_ERROR(header);
  if (header->config_text().empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, " holds no run config (written by an old version?)"));
  }
  absl::StatusOr<ExperimentConfig> config =
      config::ParseText(header->config_text(), absl::StrCat("the config stored in ", path));
  CONVNEXTV2_RETURN_IF_ERROR(config);
  for (const std::string& assignment : cl->assignments) {
    CONVNEXTV2_RETURN_IF_ERROR(config::ApplyOverride(assignment, &*config));
  }
  config::ResolvePaths(cl->working_dir, &*config);
  CONVNEXTV2_RETURN_IF_ERROR(config::Validate(*config, config::Mode::kPretrain));
  // CheckPaths does not look at the data of a --visualize command line (BinaryMain checks that
  // one before the stored config is known); check this one's.
  ExperimentConfig data_only = *config;
  data_only.mutable_fcmae()->clear_visualize();
  CONVNEXTV2_RETURN_IF_ERROR(config::CheckPaths(data_only, config::Mode::kPretrain));
  return config;
}

absl::StatusOr<std::string> VisualizeCheckpoint(const ExperimentConfig& config) {
  const std::string& path = config.fcmae().visualize();
  absl::StatusOr<run::Runtime> runtime = run::SetUpRuntime(config);
  CONVNEXTV2_RETURN_IF_ERROR(runtime);
  absl::StatusOr<checkpoint::Checkpoint> ckpt = checkpoint::ReadCheckpoint(path);
  CONVNEXTV2_RETURN_IF_ERROR(ckpt);
  const std::string expected = run::FcmaeModelName(config.model().model());
  if (ckpt->header.model() != expected) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, " is a ", ckpt->header.model(), " checkpoint, not ", expected,
        absl::StartsWith(ckpt->header.model(), "fcmae_")
            ? " (set --model to its variant)"
            : ": --visualize draws pre-training (FCMAE) checkpoints only"));
  }
  absl::StatusOr<models::FCMAE> model = models::BuildFcmae(config);
  CONVNEXTV2_RETURN_IF_ERROR(model);
  (*model)->to(runtime->device);
  CONVNEXTV2_RETURN_IF_ERROR(
      checkpoint::LoadModule(*ckpt, "model.", **model, /*strict=*/true, path));
  absl::StatusOr<std::unique_ptr<data::Dataset>> train_set =
      data::OpenDataset(config, data::Split::kTrain, data::Labels::kUnused);
  CONVNEXTV2_RETURN_IF_ERROR(train_set);
  absl::StatusOr<ReconstructionWriter> writer = ReconstructionWriter::Create(
      config, **train_set, runtime->seed, **model, runtime->device);
  CONVNEXTV2_RETURN_IF_ERROR(writer);
  const std::string out =
      config.fcmae().vis_output().empty() ? DefaultVisOutput(path) : config.fcmae().vis_output();
  const std::string dir = std::filesystem::path(out).parent_path().string();
  if (!dir.empty()) {
    CONVNEXTV2_RETURN_IF_ERROR(util::MakeDirs(dir));
  }
  absl::StatusOr<double> loss = writer->Write(**model, out);
  CONVNEXTV2_RETURN_IF_ERROR(loss);
  LOG(INFO) << "reconstructions of " << writer->num_images() << " images by " << path
            << " (epoch " << ckpt->header.epoch() << ", step " << ckpt->header.global_step()
            << ", loss " << absl::StrFormat("%.4f", *loss) << "): " << out;
  return out;
}

}  // namespace convnextv2::apps
