// The FCMAE a pre-training config describes, and the keyed masks of its training batches.
//
//   absl::StatusOr<FCMAE> model = BuildFcmae(config);
//   at::Tensor mask = SampleMasks(**model, config.train().seed(), epoch, batch.indices);
//
// Kept apart from fcmae.h so the module itself needs neither the experiment proto nor the
// data package's keyed seeds.
#ifndef CONVNEXTV2_MODELS_FCMAE_BUILD_H_
#define CONVNEXTV2_MODELS_FCMAE_BUILD_H_

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "convnextv2/models/fcmae.h"
#include "convnextv2/proto/experiment.pb.h"

namespace convnextv2::models {

// FCMAE of model.model with the config's fcmae settings, initialized as the official one.
absl::StatusOr<FCMAE> BuildFcmae(const ExperimentConfig& config);

// A CPU generator keyed by (seed, a, b) for masks.
at::Generator MaskGenerator(uint64_t seed, uint64_t a, uint64_t b);

// The training masks of a batch, (N, L) on the CPU: sample k's mask is drawn from
// MaskGenerator(seed, epoch, indices[k]), keyed by its dataset index. A sample therefore gets the
// same mask whatever rank, batch or position it lands in, whatever the thread count, and after
// a resume: N ranks with batch b reproduce one process with batch N*b. `seed` is train.seed
// (the same on every rank).
at::Tensor SampleMasks(const FCMAEImpl& model, uint64_t seed, int64_t epoch,
                       const std::vector<int64_t>& indices);

}  // namespace convnextv2::models

#endif  // CONVNEXTV2_MODELS_FCMAE_BUILD_H_
