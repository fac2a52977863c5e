// Parameter groups: which parameters get weight decay, and each group's lr scale.
//
//   std::vector<ParamGroup> groups = BuildParamGroups(model->named_parameters(), 0.05);
//   // groups[0].name == "decay", groups[1].name == "no_decay"
//
// As the official optim_factory: no weight decay for 1-D parameters, names ending in ".bias",
// ".gamma" or ".beta" (GRN), and names in `skip_list`. Frozen parameters are left out.
#ifndef CONVNEXTV2_OPTIM_PARAM_GROUPS_H_
#define CONVNEXTV2_OPTIM_PARAM_GROUPS_H_

#include <ATen/core/Tensor.h>
#include <torch/ordered_dict.h>

#include <set>
#include <string>
#include <vector>

namespace convnextv2::optim {

struct ParamGroup {
  std::string name;
  double weight_decay = 0.0;
  double lr_scale = 1.0;
  std::vector<std::string> param_names;
  std::vector<at::Tensor> params;
};

bool SkipsWeightDecay(const std::string& name, const at::Tensor& param,
                      const std::set<std::string>& skip_list = {});

std::vector<ParamGroup> BuildParamGroups(const torch::OrderedDict<std::string, at::Tensor>& named,
                                         double weight_decay,
                                         const std::set<std::string>& skip_list = {});

}  // namespace convnextv2::optim

#endif  // CONVNEXTV2_OPTIM_PARAM_GROUPS_H_
