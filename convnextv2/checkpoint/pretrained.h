// Weights from elsewhere: initialize a model for fine-tuning (the lenient path), evaluation,
// prediction or export from what users have:
//   * a convnextv2 checkpoint (model., model_ema. ... tensors; class names in its header),
//   * a PyTorch torch.save file in the zip format (.pth/.bin: a dict with a 'model' state dict,
//     as the official releases and main_pretrain.py/main_finetune.py write, or a bare state
//     dict, as timm's and transformers' pytorch_model.bin),
//   * a .safetensors file (timm's and transformers' model.safetensors),
//   * a Hugging Face model folder (config.json + model.safetensors or pytorch_model.bin; its
//     depths/hidden_sizes must be the model's, its layer_norm_eps is the final norm's, its
//     id2label the class names),
//   * a torch::serialize::OutputArchive of named tensors (what `pretrain` writes for now),
// in any layout of layouts.h (official, FCMAE sparse, timm, timm FCMAE encoder, transformers),
// detected from the names and converted to the model's.
//
//   absl::StatusOr<PretrainedReport> r =
//       InitFromPretrained("fcmae.pt", "model|module", /*prefix=*/"", *model, /*reinit_head=*/true);
//   for (const std::string& line : DescribeLoad(path, *r)) LOG(INFO) << line;
//
//   absl::StatusOr<InferenceModel> m = LoadInferenceModel("timm_atto.safetensors", "", "model");
//   m->model->forward(images);  m->class_names   // predict, --eval, export
//
//   ExportForPyTorch(*model, "model.pth");   // torch.load(...)["model"] in Python
#ifndef CONVNEXTV2_CHECKPOINT_PRETRAINED_H_
#define CONVNEXTV2_CHECKPOINT_PRETRAINED_H_

#include <torch/nn/module.h>

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "convnextv2/checkpoint/hf_folder.h"
#include "convnextv2/checkpoint/layouts.h"
#include "convnextv2/checkpoint/state.h"
#include "convnextv2/models/convnextv2.h"

namespace convnextv2::checkpoint {

struct StateDictFile {
  TensorMap tensors;
  std::string format;  // "convnextv2 checkpoint", "PyTorch zip", "safetensors", "OutputArchive"
  std::string key;     // the model_key entry used ("" for a bare state dict)
  std::vector<std::string> class_names;  // a convnextv2 checkpoint's header.class_names
};

// The state dict under the first of `model_key` ('|'-separated) present in the file, or the
// whole file when it is a bare name -> tensor dict. Errors name the file and the keys found.
absl::StatusOr<StateDictFile> ReadStateDict(const std::string& path,
                                            absl::string_view model_key);

// The official remap_checkpoint_keys (FCMAE sparse encoder -> dense ConvNeXtV2), declared in
// layouts.h: strips "encoder.", turns "<m>.kernel" (k*k, C) into depthwise "<m>.weight"
// (C, 1, k, k) and (k*k, Cin, Cout) into a conv "<m>.weight" (Cout, Cin, k, k), drops
// ".ln"/".linear" name parts, reshapes GRN (1, C) to (1, 1, 1, C) and flattens 2-D biases.
// Dense tensors that already have the model's layout pass through unchanged.

// The weights of a file or model folder in the official names and shapes.
struct OfficialWeights {
  TensorMap tensors;
  std::string format, key, layout;
  std::vector<std::string> dropped;      // pre-training-only entries (decoder, mask_token ...)
  std::vector<std::string> class_names;  // id2label or a checkpoint's class_names
  std::optional<HfConfig> hf_config;     // for a model folder
};

// Reads `path` (file or folder, see above), keeps the names under `model_prefix` (removing
// it), drops pre-training-only entries and converts the detected layout.
absl::StatusOr<OfficialWeights> ReadOfficialWeights(const std::string& path,
                                                    absl::string_view model_key,
                                                    absl::string_view model_prefix);

struct PretrainedReport {
  std::string format, key, layout;
  std::vector<std::string> dropped;  // decoder/mask_token/proj/pred and a mis-shaped head
  LoadReport load;
  bool head_reinitialized = false;
  std::vector<std::string> class_names;    // empty when the file carries none
  std::optional<double> final_norm_eps;    // set on the model's final norm (config.json)
};

// The log lines of a load, as the official script prints them: the file, its format and
// layout, removed keys, missing and unexpected keys.
std::vector<std::string> DescribeLoad(const std::string& path, const PretrainedReport& r);

// The official --finetune initialization: read, apply `model_prefix`, drop the pre-training
// decoder entries and a head whose shape differs from the model's, remap, load leniently, and
// with `reinit_head` re-initialize the head (truncated normal std 2e-5, zero bias). An error
// when nothing at all matches the model (the wrong file, or the wrong model_prefix), and when
// the weights (or a folder's config.json) are of another variant, naming both.
absl::StatusOr<PretrainedReport> InitFromPretrained(const std::string& path,
                                                    absl::string_view model_key,
                                                    absl::string_view model_prefix,
                                                    torch::nn::Module& model, bool reinit_head);

// Loads converted weights into `model` as InitFromPretrained does (`what` names them in errors).
absl::StatusOr<PretrainedReport> LoadOfficialWeights(OfficialWeights weights,
                                                     const std::string& what,
                                                     torch::nn::Module& model, bool reinit_head);

// A model built and loaded for inference (--eval, predict, export) from any of the files above:
// the variant from the weights' shapes (`model_name`, when not empty, must agree), the number of
// classes from the head; every weight must load. `model_key` picks the weights of a convnextv2
// checkpoint ("model" or "model_ema"). In eval() mode.
struct InferenceModel {
  models::ConvNeXtV2 model{nullptr};
  std::string variant;
  std::vector<std::string> class_names;  // empty when the file carries none
  PretrainedReport report;
};
absl::StatusOr<InferenceModel> LoadInferenceModel(const std::string& path,
                                                  absl::string_view model_name,
                                                  absl::string_view model_key);

// Writes the module's state dict as {'model': {name: tensor}} in PyTorch's zip format
// (torch.load reads it; the names are the official ones). Atomic.
absl::Status ExportForPyTorch(const torch::nn::Module& module, const std::string& path);

}  // namespace convnextv2::checkpoint

#endif  // CONVNEXTV2_CHECKPOINT_PRETRAINED_H_
