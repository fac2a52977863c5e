#include "convnextv2/optim/param_groups.h"

#include <glog/logging.h>

#include <cmath>
#include <map>
#include <numeric>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace convnextv2::optim {
namespace {

// "prefix.<a>.<b>..." -> a, b (as many as asked); false when absent or not integers.
bool Indices(const std::vector<absl::string_view>& parts, size_t count, std::vector<int>* out) {
  if (parts.size() < count + 2) return false;  // indices plus at least one more name part
  out->clear();
  for (size_t i = 1; i <= count; ++i) {
    int v;
    if (!absl::SimpleAtoi(parts[i], &v) || v < 0) return false;
    out->push_back(v);
  }
  return true;
}

int SumFirst(const std::vector<int64_t>& depths, int n) {
  return static_cast<int>(std::accumulate(depths.begin(), depths.begin() + n, int64_t{0}));
}

}  // namespace

bool SkipsWeightDecay(const std::string& name, const at::Tensor& param,
                      const std::set<std::string>& skip_list) {
  return param.dim() == 1 || absl::EndsWith(name, ".bias") || absl::EndsWith(name, ".gamma") ||
         absl::EndsWith(name, ".beta") || skip_list.count(name) > 0;
}

std::vector<ParamGroup> BuildParamGroups(const torch::OrderedDict<std::string, at::Tensor>& named,
                                         double weight_decay,
                                         const std::set<std::string>& skip_list) {
  ParamGroup decay{"decay", weight_decay, 1.0, -1, {}, {}};
  ParamGroup no_decay{"no_decay", 0.0, 1.0, -1, {}, {}};
  for (const auto& item : named) {
    if (!item.value().requires_grad()) continue;
    ParamGroup& g = SkipsWeightDecay(item.key(), item.value(), skip_list) ? no_decay : decay;
    g.param_names.push_back(item.key());
    g.params.push_back(item.value());
  }
  std::vector<ParamGroup> groups;
  for (ParamGroup* g : {&decay, &no_decay}) {
    if (!g->params.empty()) groups.push_back(std::move(*g));
  }
  return groups;
}

int NumLayers(const LayerDecayOptions& options) {
  if (options.type == LayerDecayType::kGroup) return 12;
  return SumFirst(options.depths, static_cast<int>(options.depths.size()));
}

absl::StatusOr<int> LayerId(absl::string_view name, const LayerDecayOptions& options) {
  const std::vector<int64_t>& depths = options.depths;
  if (depths.size() != 4) {
    return absl::InvalidArgumentError(
        absl::StrCat("layer decay needs the 4 stage depths, got ", depths.size()));
  }
  const bool group = options.type == LayerDecayType::kGroup;
  const std::vector<absl::string_view> parts = absl::StrSplit(name, '.');
  std::vector<int> idx;
  auto unplaced = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("parameter '", name, "' ", why));
  };
  if (parts[0] == "downsample_layers") {
    if (!Indices(parts, 1, &idx) || idx[0] > 3) {
      return unplaced("is not under downsample_layers.<0..3>");
    }
    const int i = idx[0];
    if (!group) return SumFirst(depths, i) + 1;
    if (i == 0) return 0;
    if (i == 3) return 12;
    return i + 1;
  }
  if (parts[0] == "stages") {
    if (!Indices(parts, 2, &idx) || idx[0] > 3 || idx[1] >= depths[idx[0]]) {
      return unplaced(absl::StrCat("is not under stages.<stage>.<block> with depths [",
                                   absl::StrJoin(depths, ", "), "]"));
    }
    const int i = idx[0], j = idx[1];
    if (!group) return SumFirst(depths, i) + j + 1;
    if (i <= 1) return i + 1;
    if (i == 2) return 3 + j / 3;
    return 12;
  }
  // The official rule sends "anything else" to the top; only the final norm and the head exist.
  if ((parts[0] == "norm" || parts[0] == "head") && parts.size() == 2) {
    return NumLayers(options) + 1;
  }
  return unplaced(
      "matches no layer-decay rule (downsample_layers.*, stages.*, norm.*, head.*)");
}

std::vector<double> LayerScales(const LayerDecayOptions& options) {
  const int n = NumLayers(options);
  std::vector<double> scales;
  for (int id = 0; id <= n + 1; ++id) scales.push_back(std::pow(options.layer_decay, n + 1 - id));
  return scales;
}

std::string GroupStrategyWarning(const LayerDecayOptions& options) {
  if (options.type != LayerDecayType::kGroup || options.depths.size() != 4 ||
      options.depths[2] == 27) {
    return "";
  }
  return absl::StrCat(
      "layer_decay_type 'group' assumes 27 blocks in stage 3 (base, large, huge); this model has ",
      options.depths[2], ", so its blocks fall into layer ids 3..", 3 + (options.depths[2] - 1) / 3,
      " and ids up to 11 stay unused (the official numbers are kept; 'single' may suit it "
      "better)");
}

absl::StatusOr<std::vector<ParamGroup>> BuildLayerDecayGroups(
    const torch::OrderedDict<std::string, at::Tensor>& named, double weight_decay,
    const LayerDecayOptions& options, const std::set<std::string>& skip_list) {
  const std::vector<double> scales = LayerScales(options);
  std::vector<ParamGroup> groups;
  std::map<std::string, size_t> index;
  std::vector<std::string> errors;
  for (const auto& item : named) {
    if (!item.value().requires_grad()) continue;
    absl::StatusOr<int> id = LayerId(item.key(), options);
    if (!id.ok()) {
      errors.emplace_back(id.status().message());
      continue;
    }
    const bool no_decay = SkipsWeightDecay(item.key(), item.value(), skip_list);
    const std::string name = absl::StrCat("layer_", *id, no_decay ? "_no_decay" : "_decay");
    auto [it, inserted] = index.emplace(name, groups.size());
    if (inserted) {
      groups.push_back(ParamGroup{name, no_decay ? 0.0 : weight_decay, scales.at(*id), *id, {}, {}});
    }
    groups[it->second].param_names.push_back(item.key());
    groups[it->second].params.push_back(item.value());
  }
  if (!errors.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "layer decay (", LayerDecayTypes().Name(options.type), "): ", absl::StrJoin(errors, "; ")));
  }
  return groups;
}

std::string ParamGroupsJson(const std::vector<ParamGroup>& groups) {
  std::string out = "{";
  for (size_t g = 0; g < groups.size(); ++g) {
    const ParamGroup& group = groups[g];
    absl::StrAppendFormat(&out, "%s\n  \"%s\": {\n    \"weight_decay\": %.10g,\n    \"params\": [",
                          g ? "," : "", group.name, group.weight_decay);
    for (size_t i = 0; i < group.param_names.size(); ++i) {
      absl::StrAppend(&out, i ? "," : "", "\n      \"", group.param_names[i], "\"");
    }
    absl::StrAppendFormat(&out, "\n    ],\n    \"lr_scale\": %.17g\n  }", group.lr_scale);
  }
  absl::StrAppend(&out, groups.empty() ? "}" : "\n}");
  return out;
}

std::vector<ParamGroup> PretrainParamGroups(
    const torch::OrderedDict<std::string, at::Tensor>& named, double weight_decay) {
  ParamGroup decay{"decay", weight_decay, 1.0, {}, {}};
  ParamGroup no_decay{"no_decay", 0.0, 1.0, {}, {}};
  for (const auto& item : named) {
    if (!item.value().requires_grad()) continue;
    const std::string& name = item.key();
    const bool bias = name.size() >= 5 && name.compare(name.size() - 5, 5, ".bias") == 0;
    ParamGroup& g = (item.value().dim() == 1 || bias) ? no_decay : decay;
    g.param_names.push_back(name);
    g.params.push_back(item.value());
  }
  return {no_decay, decay};
}

absl::StatusOr<std::vector<ParamGroup>> FinetuneParamGroups(
    const ExperimentConfig& config, const torch::OrderedDict<std::string, at::Tensor>& named,
    const std::vector<int64_t>& depths) {
  const OptimConfig& o = config.optim();
  std::vector<ParamGroup> groups;
  if (o.layer_decay() != 1.0) {
    LayerDecayOptions ld{o.layer_decay(), LayerDecayTypes().Of(o.layer_decay_type()), depths};
    if (std::string warning = GroupStrategyWarning(ld); !warning.empty()) {
      LOG(WARNING) << warning;
    }
    LOG(INFO) << "Assigned values = [" << absl::StrJoin(LayerScales(ld), ", ") << "]";
    absl::StatusOr<std::vector<ParamGroup>> layered =
        BuildLayerDecayGroups(named, o.weight_decay(), ld);
    if (!layered.ok()) return layered.status();
    groups = *std::move(layered);
  } else {
    groups = BuildParamGroups(named, o.weight_decay());
  }
  LOG(INFO) << "Param groups = " << ParamGroupsJson(groups);
  return groups;
}

}  // namespace convnextv2::optim
