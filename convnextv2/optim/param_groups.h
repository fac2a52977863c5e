// Parameter groups: which parameters get weight decay, and each group's lr scale (layer decay);
// the groups of both tasks (FinetuneParamGroups, PretrainParamGroups).
//
//   std::vector<ParamGroup> groups = BuildParamGroups(model->named_parameters(), 0.05);
//   // groups[0].name == "decay", groups[1].name == "no_decay"
//
//   LayerDecayOptions ld{.layer_decay = 0.9, .type = LayerDecayType::kSingle,
//                        .depths = {2, 2, 6, 2}};
//   absl::StatusOr<std::vector<ParamGroup>> g =
//       BuildLayerDecayGroups(model->named_parameters(), 0.05, ld);
//   // "layer_1_decay", "layer_1_no_decay", ..., "layer_13_no_decay"; lr_scale 0.9^(13 - id)
//
// Weight decay: none for 1-D parameters, names ending in ".bias", ".gamma" or ".beta" (GRN's,
// shape (1, 1, 1, C)), and names in `skip_list`, as the official optim_factory's
// get_parameter_groups (main_finetune.py). Frozen parameters are left out. (Pre-training uses
// timm's add_weight_decay instead, which checks only 1-D and ".bias", so it decays GRN
// gamma/beta and the mask token: see PretrainParamGroups.)
//
// Layer ids, as the official optim_factory (ConvNeXt V2):
//   single: downsample_layers.i -> sum(depths[:i]) + 1; stages.i.j -> sum(depths[:i]) + j + 1;
//           norm.* and head.* -> sum(depths) + 1.                 num_layers = sum(depths)
//   group:  downsample_layers.0 -> 0, .1/.2 -> i + 1, .3 -> 12; stages.0/1 -> i + 1,
//           stages.2.j -> 3 + j / 3, stages.3 -> 12; norm.* and head.* -> 13.  num_layers = 12
//   lr_scale(id) = layer_decay ^ (num_layers + 1 - id).
// The group strategy was designed for 27 blocks in stage 2 (base and larger); on other depths it
// keeps the official numbers (and GroupStrategyWarning says so). A trainable parameter that none
// of these rules names (not under downsample_layers/stages/norm/head, or an index out of range)
// is an error rather than a silent group with scale 1.
#ifndef CONVNEXTV2_OPTIM_PARAM_GROUPS_H_
#define CONVNEXTV2_OPTIM_PARAM_GROUPS_H_

#include <ATen/core/Tensor.h>
#include <torch/ordered_dict.h>

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "convnextv2/optim/layer_decay_type.h"
#include "convnextv2/proto/experiment.pb.h"

namespace convnextv2::optim {

struct ParamGroup {
  std::string name;
  double weight_decay = 0.0;
  double lr_scale = 1.0;
  int layer_id = -1;  // -1 without layer decay
  std::vector<std::string> param_names;
  std::vector<at::Tensor> params;
};

bool SkipsWeightDecay(const std::string& name, const at::Tensor& param,
                      const std::set<std::string>& skip_list = {});

// Two groups, "decay" and "no_decay" (lr_scale 1), empty ones dropped.
std::vector<ParamGroup> BuildParamGroups(const torch::OrderedDict<std::string, at::Tensor>& named,
                                         double weight_decay,
                                         const std::set<std::string>& skip_list = {});

struct LayerDecayOptions {
  double layer_decay = 1.0;
  LayerDecayType type = LayerDecayType::kSingle;
  std::vector<int64_t> depths;  // blocks per stage (4 values)
};

// The number of layers scales are counted over: sum(depths) for single, 12 for group.
int NumLayers(const LayerDecayOptions& options);

// The layer id of a parameter name, or InvalidArgument when no rule places it.
absl::StatusOr<int> LayerId(absl::string_view name, const LayerDecayOptions& options);

// layer_decay ^ (NumLayers + 1 - id) for id = 0 .. NumLayers + 1 (the official "Assigned values").
std::vector<double> LayerScales(const LayerDecayOptions& options);

// Non-empty when the group strategy is used on a model it was not designed for.
std::string GroupStrategyWarning(const LayerDecayOptions& options);

// Groups "layer_<id>_decay" / "layer_<id>_no_decay" in order of first appearance (as the official
// script builds its dict). Errors name every parameter no rule places.
absl::StatusOr<std::vector<ParamGroup>> BuildLayerDecayGroups(
    const torch::OrderedDict<std::string, at::Tensor>& named, double weight_decay,
    const LayerDecayOptions& options, const std::set<std::string>& skip_list = {});

// The table the official script prints as "Param groups = ...": a JSON object of group name ->
// {"weight_decay", "params" (names), "lr_scale"}, indented by 2.
std::string ParamGroupsJson(const std::vector<ParamGroup>& groups);

// Fine-tuning's parameter groups (main_finetune.py): layer-wise lr decay over a ConvNeXt V2 of
// `depths` when optim.layer_decay != 1 (logging the assigned scales as the official script
// does), else decay / no_decay; logs the group table ("Param groups = ...").
absl::StatusOr<std::vector<ParamGroup>> FinetuneParamGroups(
    const ExperimentConfig& config, const torch::OrderedDict<std::string, at::Tensor>& named,
    const std::vector<int64_t>& depths);

// Pre-training's: timm 0.3.2's add_weight_decay, which main_pretrain.py uses: groups "no_decay" (1-D tensors
// and names ending in ".bias") and "decay" (the rest, GRN gamma/beta and mask_token included).
std::vector<ParamGroup> PretrainParamGroups(
    const torch::OrderedDict<std::string, at::Tensor>& named, double weight_decay);

}  // namespace convnextv2::optim

#endif  // CONVNEXTV2_OPTIM_PARAM_GROUPS_H_
