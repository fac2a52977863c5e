// train.*, ema.*, checkpoint.*, eval.* and distributed.* validation, without libtorch.
#include "convnextv2/config/run_checks.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

namespace convnextv2::config {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::vector<std::string> Errors(const ExperimentConfig& c, bool pretrain = false) {
  Checks checks(pretrain);
  CheckRunConfig(c, checks);
  return checks.errors();
}

TEST(CheckRunConfig, DefaultsPassBothBinaries) {
  EXPECT_THAT(Errors(ExperimentConfig()), ElementsAre());
  EXPECT_THAT(Errors(ExperimentConfig(), /*pretrain=*/true), ElementsAre());
}

TEST(CheckRunConfig, TrainingSettings) {
  ExperimentConfig c;
  c.mutable_train()->set_epochs(3);
  c.mutable_train()->set_start_epoch(3);
  c.mutable_train()->set_device("cpu");
  c.mutable_train()->set_amp_dtype("float16");
  c.mutable_ema()->set_model_ema_eval(true);
  EXPECT_THAT(Errors(c), ElementsAre("train.start_epoch: 3 must be in [0, epochs)",
                                     HasSubstr("train.amp_dtype: float16 needs a CUDA device"),
                                     HasSubstr("ema.model_ema_eval: true needs ema.model_ema")));
  c.mutable_train()->set_device("cuda:1");
  c.mutable_train()->set_start_epoch(2);
  c.mutable_ema()->set_model_ema(true);
  EXPECT_THAT(Errors(c), ElementsAre());
}

TEST(CheckRunConfig, DeviceNames) {
  for (const char* good : {"", "cpu", "cuda", "cuda:0", "cuda:7", "cuda:15"}) {
    ExperimentConfig c;
    c.mutable_train()->set_device(good);
    EXPECT_THAT(Errors(c), ElementsAre()) << good;
  }
  // c10::Device would throw on these when the run starts; they are refused here instead.
  for (const char* bad : {"cuda:", "cuda:x", "cuda:-1", "cuda:+1", "cuda: 1", "cuda:1 ", "gpu",
                          "CUDA", "cuda:99999"}) {
    ExperimentConfig c;
    c.mutable_train()->set_device(bad);
    EXPECT_THAT(Errors(c), ElementsAre(absl::StrCat(
                               "train.device: '", bad,
                               "' is not one of: cpu, cuda, cuda:N, or empty for automatic")))
        << bad;
  }
}

TEST(CheckRunConfig, CheckpointsEvaluationAndRanks) {
  ExperimentConfig c;
  c.mutable_checkpoint()->set_resume("/run/checkpoint-1.pth");
  c.mutable_checkpoint()->set_finetune("/w/fcmae.pt");
  c.mutable_checkpoint()->set_preempt_signal("SIGFOO");
  c.mutable_eval()->set_eval_weights("ema");
  c.mutable_distributed()->set_world_size(0);
  EXPECT_THAT(Errors(c),
              ElementsAre(HasSubstr("checkpoint.preempt_signal: 'SIGFOO' is not a signal name"),
                          HasSubstr("checkpoint.resume and checkpoint.finetune are both set"),
                          "eval.eval_weights: ema needs a convnextv2 checkpoint in "
                          "checkpoint.resume",
                          "distributed.world_size: 0 must be >= 1"));
  // Pre-training cannot start from fine-tuning weights.
  ExperimentConfig p;
  p.mutable_checkpoint()->set_finetune("/w/fcmae.pt");
  EXPECT_THAT(Errors(p, /*pretrain=*/true),
              ElementsAre("checkpoint.finetune is not supported by this build yet"));
  EXPECT_THAT(Errors(p), ElementsAre());
}

// eval.eval_weights is parsed into its enum by the same table that validates it.
TEST(EvalWeightsOf, TheValidatedChoiceAsItsEnum) {
  EvalConfig e;
  EXPECT_EQ(EvalWeightsOf(e), EvalWeights::kModel);  // the default, "model"
  e.set_eval_weights("ema");
  EXPECT_EQ(EvalWeightsOf(e), EvalWeights::kEma);
  ExperimentConfig c;
  c.mutable_eval()->set_eval_weights("EMA");  // exact, as argparse choices
  EXPECT_THAT(Errors(c), ElementsAre("eval.eval_weights: 'EMA' is not one of: model, ema"));
}

}  // namespace
}  // namespace convnextv2::config
