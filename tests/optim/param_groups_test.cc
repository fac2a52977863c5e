// Weight-decay membership and layer-decay ids/scales of every parameter, against hand-written
// golden tables of the official rules (optim_factory.py of ConvNeXt V2).
#include "convnextv2/optim/param_groups.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "convnextv2/models/fcmae.h"
#include "convnextv2/models/registry.h"
#include <torch/csrc/autograd/generated/variable_factories.h>

namespace convnextv2::optim {
namespace {

using ::testing::HasSubstr;

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

// Hand-written layer ids: downsample layers, the blocks of each stage, norm/head.
struct Golden {
  const char* model;
  const char* type;
  int num_layers;
  std::vector<int> downsample;
  std::vector<std::vector<int>> blocks;
  int top;
};

const std::vector<Golden>& Goldens() {
  static const std::vector<Golden> kGoldens = {
      {"convnextv2_atto", "single", 12, {1, 3, 5, 11}, {{1, 2}, {3, 4}, {5, 6, 7, 8, 9, 10}, {11, 12}}, 13},
      {"convnextv2_atto", "group", 12, {0, 2, 3, 12}, {{1, 1}, {2, 2}, {3, 3, 3, 4, 4, 4}, {12, 12}}, 13},
      {"convnextv2_base", "single", 36, {1, 4, 7, 34},
       {{1, 2, 3}, {4, 5, 6},
        {7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29,
         30, 31, 32, 33},
        {34, 35, 36}},
       37},
      {"convnextv2_base", "group", 12, {0, 2, 3, 12},
       {{1, 1, 1}, {2, 2, 2},
        {3, 3, 3, 4, 4, 4, 5, 5, 5, 6, 6, 6, 7, 7, 7, 8, 8, 8, 9, 9, 9, 10, 10, 10, 11, 11, 11},
        {12, 12, 12}},
       13},
  };
  return kGoldens;
}

int ExpectedId(const Golden& g, const std::string& name) {
  const std::vector<std::string> parts = absl::StrSplit(name, '.');
  int a = -1, b = -1;
  if (parts[0] == "downsample_layers" && absl::SimpleAtoi(parts[1], &a)) return g.downsample.at(a);
  if (parts[0] == "stages" && absl::SimpleAtoi(parts[1], &a) && absl::SimpleAtoi(parts[2], &b)) {
    return g.blocks.at(a).at(b);
  }
  if (parts[0] == "norm" || parts[0] == "head") return g.top;
  ADD_FAILURE() << "unexpected parameter " << name;
  return -100;
}

// Decayed: conv and linear weights (the stem/downsample convs, dwconv, pwconv1/2, head).
bool ExpectDecay(const std::string& name) {
  if (!absl::EndsWith(name, ".weight")) return false;
  if (name == "norm.weight" || absl::StrContains(name, ".norm.")) return false;
  if (absl::StartsWith(name, "downsample_layers.0.")) return name == "downsample_layers.0.0.weight";
  if (absl::StartsWith(name, "downsample_layers.")) return absl::EndsWith(name, ".1.weight");
  return true;
}

TEST(LayerDecay, GoldenIdsScalesAndWeightDecayOfEveryParameter) {
  const double kDecay = 0.8, kWd = 0.05;
  for (const Golden& g : Goldens()) {
    SCOPED_TRACE(std::string(g.model) + " " + g.type);
    // The variant's depths (hence its parameter names and ranks) with narrow stages: building
    // the real base takes a minute on a loaded machine, and widths play no part here.
    absl::StatusOr<models::ConvNeXtV2Options> variant = models::VariantOptions(g.model);
    ASSERT_TRUE(variant.ok());
    models::ConvNeXtV2 model(variant->dims({8, 16, 32, 64}).num_classes(10));
    LayerDecayOptions options{kDecay, LayerDecayTypes().Of(g.type), model->options.depths()};
    EXPECT_EQ(NumLayers(options), g.num_layers);
    absl::StatusOr<std::vector<ParamGroup>> groups =
        BuildLayerDecayGroups(model->named_parameters(), kWd, options);
    ASSERT_TRUE(groups.ok()) << groups.status();
    std::map<std::string, int> seen;
    for (const ParamGroup& group : *groups) {
      const int id = ExpectedId(g, group.param_names.at(0));
      for (const std::string& name : group.param_names) {
        ++seen[name];
        const int expected = ExpectedId(g, name);
        ASSERT_EQ(group.layer_id, expected) << name;
        EXPECT_NEAR(group.lr_scale, std::pow(kDecay, g.num_layers + 1 - expected), 1e-15) << name;
        const bool decay = ExpectDecay(name);
        EXPECT_DOUBLE_EQ(group.weight_decay, decay ? kWd : 0.0) << name;
        EXPECT_EQ(group.name,
                  "layer_" + std::to_string(id) + (decay ? "_decay" : "_no_decay")) << name;
      }
      EXPECT_EQ(group.params.size(), group.param_names.size());
    }
    // Every parameter exactly once.
    const auto named = model->named_parameters();
    EXPECT_EQ(seen.size(), named.size());
    for (const auto& [name, count] : seen) EXPECT_EQ(count, 1) << name;
  }
}

TEST(LayerDecay, SpotChecksAndGroupOrder) {
  models::ConvNeXtV2 atto = *models::CreateConvNeXtV2("convnextv2_atto", 10);
  LayerDecayOptions single{0.9, LayerDecayType::kSingle, {2, 2, 6, 2}};
  EXPECT_EQ(*LayerId("stages.2.5.grn.gamma", single), 10);
  EXPECT_EQ(*LayerId("head.bias", single), 13);
  EXPECT_EQ(*LayerId("downsample_layers.3.1.weight", single), 11);
  const std::vector<double> scales = LayerScales(single);
  ASSERT_EQ(scales.size(), 14u);
  EXPECT_NEAR(scales[1], std::pow(0.9, 12), 1e-15);  // the stem: 0.9^12 = 0.2824...
  EXPECT_DOUBLE_EQ(scales[13], 1.0);
  auto groups = BuildLayerDecayGroups(atto->named_parameters(), 0.3, single);
  ASSERT_TRUE(groups.ok());
  // Order of first appearance: the stem conv weight, its bias, then the stem norm (no_decay).
  EXPECT_EQ((*groups)[0].name, "layer_1_decay");
  EXPECT_EQ((*groups)[1].name, "layer_1_no_decay");
  EXPECT_EQ((*groups)[0].param_names[0], "downsample_layers.0.0.weight");
  // 13 layer ids x {decay, no_decay}.
  EXPECT_EQ(groups->size(), 26u);
  LayerDecayOptions group{0.6, LayerDecayType::kGroup, {3, 3, 27, 3}};
  EXPECT_EQ(*LayerId("stages.2.26.pwconv2.weight", group), 11);
  EXPECT_EQ(*LayerId("downsample_layers.0.1.bias", group), 0);
  EXPECT_NEAR(LayerScales(group)[0], std::pow(0.6, 13), 1e-15);
}

TEST(LayerDecay, UnplacedParameterIsAnError) {
  LayerDecayOptions single{0.9, LayerDecayType::kSingle, {2, 2, 6, 2}};
  EXPECT_FALSE(LayerId("stages.2.6.dwconv.weight", single).ok());  // block out of range
  EXPECT_FALSE(LayerId("downsample_layers.4.0.weight", single).ok());
  EXPECT_FALSE(LayerId("stages.x.0.weight", single).ok());
  EXPECT_FALSE(LayerId("head", single).ok());
  torch::OrderedDict<std::string, at::Tensor> named;
  named.insert("head.weight", torch::randn({3, 3}, torch::requires_grad()));
  named.insert("mask_token", torch::randn({1, 3}, torch::requires_grad()));
  named.insert("frozen.weight", torch::randn({3, 3}));  // frozen: left out, no error
  auto groups = BuildLayerDecayGroups(named, 0.05, single);
  ASSERT_FALSE(groups.ok());
  EXPECT_THAT(std::string(groups.status().message()), HasSubstr("mask_token"));
  EXPECT_THAT(std::string(groups.status().message()), ::testing::Not(HasSubstr("frozen")));
}

TEST(LayerDecay, GroupStrategyWarnsOffBase) {
  EXPECT_EQ(GroupStrategyWarning({0.6, LayerDecayType::kGroup, {3, 3, 27, 3}}), "");
  EXPECT_EQ(GroupStrategyWarning({0.9, LayerDecayType::kSingle, {2, 2, 6, 2}}), "");
  EXPECT_THAT(GroupStrategyWarning({0.9, LayerDecayType::kGroup, {2, 2, 6, 2}}),
              HasSubstr("27 blocks"));
}

TEST(LayerDecay, JsonTableAsTheOfficialScriptPrintsIt) {
  ParamGroup a{"layer_1_decay", 0.05, 0.5, 1, {"x.weight", "y.weight"}, {}};
  ParamGroup b{"layer_1_no_decay", 0.0, 0.5, 1, {"x.bias"}, {}};
  EXPECT_EQ(ParamGroupsJson({a, b}),
            "{\n  \"layer_1_decay\": {\n    \"weight_decay\": 0.05,\n    \"params\": [\n"
            "      \"x.weight\",\n      \"y.weight\"\n    ],\n    \"lr_scale\": 0.5\n  },\n"
            "  \"layer_1_no_decay\": {\n    \"weight_decay\": 0,\n    \"params\": [\n"
            "      \"x.bias\"\n    ],\n    \"lr_scale\": 0.5\n  }\n}");
}

// A tiny FCMAE for PretrainParamGroups (timm's add_weight_decay, as main_pretrain.py uses it).
models::FCMAEOptions Tiny() {
  return models::FCMAEOptions().img_size(64).depths({1, 1, 2, 1}).dims({8, 16, 16, 24})
      .decoder_embed_dim(16).mask_ratio(0.5).norm_pix_loss(true);
}

TEST(PretrainParamGroupsTest, DecaysAllButOneDimensionalAndBiases) {
  models::FCMAE fcmae(Tiny());
  const auto groups = PretrainParamGroups(fcmae->named_parameters(), 0.05);
  ASSERT_EQ(groups.size(), 2u);
  EXPECT_EQ(groups[0].weight_decay, 0.0);
  EXPECT_EQ(groups[1].weight_decay, 0.05);
  const std::set<std::string> no_decay(groups[0].param_names.begin(),
                                       groups[0].param_names.end());
  const std::set<std::string> decay(groups[1].param_names.begin(), groups[1].param_names.end());
  EXPECT_TRUE(no_decay.count("encoder.stages.0.0.dwconv.bias"));
  EXPECT_TRUE(no_decay.count("encoder.stages.0.0.norm.weight"));
  EXPECT_TRUE(decay.count("encoder.stages.0.0.grn.gamma"));  // (1, 1, 1, C): decayed, as timm
  EXPECT_TRUE(decay.count("mask_token"));
  EXPECT_TRUE(decay.count("pred.weight"));
  EXPECT_EQ(no_decay.size() + decay.size(), fcmae->named_parameters().size());
}

}  // namespace
}  // namespace convnextv2::optim
