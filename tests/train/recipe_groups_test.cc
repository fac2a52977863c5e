// The optimizer and parameter groups TrainingRecipe (train/recipe.h) builds from a config: the
// official get_parameter_groups with layer decay (single and group strategies), written out here,
// and a task's own groups.
#include <gtest/gtest.h>
#include <torch/optim/adam.h>
#include <torch/optim/adamw.h>
#include <torch/optim/sgd.h>

#include <map>
#include <memory>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "convnextv2/optim/optimizer.h"
#include "convnextv2/optim/param_groups.h"
#include "convnextv2/train/recipe.h"
#include "tests/train/recipe_test_util.h"

namespace convnextv2::train {
namespace {

using namespace recipe_test;  // NOLINT(build/namespaces): the shared fixtures

std::vector<std::string> Parts(const std::string& name) { return absl::StrSplit(name, '.'); }
int Int(const std::string& s) {
  int v = -1;
  EXPECT_TRUE(absl::SimpleAtoi(s, &v)) << s;
  return v;
}
int64_t SumDepths(int stages) {
  int64_t s = 0;
  for (int i = 0; i < stages; ++i) s += kDepths[i];
  return s;
}

// optim_factory.get_num_layer_for_convnext_single.
int OfficialLayerIdSingle(const std::string& name) {
  const std::vector<std::string> p = Parts(name);
  if (absl::StartsWith(name, "downsample_layers")) return SumDepths(Int(p[1])) + 1;
  if (absl::StartsWith(name, "stages")) return SumDepths(Int(p[1])) + Int(p[2]) + 1;
  return SumDepths(4) + 1;
}

// optim_factory.get_num_layer_for_convnext (the "group" strategy).
int OfficialLayerIdGroup(const std::string& name) {
  const std::vector<std::string> p = Parts(name);
  if (absl::StartsWith(name, "downsample_layers")) {
    const int stage = Int(p[1]);
    return stage == 0 ? 0 : stage == 3 ? 12 : stage + 1;
  }
  if (absl::StartsWith(name, "stages")) {
    const int stage = Int(p[1]), block = Int(p[2]);
    return stage <= 1 ? stage + 1 : stage == 2 ? 3 + block / 3 : 12;
  }
  return 13;
}

struct OfficialGroup {
  std::string name;
  double weight_decay;
  double lr_scale;
  std::vector<std::string> params;
};

// optim_factory.get_parameter_groups, with main_finetune.py's LayerDecayValueAssigner when
// layer_decay != 1: values[i] = layer_decay ** (num_layers + 1 - i).
std::vector<OfficialGroup> OfficialGroups(models::ConvNeXtV2& model, const ExperimentConfig& c) {
  const double ld = c.optim().layer_decay();
  const bool group_type = c.optim().layer_decay_type() == "group";
  const int num_layers = group_type ? 12 : static_cast<int>(SumDepths(4));
  std::vector<OfficialGroup> groups;
  std::map<std::string, size_t> index;
  for (const auto& item : model->named_parameters()) {
    const std::string& name = item.key();
    const bool no_decay = item.value().dim() == 1 || absl::EndsWith(name, ".bias") ||
                          absl::EndsWith(name, ".gamma") || absl::EndsWith(name, ".beta");
    std::string group = no_decay ? "no_decay" : "decay";
    double scale = 1.0;
    if (ld != 1.0) {
      const int id = group_type ? OfficialLayerIdGroup(name) : OfficialLayerIdSingle(name);
      group = absl::StrCat("layer_", id, "_", group);
      scale = std::pow(ld, num_layers + 1 - id);
    }
    if (index.count(group) == 0) {
      index[group] = groups.size();
      groups.push_back({group, no_decay ? 0.0 : c.optim().weight_decay(), scale, {}});
    }
    groups[index[group]].params.push_back(name);
  }
  return groups;
}


// The groups the recipe made are the official ones, in the official order, and the optimizer
// holds exactly their tensors at their weight decay.
void ExpectOfficialGroups(models::ConvNeXtV2& model, const ExperimentConfig& c,
                          TrainingRecipe& recipe) {
  const std::vector<OfficialGroup> want = OfficialGroups(model, c);
  const std::vector<optim::ParamGroup>& got = recipe.groups();
  ASSERT_EQ(got.size(), want.size());
  ASSERT_EQ(recipe.optimizer().param_groups().size(), want.size());
  const auto named = model->named_parameters();
  for (size_t i = 0; i < want.size(); ++i) {
    SCOPED_TRACE(want[i].name);
    EXPECT_EQ(got[i].name, want[i].name);
    EXPECT_EQ(got[i].param_names, want[i].params);
    EXPECT_DOUBLE_EQ(got[i].weight_decay, want[i].weight_decay);
    EXPECT_NEAR(got[i].lr_scale, want[i].lr_scale, 1e-12 * want[i].lr_scale);
    EXPECT_DOUBLE_EQ(optim::GetWeightDecay(recipe.optimizer(), i), want[i].weight_decay);
    const std::vector<at::Tensor>& held = recipe.optimizer().param_groups()[i].params();
    ASSERT_EQ(held.size(), want[i].params.size());
    for (size_t k = 0; k < held.size(); ++k) {
      EXPECT_TRUE(held[k].is_same(named[want[i].params[k]])) << want[i].params[k];
    }
  }
}

// --- Optimizer and parameter groups -------------------------------------------------------

TEST(RecipeOptimizer, OptKindAndItsOptions) {
  ExperimentConfig c = Config();
  c.mutable_optim()->set_opt_eps(1e-6);
  c.mutable_optim()->add_opt_betas(0.8);
  c.mutable_optim()->add_opt_betas(0.95);
  auto r = Create(c, TinyModel(), 4);
  auto* adamw = dynamic_cast<torch::optim::AdamW*>(&r->optimizer());
  ASSERT_NE(adamw, nullptr);  // the default, as main_finetune.py's
  const auto& ao =
      static_cast<const torch::optim::AdamWOptions&>(adamw->param_groups()[0].options());
  EXPECT_DOUBLE_EQ(ao.eps(), 1e-6);
  EXPECT_DOUBLE_EQ(std::get<0>(ao.betas()), 0.8);
  EXPECT_DOUBLE_EQ(std::get<1>(ao.betas()), 0.95);

  c.mutable_optim()->set_opt("adam");
  r = Create(c, TinyModel(), 4);
  EXPECT_NE(dynamic_cast<torch::optim::Adam*>(&r->optimizer()), nullptr);
  EXPECT_EQ(dynamic_cast<torch::optim::AdamW*>(&r->optimizer()), nullptr);

  for (const bool nesterov : {true, false}) {
    c.mutable_optim()->set_opt(nesterov ? "sgd" : "momentum");
    c.mutable_optim()->set_momentum(0.7);
    r = Create(c, TinyModel(), 4);
    auto* sgd = dynamic_cast<torch::optim::SGD*>(&r->optimizer());
    ASSERT_NE(sgd, nullptr) << c.optim().opt();
    for (auto& g : sgd->param_groups()) {
      const auto& so = static_cast<const torch::optim::SGDOptions&>(g.options());
      EXPECT_EQ(so.nesterov(), nesterov) << c.optim().opt();
      EXPECT_DOUBLE_EQ(so.momentum(), 0.7);
    }
  }
}

TEST(RecipeGroups, DecayAndNoDecayWithoutLayerDecay) {
  ExperimentConfig c = Config();
  c.mutable_optim()->set_weight_decay(0.07);
  models::ConvNeXtV2 model = TinyModel();
  auto r = Create(c, model, 4);
  ExpectOfficialGroups(model, c, *r);
  ASSERT_EQ(r->groups().size(), 2u);
  EXPECT_EQ(r->groups()[0].name, "decay");
  EXPECT_EQ(r->groups()[1].name, "no_decay");
  // GRN's gamma/beta have shape (1, 1, 1, C) but take no weight decay.
  const std::vector<std::string>& nd = r->groups()[1].param_names;
  EXPECT_NE(std::find(nd.begin(), nd.end(), "stages.2.1.grn.gamma"), nd.end());
  EXPECT_NE(std::find(nd.begin(), nd.end(), "head.bias"), nd.end());
}

TEST(RecipeGroups, LayerDecaySingleScalesAndGroups) {
  ExperimentConfig c = Config();
  c.mutable_optim()->set_layer_decay(0.8);
  models::ConvNeXtV2 model = TinyModel();
  auto r = Create(c, model, 4);
  ExpectOfficialGroups(model, c, *r);
  // 5 blocks: the stem is layer 1 (scale 0.8^5), norm and head layer 6 (scale 1).
  EXPECT_EQ(r->groups().front().name, "layer_1_decay");
  EXPECT_NEAR(r->groups().front().lr_scale, std::pow(0.8, 5), 1e-12);
  EXPECT_EQ(r->groups().back().name, "layer_6_decay");  // head.weight comes after norm.*
  EXPECT_DOUBLE_EQ(r->groups().back().lr_scale, 1.0);
}

TEST(RecipeGroups, LayerDecayGroupStrategy) {
  ExperimentConfig c = Config();
  c.mutable_optim()->set_layer_decay(0.9);
  c.mutable_optim()->set_layer_decay_type("group");
  models::ConvNeXtV2 model = TinyModel();
  auto r = Create(c, model, 4);
  ExpectOfficialGroups(model, c, *r);
  EXPECT_EQ(r->groups().front().name, "layer_0_decay");  // the stem
  EXPECT_NEAR(r->groups().front().lr_scale, std::pow(0.9, 13), 1e-12);
}

TEST(RecipeGroups, ATaskSuppliesItsOwnGroups) {
  ExperimentConfig c = Config();
  c.mutable_optim()->set_weight_decay(0.05);
  c.mutable_optim()->set_weight_decay_end(0.25);
  models::ConvNeXtV2 model = TinyModel();
  RecipeOptions options;
  options.groups = [model]() -> absl::StatusOr<std::vector<optim::ParamGroup>> {
    optim::ParamGroup head{"head_only", 0.3, 0.5, -1, {}, {}};
    optim::ParamGroup rest{"rest", 0.0, 1.0, -1, {}, {}};
    for (const auto& item : model->named_parameters()) {
      optim::ParamGroup& g = absl::StartsWith(item.key(), "head.") ? head : rest;
      g.param_names.push_back(item.key());
      g.params.push_back(item.value());
    }
    return std::vector<optim::ParamGroup>{head, rest};
  };
  absl::StatusOr<std::unique_ptr<TrainingRecipe>> r =
      TrainingRecipe::Create(c, model.ptr(), kCpu, 4, 1, options);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ((*r)->groups().size(), 2u);
  EXPECT_EQ((*r)->groups()[0].name, "head_only");
  ASSERT_EQ((*r)->optimizer().param_groups().size(), 2u);
  EXPECT_EQ((*r)->optimizer().param_groups()[0].params().size(), 2u);  // head weight and bias
  (*r)->BeginMicroBatch(1, 2);
  const double lr = OfficialLr(1.5, c, 1e-2);
  EXPECT_NEAR(TorchLr((*r)->optimizer(), 0), 0.5 * lr, 1e-12);
  EXPECT_NEAR(TorchLr((*r)->optimizer(), 1), lr, 1e-12);
  // The weight-decay schedule reaches the group that decays; the other stays at 0.
  const double wd = OfficialCosineScheduler(0.05, 0.25, 3, 4)[4 + 2];
  EXPECT_NEAR(optim::GetWeightDecay((*r)->optimizer(), 0), wd, 1e-12);
  EXPECT_DOUBLE_EQ(optim::GetWeightDecay((*r)->optimizer(), 1), 0.0);
}

}  // namespace
}  // namespace convnextv2::train
