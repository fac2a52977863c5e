// Weight layouts: the names and shapes other code bases give ConvNeXt V2's tensors, detected
// from the names and converted to this model's (the official ones, models/convnextv2.h).
//
//   const WeightLayout& layout = DetectLayout(state);     // "timm", "transformers", ...
//   TensorMap official = layout.to_official(state);
//   TensorMap hf = FromOfficial(TransformersLayout(), official);   // for an export
//
// The registry, first match wins:
//   transformers        convnextv2.embeddings.patch_embeddings, ...encoder.stages.i.layers.j.*,
//                       convnextv2.layernorm, classifier (ConvNextV2ForImageClassification; a
//                       bare ConvNextV2Model's names without "convnextv2." too)
//   timm FCMAE encoder  timm's names without head.norm and head.fc (convnextv2_*.fcmae)
//   timm                stem.0/1, stages.i.downsample.0/1, stages.i.blocks.j.{conv_dw, norm,
//                       mlp.fc1, mlp.grn, mlp.fc2}, head.norm, head.fc; fc1/fc2 are 1x1 convs
//                       (C4, C, 1, 1) for atto..nano, GRN weight/bias are (C)
//   FCMAE sparse        the official pre-training checkpoint (encoder.*, *.kernel; RemapFcmaeKeys)
//   official            downsample_layers.*, stages.i.j.*, norm, head: unchanged
// A new layout is one entry in layouts.cc and its test.
#ifndef CONVNEXTV2_CHECKPOINT_LAYOUTS_H_
#define CONVNEXTV2_CHECKPOINT_LAYOUTS_H_

#include <ATen/core/Tensor.h>

#include <array>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace convnextv2::checkpoint {

using TensorMap = std::map<std::string, at::Tensor>;

// Name prefixes of one layout against the official ones: {"stages.{i}.{j}.norm.",
// "stages.{i}.blocks.{j}.norm."}, where {i} and {j} stand for decimal numbers. A name is renamed
// by the first pair whose prefix it starts with; the rest of the name is kept.
using RenameTable = std::vector<std::pair<std::string, std::string>>;

struct WeightLayout {
  std::string name;
  std::function<bool(const TensorMap&)> detect;
  std::function<TensorMap(const TensorMap&)> to_official;
  RenameTable table;  // empty for layouts that are not a plain renaming
};

const std::vector<WeightLayout>& WeightLayouts();
// The first layout whose detect() accepts `state` (official when none does).
const WeightLayout& DetectLayout(const TensorMap& state);
const WeightLayout& TransformersLayout();

// Renames official names to `layout`'s by its table (shapes unchanged: transformers' shapes are
// the official ones). Names the table does not cover keep their official names.
TensorMap FromOfficial(const WeightLayout& layout, const TensorMap& official);

// The official FCMAE remap (see pretrained.h RemapFcmaeKeys).
TensorMap RemapFcmaeKeys(const TensorMap& state);

// Depths and widths of the four stages of official-named weights; nullopt unless every stage
// has blocks.
struct Architecture {
  std::array<int64_t, 4> depths, dims;
  bool operator==(const Architecture& o) const { return depths == o.depths && dims == o.dims; }
};
std::optional<Architecture> InferArchitecture(const TensorMap& official);
// "convnextv2_atto (depths 2-2-6-2, dims 40-80-160-320)" or "depths ..., dims ..." for an
// unofficial shape.
std::string DescribeArchitecture(const Architecture& a);
// The variant name ("convnextv2_atto") of `a`; empty when none has its shape.
std::string VariantOf(const Architecture& a);

}  // namespace convnextv2::checkpoint

#endif  // CONVNEXTV2_CHECKPOINT_LAYOUTS_H_
