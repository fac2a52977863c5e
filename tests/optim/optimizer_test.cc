// Optimizers against hand-computed steps, per-group learning rates and weight decay.
#include "convnextv2/optim/optimizer.h"

#include <ATen/ATen.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/csrc/autograd/generated/variable_factories.h>
#include <torch/optim/adamw.h>
#include <torch/optim/sgd.h>
#include <torch/types.h>

#include <cmath>

#include "convnextv2/optim/schedule.h"

namespace convnextv2::optim {
namespace {

// Two groups: a decaying one at scale 0.5 and a non-decaying one at scale 1.
struct Fixture {
  at::Tensor w = torch::tensor({1.0, -2.0, 3.0}, torch::requires_grad());
  at::Tensor b = torch::tensor({0.5, -0.5}, torch::requires_grad());
  std::vector<ParamGroup> groups{{"layer_1_decay", 0.1, 0.5, 1, {"w"}, {w}},
                                 {"layer_2_no_decay", 0.0, 1.0, 2, {"b"}, {b}}};
  void SetGrads(const at::Tensor& gw, const at::Tensor& gb) {
    w.mutable_grad() = gw.clone();
    b.mutable_grad() = gb.clone();
  }
};

ExperimentConfig WithOpt(const std::string& opt) {
  ExperimentConfig c;
  c.mutable_optim()->set_opt(opt);
  c.mutable_optim()->set_opt_eps(1e-6);
  return c;
}

TEST(CreateOptimizer, AdamWStepWithLayerScalesMatchesHandComputation) {
  Fixture f;
  const double lr = 0.01;
  auto opt = CreateOptimizer(WithOpt("adamw"), f.groups, lr);
  ASSERT_TRUE(opt.ok()) << opt.status();
  EXPECT_DOUBLE_EQ(GetLearningRate(**opt, 0), 0.005);
  EXPECT_DOUBLE_EQ(GetLearningRate(**opt, 1), 0.01);
  const at::Tensor gw = torch::tensor({0.2, -0.4, 1e-3}), gb = torch::tensor({3.0, -1.0});
  const at::Tensor w0 = f.w.detach().clone(), b0 = f.b.detach().clone();
  f.SetGrads(gw, gb);
  (*opt)->step();
  // First AdamW step: p <- p * (1 - lr_g * wd) - lr_g * g / (|g| + eps) (bias corrections cancel).
  const double lw = lr * 0.5;
  const at::Tensor ew = w0 * (1 - lw * 0.1) - lw * gw / (gw.abs() + 1e-6);
  const at::Tensor eb = b0 - lr * gb / (gb.abs() + 1e-6);
  EXPECT_TRUE(at::allclose(f.w, ew, 1e-6, 1e-7)) << f.w << ew;
  EXPECT_TRUE(at::allclose(f.b, eb, 1e-6, 1e-7)) << f.b << eb;
}

TEST(CreateOptimizer, AdamAddsL2ToTheGradient) {
  Fixture f;
  auto opt = CreateOptimizer(WithOpt("adam"), f.groups, 0.01);
  ASSERT_TRUE(opt.ok());
  const at::Tensor gw = torch::tensor({0.2, -0.4, 1e-3});
  const at::Tensor w0 = f.w.detach().clone();
  f.SetGrads(gw, torch::zeros({2}));
  (*opt)->step();
  const at::Tensor g = gw + 0.1 * w0;
  EXPECT_TRUE(at::allclose(f.w, w0 - 0.005 * g / (g.abs() + 1e-6), 1e-6, 1e-7));
}

TEST(CreateOptimizer, SgdNesterovAndMomentumTwoSteps) {
  for (const std::string opt_name : {"sgd", "momentum"}) {
    SCOPED_TRACE(opt_name);
    Fixture f;
    ExperimentConfig c = WithOpt(opt_name);
    c.mutable_optim()->set_momentum(0.9);
    auto opt = CreateOptimizer(c, f.groups, 0.1);
    ASSERT_TRUE(opt.ok());
    const at::Tensor gb = torch::tensor({1.0, -2.0});
    const at::Tensor b0 = f.b.detach().clone();
    f.SetGrads(torch::zeros({3}), gb);
    (*opt)->step();
    f.SetGrads(torch::zeros({3}), gb);
    (*opt)->step();
    // Constant gradient g: buffers g, then 1.9 g. Nesterov steps with g + 0.9 * buf.
    const double k = opt_name == "sgd" ? (1 + 0.9) + (1 + 0.9 * 1.9) : 1 + 1.9;
    EXPECT_TRUE(at::allclose(f.b, b0 - 0.1 * k * gb, 1e-6, 1e-7)) << f.b;
  }
}

TEST(CreateOptimizer, OptionsReachTheOptimizer) {
  Fixture f;
  ExperimentConfig c = WithOpt("adamw");
  c.mutable_optim()->set_opt_eps(1e-7);
  c.mutable_optim()->add_opt_betas(0.8);
  c.mutable_optim()->add_opt_betas(0.95);
  c.mutable_optim()->set_opt("AdamW");
  auto adamw = CreateOptimizer(c, f.groups, 0.02);
  ASSERT_TRUE(adamw.ok()) << adamw.status();
  ASSERT_NE(dynamic_cast<torch::optim::AdamW*>(adamw->get()), nullptr);
  ASSERT_EQ((*adamw)->param_groups().size(), 2u);
  for (size_t g = 0; g < 2; ++g) {
    const auto& o =
        static_cast<const torch::optim::AdamWOptions&>((*adamw)->param_groups()[g].options());
    EXPECT_DOUBLE_EQ(o.eps(), 1e-7) << g;
    EXPECT_EQ(std::get<0>(o.betas()), 0.8) << g;
    EXPECT_EQ(std::get<1>(o.betas()), 0.95) << g;
    EXPECT_DOUBLE_EQ(o.lr(), 0.02 * f.groups[g].lr_scale) << g;        // lr times the scale
    EXPECT_DOUBLE_EQ(o.weight_decay(), f.groups[g].weight_decay) << g;  // the group's decay
    EXPECT_FALSE(o.amsgrad());
  }
  EXPECT_TRUE((*adamw)->param_groups()[0].params()[0].is_same(f.w));
  EXPECT_TRUE((*adamw)->param_groups()[1].params()[0].is_same(f.b));

  // timm's "sgd" and "nesterov" are Nesterov, "momentum" is not; names in any case (opt.lower()).
  for (const std::string name : {"sgd", "nesterov", "Momentum"}) {
    SCOPED_TRACE(name);
    ExperimentConfig s = WithOpt(name);
    s.mutable_optim()->set_momentum(0.7);
    auto sgd = CreateOptimizer(s, f.groups, 0.1);
    ASSERT_TRUE(sgd.ok()) << sgd.status();
    ASSERT_NE(dynamic_cast<torch::optim::SGD*>(sgd->get()), nullptr);
    const auto& o =
        static_cast<const torch::optim::SGDOptions&>((*sgd)->param_groups()[0].options());
    EXPECT_DOUBLE_EQ(o.momentum(), 0.7);
    EXPECT_EQ(o.nesterov(), name != "Momentum");
    EXPECT_DOUBLE_EQ(o.lr(), 0.05);
    EXPECT_DOUBLE_EQ(o.weight_decay(), 0.1);
  }

  ExperimentConfig bad = WithOpt("sgd");
  bad.mutable_optim()->set_momentum(0);
  absl::StatusOr<std::unique_ptr<torch::optim::Optimizer>> refused =
      CreateOptimizer(bad, f.groups, 0.1);  // Nesterov needs momentum
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused.status().message(), testing::HasSubstr("optim.momentum > 0"));
  bad.mutable_optim()->set_opt("lamb");
  refused = CreateOptimizer(bad, f.groups, 0.1);
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused.status().message(), testing::HasSubstr("'lamb' is not one of"));
}

TEST(Schedules, EachGroupGetsScheduledLrTimesItsScaleAndDecayingGroupsTheWd) {
  Fixture f;
  auto opt = CreateOptimizer(WithOpt("adamw"), f.groups, 4e-3);
  ASSERT_TRUE(opt.ok());
  const LrSchedule lr(4e-3, 1e-6, 2, 10, 100);
  for (int64_t step : {0, 100, 200, 600, 999}) {
    SetLearningRates(**opt, f.groups, lr.At(step));
    EXPECT_DOUBLE_EQ(GetLearningRate(**opt, 0), lr.At(step) * 0.5) << step;
    EXPECT_DOUBLE_EQ(GetLearningRate(**opt, 1), lr.At(step)) << step;
    EXPECT_DOUBLE_EQ(LearningRateRange(**opt).first, lr.At(step) * 0.5);
    EXPECT_DOUBLE_EQ(LearningRateRange(**opt).second, lr.At(step));
  }
  EXPECT_DOUBLE_EQ(GetLearningRate(**opt, 0), 0.5 * (1e-6 + (4e-3 - 1e-6) * 0.5 *
                                                                (1 + std::cos(M_PI * 7.99 / 8))));
  EXPECT_DOUBLE_EQ(GetWeightDecay(**opt, 0), 0.1);
  SetWeightDecay(**opt, f.groups, 0.3);
  EXPECT_DOUBLE_EQ(GetWeightDecay(**opt, 0), 0.3);
  EXPECT_DOUBLE_EQ(GetWeightDecay(**opt, 1), 0.0);
}

}  // namespace
}  // namespace convnextv2::optim
