// The reconstruction PNGs of FCMAE pre-training: the model a pretrain config describes, and the
// fixed images and mask that every picture of a run shows, so pictures of different steps (and
// of a checkpoint drawn later with `pretrain --visualize`) compare like with like.
//
//   absl::StatusOr<models::FCMAE> model = BuildFcmae(config);
//   absl::StatusOr<ReconstructionWriter> writer =
//       ReconstructionWriter::Create(config, *train_set, seed, **model, device);
//   absl::StatusOr<double> loss = writer->Write(**model, out_dir + "/reconstruction-0003.png");
//
// The images are the first fcmae.vis_images of the training set (within train_subset) with the
// evaluation transform (no augmentation); the mask is drawn once from a generator keyed by the
// run's seed, so it is the same in every picture of the run and in every rerun.
#ifndef CONVNEXTV2_ENGINE_RECONSTRUCTIONS_H_
#define CONVNEXTV2_ENGINE_RECONSTRUCTIONS_H_

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "convnextv2/data/dataset.h"
#include "convnextv2/engine/reconstruction_grid.h"
#include "convnextv2/models/fcmae.h"
#include "convnextv2/proto/experiment.pb.h"

namespace convnextv2::engine {

// FCMAE of model.model with the config's fcmae settings, initialized as the official one.
absl::StatusOr<models::FCMAE> BuildFcmae(const ExperimentConfig& config);

// A CPU generator keyed by (seed, a, b) for masks.
at::Generator MaskGenerator(uint64_t seed, uint64_t a, uint64_t b);

// The training masks of a batch, (N, L) on the CPU: sample k's mask is drawn from
// MaskGenerator(seed, epoch, indices[k]), keyed by its dataset index. A sample therefore gets the
// same mask whatever rank, batch or position it lands in, whatever the thread count, and after
// a resume: N ranks with batch b reproduce one process with batch N*b. `seed` is train.seed
// (the same on every rank).
at::Tensor SampleMasks(const models::FCMAEImpl& model, uint64_t seed, int64_t epoch,
                       const std::vector<int64_t>& indices);

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

}  // namespace convnextv2::engine

#endif  // CONVNEXTV2_ENGINE_RECONSTRUCTIONS_H_
