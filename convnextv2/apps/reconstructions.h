// The reconstruction PNGs of FCMAE pre-training: the fixed images and mask that every picture of
// a run shows, so pictures of different steps (and of a checkpoint drawn later with
// `pretrain --visualize`) compare like with like.
//
//   absl::StatusOr<models::FCMAE> model = models::BuildFcmae(config);  // models/fcmae_build.h
//   absl::StatusOr<ReconstructionWriter> writer =
//       ReconstructionWriter::Create(config, *train_set, seed, **model, device);
//   absl::StatusOr<double> loss = writer->Write(**model, out_dir + "/reconstruction-0003.png");
//
// The images are the first fcmae.vis_images of the training set (within train_subset) with the
// evaluation transform (no augmentation); the mask is drawn once from a generator keyed by the
// run's seed, so it is the same in every picture of the run and in every rerun.
#ifndef CONVNEXTV2_APPS_RECONSTRUCTIONS_H_
#define CONVNEXTV2_APPS_RECONSTRUCTIONS_H_

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "convnextv2/apps/reconstruction_grid.h"
#include "convnextv2/data/dataset.h"
#include "convnextv2/models/fcmae.h"
#include "convnextv2/proto/experiment.pb.h"

namespace convnextv2::apps {

class ReconstructionWriter {
 public:
  // `seed` is the run's (train.seed + rank). An error when vis_images is 0 or the images cannot
  // be read.
  static absl::StatusOr<ReconstructionWriter> Create(const ExperimentConfig& config,
                                                     const data::Dataset& train_set,
                                                     uint64_t seed, const models::FCMAEImpl& model,
                                                     c10::Device device);

  // Runs the model in eval mode without autograd on the fixed images and writes the grid PNG
  // (reconstruction_grid.h) to `path` atomically; returns the loss on those images. The
  // model's training mode is restored; no random generator is used.
  absl::StatusOr<double> Write(models::FCMAEImpl& model, const std::string& path) const;

  int64_t num_images() const { return images_.size(0); }

 private:
  ReconstructionWriter() = default;

  at::Tensor images_, mask_;
  GridOptions options_;
};

}  // namespace convnextv2::apps

#endif  // CONVNEXTV2_APPS_RECONSTRUCTIONS_H_
