// Weights handed from pre-training to fine-tuning: a torch::serialize archive of named tensors.
//
//   absl::Status s = SaveNamedTensors(fcmae->named_parameters(), "/run/fcmae_weights.pt");
//   absl::StatusOr<at::Tensor> t = ReadNamedTensor("/run/fcmae_weights.pt",
//                                                  "encoder.stages.0.0.dwconv.weight");
//
// Keys are state-dict names ("encoder.downsample_layers.0.0.weight", "mask_token", ...), each
// written as one top-level tensor of a torch::serialize::OutputArchive (what torch::load's
// InputArchive reads back with read(key, tensor)). The file is written to a temporary name and
// renamed, so a crash never leaves a truncated file under the final name.
#ifndef CONVNEXTV2_CHECKPOINT_NAMED_TENSORS_H_
#define CONVNEXTV2_CHECKPOINT_NAMED_TENSORS_H_

#include <ATen/core/Tensor.h>
#include <torch/ordered_dict.h>

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace convnextv2::checkpoint {

absl::Status SaveNamedTensors(const torch::OrderedDict<std::string, at::Tensor>& tensors,
                              const std::string& path);

// The tensor `key` of an archive written by SaveNamedTensors; NotFound names the key and file,
// DataLoss a file that is not such an archive.
absl::StatusOr<at::Tensor> ReadNamedTensor(const std::string& path, const std::string& key);

}  // namespace convnextv2::checkpoint

#endif  // CONVNEXTV2_CHECKPOINT_NAMED_TENSORS_H_
