// model.* and fcmae.* validation, without libtorch.
#include "convnextv2/models/config_checks.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

namespace convnextv2::models {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::vector<std::string> Errors(const ExperimentConfig& c, bool pretrain) {
  config::Checks checks(pretrain);
  CheckModelConfig(c, checks);
  return checks.errors();
}

TEST(CheckModelConfig, DefaultsPassBothBinaries) {
  EXPECT_THAT(Errors(ExperimentConfig(), false), ElementsAre());
  EXPECT_THAT(Errors(ExperimentConfig(), true), ElementsAre());
}

TEST(CheckModelConfig, ModelByOfficialNameAndSizes) {
  ExperimentConfig c;
  c.mutable_model()->set_model("convnextv2_mega");
  c.mutable_model()->set_input_size(16);
  c.mutable_model()->set_nb_classes(0);
  EXPECT_THAT(Errors(c, false),
              ElementsAre(HasSubstr("model.model: unknown model 'convnextv2_mega'; allowed: "
                                    "convnextv2_atto"),
                          HasSubstr("model.input_size: 16 is too small"),
                          "model.nb_classes: 0 must be positive"));
}

TEST(CheckModelConfig, FcmaeRulesOfPretrainingOnly) {
  ExperimentConfig c;
  c.mutable_model()->set_input_size(96);
  c.mutable_fcmae()->set_mask_ratio(0.95);  // 3x3 patches keep int(9 * 0.05) = 0
  c.mutable_fcmae()->set_grn_scope("global");
  EXPECT_THAT(Errors(c, true),
              ElementsAre(HasSubstr("fcmae.mask_ratio: 0.95 keeps int(9 * (1 - mask_ratio)) = 0"),
                          "fcmae.grn_scope: 'global' is not one of: sample, batch"));
  EXPECT_THAT(Errors(c, false), ElementsAre());  // fine-tuning ignores the decoder's settings
  c.mutable_fcmae()->set_visualize("/run/checkpoint-1.pth");
  EXPECT_THAT(Errors(c, false),
              ElementsAre(HasSubstr("fcmae.visualize: reconstructions of a pre-training "
                                    "checkpoint are drawn by pretrain, not finetune")));
}

}  // namespace
}  // namespace convnextv2::models
