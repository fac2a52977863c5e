#include "convnextv2/optim/param_groups.h"

#include "absl/strings/match.h"

namespace convnextv2::optim {

bool SkipsWeightDecay(const std::string& name, const at::Tensor& param,
                      const std::set<std::string>& skip_list) {
  return param.dim() == 1 || absl::EndsWith(name, ".bias") || absl::EndsWith(name, ".gamma") ||
         absl::EndsWith(name, ".beta") || skip_list.count(name) > 0;
}

std::vector<ParamGroup> BuildParamGroups(const torch::OrderedDict<std::string, at::Tensor>& named,
                                         double weight_decay,
                                         const std::set<std::string>& skip_list) {
  ParamGroup decay{"decay", weight_decay, 1.0, {}, {}};
  ParamGroup no_decay{"no_decay", 0.0, 1.0, {}, {}};
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

}  // namespace convnextv2::optim
