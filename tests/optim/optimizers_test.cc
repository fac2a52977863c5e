// The optimizer registry (official names, timm's lower-casing) and optim.* / schedule.*
// validation, without libtorch.
#include "convnextv2/optim/optimizers.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "absl/strings/ascii.h"

namespace convnextv2::optim {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::vector<std::string> Errors(const ExperimentConfig& c, bool pretrain) {
  config::Checks checks(pretrain);
  CheckOptimConfig(c, checks);
  return checks.errors();
}

TEST(FindOptimizer, OfficialNamesComparedInLowerCaseAsTimm) {
  std::set<absl::string_view> names;
  for (const OptimizerEntry* e : RegisteredOptimizers()) {
    EXPECT_EQ(std::string(e->name), absl::AsciiStrToLower(e->name));
    EXPECT_TRUE(names.insert(e->name).second) << "registered twice: " << e->name;
  }
  absl::StatusOr<const OptimizerEntry*> adamw = FindOptimizer("AdamW");
  ASSERT_TRUE(adamw.ok()) << adamw.status();
  EXPECT_EQ((*adamw)->algorithm, Algorithm::kAdamW);
  // timm: sgd and nesterov are Nesterov SGD, momentum is classic momentum.
  for (const char* name : {"sgd", "nesterov", "SGD"}) {
    absl::StatusOr<const OptimizerEntry*> e = FindOptimizer(name);
    ASSERT_TRUE(e.ok()) << name;
    EXPECT_EQ((*e)->algorithm, Algorithm::kSgd);
    EXPECT_TRUE((*e)->nesterov) << name;
  }
  EXPECT_FALSE((*FindOptimizer("momentum"))->nesterov);
  EXPECT_EQ((*FindOptimizer("adam"))->algorithm, Algorithm::kAdam);
}

TEST(FindOptimizer, UnknownNameListsTheRegisteredOnes) {
  absl::StatusOr<const OptimizerEntry*> e = FindOptimizer("lamb");
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(e.status().message()),
              HasSubstr("'lamb' is not one of: adamw, adam, sgd, nesterov, momentum"));
}

TEST(CheckOptimConfig, DefaultsPassBothBinaries) {
  EXPECT_THAT(Errors(ExperimentConfig(), /*pretrain=*/false), ElementsAre());
  EXPECT_THAT(Errors(ExperimentConfig(), /*pretrain=*/true), ElementsAre());
}

TEST(CheckOptimConfig, EachOptimizersOwnCheckAndTheCommonOnes) {
  ExperimentConfig c;
  c.mutable_optim()->set_opt("nesterov");
  c.mutable_optim()->set_momentum(0);
  c.mutable_optim()->set_opt_eps(0);
  c.mutable_schedule()->set_min_lr(-1);
  EXPECT_THAT(Errors(c, false),
              ElementsAre(HasSubstr("optim.momentum: 0 must be positive for opt nesterov"),
                          "optim.opt_eps: 0 must be positive",
                          "schedule.min_lr: -1 must be >= 0"));
  c.mutable_optim()->set_opt("momentum");  // classic momentum may be 0
  EXPECT_THAT(Errors(c, false), ElementsAre("optim.opt_eps: 0 must be positive",
                                            "schedule.min_lr: -1 must be >= 0"));
  c.mutable_optim()->set_opt("rmsprop");
  EXPECT_THAT(Errors(c, false)[0], HasSubstr("optim.opt: 'rmsprop' is not one of"));
}

TEST(CheckOptimConfig, PretrainIsAdamWWithoutClippingOrLayerDecay) {
  ExperimentConfig c;
  c.mutable_optim()->set_opt("ADAMW");
  EXPECT_THAT(Errors(c, true), ElementsAre());
  c.mutable_optim()->set_opt("sgd");
  c.mutable_optim()->set_clip_grad(1.0);
  c.mutable_optim()->set_layer_decay(0.9);
  c.mutable_optim()->set_weight_decay_end(0.1);
  EXPECT_THAT(Errors(c, true),
              ElementsAre("optim.opt: 'sgd' cannot be used: pretrain uses AdamW",
                          "optim.clip_grad: pretrain does not clip gradients",
                          HasSubstr("optim.layer_decay: 0.9 cannot be used in pretrain"),
                          "optim.weight_decay_end is not supported by this build yet"));
  EXPECT_THAT(Errors(c, false), ElementsAre());  // all fine for fine-tuning
}

}  // namespace
}  // namespace convnextv2::optim
