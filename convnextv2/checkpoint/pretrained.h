// Weights from elsewhere: initialize a model for fine-tuning (the lenient path) from
//   * a convnextv2 checkpoint (model., model_ema. ... tensors),
//   * a PyTorch torch.save file in the zip format (a dict with a 'model' state dict, as the
//     official ConvNeXt V2 releases and main_pretrain.py/main_finetune.py write),
//   * a torch::serialize::OutputArchive of named tensors (what `pretrain` writes for now),
// with the official FCMAE remap (sparse encoder names and layouts -> the dense model).
//
//   absl::StatusOr<PretrainedReport> r =
//       InitFromPretrained("fcmae.pt", "model|module", /*prefix=*/"", *model, /*reinit_head=*/true);
//   // r->load.missing / r->load.unexpected for the log
//
//   ExportForPyTorch(*model, "model.pth");   // torch.load(...)["model"] in Python
#ifndef CONVNEXTV2_CHECKPOINT_PRETRAINED_H_
#define CONVNEXTV2_CHECKPOINT_PRETRAINED_H_

#include <torch/nn/module.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "convnextv2/checkpoint/state.h"

namespace convnextv2::checkpoint {

struct StateDictFile {
  TensorMap tensors;
  std::string format;  // "convnextv2 checkpoint", "PyTorch zip", "OutputArchive"
  std::string key;     // the model_key entry used ("" for a bare state dict)
};

// The state dict under the first of `model_key` ('|'-separated) present in the file, or the
// whole file when it is a bare name -> tensor dict. Errors name the file and the keys found.
absl::StatusOr<StateDictFile> ReadStateDict(const std::string& path,
                                            absl::string_view model_key);

// The official remap_checkpoint_keys (FCMAE sparse encoder -> dense ConvNeXtV2): strips
// "encoder.", turns "<m>.kernel" (k*k, C) into depthwise "<m>.weight" (C, 1, k, k) and
// (k*k, Cin, Cout) into a conv "<m>.weight" (Cout, Cin, k, k), drops ".ln"/".linear" name
// parts, reshapes GRN (1, C) to (1, 1, 1, C) and flattens 2-D biases. Dense tensors that
// already have the model's layout pass through unchanged.
TensorMap RemapFcmaeKeys(const TensorMap& state);

struct PretrainedReport {
  std::string format, key;
  std::vector<std::string> dropped;  // decoder/mask_token/proj/pred and a mis-shaped head
  LoadReport load;
  bool head_reinitialized = false;
};

// The official --finetune initialization: read, apply `model_prefix`, drop the pre-training
// decoder entries and a head whose shape differs from the model's, remap, load leniently, and
// with `reinit_head` re-initialize the head (truncated normal std 2e-5, zero bias). An error
// when nothing at all matches the model (the wrong file, or the wrong model_prefix).
absl::StatusOr<PretrainedReport> InitFromPretrained(const std::string& path,
                                                    absl::string_view model_key,
                                                    absl::string_view model_prefix,
                                                    torch::nn::Module& model, bool reinit_head);

// Writes the module's state dict as {'model': {name: tensor}} in PyTorch's zip format
// (torch.load reads it; the names are the official ones). Atomic.
absl::Status ExportForPyTorch(const torch::nn::Module& module, const std::string& path);

}  // namespace convnextv2::checkpoint

#endif  // CONVNEXTV2_CHECKPOINT_PRETRAINED_H_
