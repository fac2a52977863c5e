// Hugging Face model folders for ConvNeXt V2: config.json + model.safetensors (or
// pytorch_model.bin), as transformers' save_pretrained writes and from_pretrained reads.
//
//   absl::StatusOr<HfConfig> c = ReadHfConfig("/models/convnextv2-atto");   // config.json
//   absl::StatusOr<std::string> w = HfWeightsFile("/models/convnextv2-atto");
//
//   absl::Status s = WriteHfFolder("/out/atto-hf", {{2, 2, 6, 2}, {40, 80, 160, 320}},
//                                  transformers_named_tensors, {"cat", "dog"});
//
// WriteHfFolder fills a temporary folder beside the target and renames it into place, so the
// target is either absent or complete; it refuses a target that exists.
#ifndef CONVNEXTV2_CHECKPOINT_HF_FOLDER_H_
#define CONVNEXTV2_CHECKPOINT_HF_FOLDER_H_

#include <ATen/core/Tensor.h>

#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "convnextv2/checkpoint/layouts.h"

namespace convnextv2::checkpoint {

struct HfConfig {
  std::string path;  // the config.json read
  Architecture architecture;
  // The final LayerNorm's epsilon (transformers' default 1e-12; the other norms use 1e-6).
  double layer_norm_eps = 1e-12;
  // id2label by class index; empty when config.json has none.
  std::vector<std::string> class_names;
};

// True for a directory holding config.json.
bool IsHfFolder(const std::string& path);

// Errors name config.json and the field: not JSON, model_type other than convnextv2, depths or
// hidden_sizes missing or not four numbers.
absl::StatusOr<HfConfig> ReadHfConfig(const std::string& dir);

// dir/model.safetensors, else dir/pytorch_model.bin; an error naming the folder when neither.
absl::StatusOr<std::string> HfWeightsFile(const std::string& dir);

// config.json as transformers writes it for ConvNextV2ForImageClassification: model_type,
// depths, hidden_sizes, num_labels, id2label/label2id (LABEL_i where `class_names` is empty),
// layer_norm_eps 1e-6 (what this model's final norm uses).
std::string HfConfigJson(const Architecture& a, int64_t num_labels,
                         const std::vector<std::string>& class_names);

// `tensors` in transformers' names (FromOfficial(TransformersLayout(), ...)).
absl::Status WriteHfFolder(const std::string& dir, const Architecture& a,
                           const std::map<std::string, at::Tensor>& tensors,
                           const std::vector<std::string>& class_names);

// Renames the filled folder `tmp` to `dir` unless `dir` exists (then removes `tmp`): the one
// step that makes a folder export visible.
absl::Status PublishFolder(const std::string& tmp, const std::string& dir);

}  // namespace convnextv2::checkpoint

#endif  // CONVNEXTV2_CHECKPOINT_HF_FOLDER_H_
