// Weight-decay membership of every kind of parameter.
#include "convnextv2/optim/param_groups.h"

#include <gtest/gtest.h>

#include "convnextv2/models/registry.h"

namespace convnextv2::optim {
namespace {

TEST(ParamGroups, NoDecayForOneDimBiasGammaBeta) {
  models::ConvNeXtV2 model = *models::CreateConvNeXtV2("convnextv2_atto", 10);
  const std::vector<ParamGroup> groups = BuildParamGroups(model->named_parameters(), 0.05);
  ASSERT_EQ(groups.size(), 2u);
  EXPECT_EQ(groups[0].name, "decay");
  EXPECT_DOUBLE_EQ(groups[0].weight_decay, 0.05);
  EXPECT_EQ(groups[1].name, "no_decay");
  EXPECT_DOUBLE_EQ(groups[1].weight_decay, 0.0);
  auto in = [](const ParamGroup& g, const std::string& name) {
    return std::find(g.param_names.begin(), g.param_names.end(), name) != g.param_names.end();
  };
  for (const char* name : {"stages.0.0.grn.gamma", "stages.0.0.grn.beta", "head.bias",
                           "norm.weight", "downsample_layers.0.1.weight",
                           "stages.3.1.dwconv.bias"}) {
    EXPECT_TRUE(in(groups[1], name)) << name;
  }
  for (const char* name : {"head.weight", "stages.0.0.dwconv.weight", "stages.2.5.pwconv1.weight",
                           "downsample_layers.0.0.weight", "downsample_layers.3.1.weight"}) {
    EXPECT_TRUE(in(groups[0], name)) << name;
  }
  // Every parameter in exactly one group.
  EXPECT_EQ(groups[0].params.size() + groups[1].params.size(), 140u);
  // 4-D and 2-D weights decay: 4 downsample convs + 12 x (dwconv, pwconv1, pwconv2) + head.
  EXPECT_EQ(groups[0].params.size(), 4u + 12 * 3 + 1);
}

TEST(ParamGroups, SkipListAndFrozenParameters) {
  models::ConvNeXtV2 model = *models::CreateConvNeXtV2("convnextv2_atto", 10);
  model->head->weight.set_requires_grad(false);
  const auto groups = BuildParamGroups(model->named_parameters(), 0.05, {"stages.0.0.dwconv.weight"});
  size_t total = 0;
  for (const auto& g : groups) {
    total += g.params.size();
    for (const auto& n : g.param_names) EXPECT_NE(n, "head.weight");
  }
  EXPECT_EQ(total, 139u);
  EXPECT_NE(std::find(groups[1].param_names.begin(), groups[1].param_names.end(),
                      "stages.0.0.dwconv.weight"),
            groups[1].param_names.end());
}

}  // namespace
}  // namespace convnextv2::optim
