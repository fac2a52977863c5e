// `pretrain visualize CHECKPOINT`: the reconstruction PNG of a pre-training checkpoint, drawn
// on demand without training (pretrain_main.cc runs it as `pretrain --visualize CHECKPOINT`, the
// deprecated spelling, which sets fcmae.visualize).
//
//   pretrain visualize /runs/fcmae/checkpoint-41.pth         # -> checkpoint-41-reconstruction.png
//   pretrain visualize /runs/fcmae/checkpoint-41.pth --vis_output /tmp/r.png --vis_images 16
//
//   absl::StatusOr<ExperimentConfig> c = VisualizeConfig(argc, argv);
//   absl::StatusOr<std::string> png = VisualizeCheckpoint(*c);
//
// The picture is the one the run itself draws (reconstructions.h): the same images, the same
// mask, the same seed, so for an end-of-epoch checkpoint-<e>.pth it is the run's
// reconstruction-<e>.png, and drawing it again gives the same PNG.
#ifndef CONVNEXTV2_APPS_VISUALIZE_H_
#define CONVNEXTV2_APPS_VISUALIZE_H_

#include <string>

#include "absl/status/statusor.h"
#include "convnextv2/proto/experiment.pb.h"

namespace convnextv2::apps {

// The config of a `pretrain --visualize CKPT [flags]` command line: the run config stored in the
// checkpoint (its model, fcmae settings, data and seed), with the command line's flags applied
// over it and relative paths resolved against the user's directory, validated. --config is
// refused (the checkpoint's config is the base).
absl::StatusOr<ExperimentConfig> VisualizeConfig(int argc, const char* const* argv);

// Loads fcmae.visualize (a pre-training checkpoint of model.model, strictly) and writes its
// reconstruction grid of fcmae.vis_images images to fcmae.vis_output, or DefaultVisOutput().
// Returns the path written.
absl::StatusOr<std::string> VisualizeCheckpoint(const ExperimentConfig& config);

// "/runs/x/checkpoint-41.pth" -> "/runs/x/checkpoint-41-reconstruction.png".
std::string DefaultVisOutput(const std::string& checkpoint);

}  // namespace convnextv2::apps

#endif  // CONVNEXTV2_APPS_VISUALIZE_H_
