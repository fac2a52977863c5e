// The binaries' command line: official flags, --set, --config and the base config rules.
#include "convnextv2/config/command_line.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <vector>

namespace convnextv2::config {
namespace {

using ::testing::HasSubstr;

constexpr BuiltinDefault kBuiltin{"configs/finetune_default.pbtxt",
                                  "model { model: \"convnextv2_atto\" input_size: 32 }\n"
                                  "data { data_set: \"IDX\" data_path: \"/builtin/fmnist\" }\n"
                                  "train { epochs: 5 }\n"};

absl::StatusOr<CommandLine> Parse(std::vector<const char*> args,
                                  Mode mode = Mode::kFinetune) {
  args.insert(args.begin(), "finetune");
  return ParseCommandLine(static_cast<int>(args.size()), args.data(), mode, kBuiltin);
}

TEST(CommandLine, NoArgumentsIsTheBuiltinDefault) {
  absl::StatusOr<CommandLine> cl = Parse({});
  ASSERT_TRUE(cl.ok()) << cl.status();
  EXPECT_EQ(cl->config.model().model(), "convnextv2_atto");
  EXPECT_EQ(cl->config.train().epochs(), 5);
  EXPECT_THAT(cl->base, HasSubstr("built-in default"));
}

TEST(CommandLine, OfficialFlagsOverTheBuiltinDefault) {
  absl::StatusOr<CommandLine> cl = Parse({"--epochs", "2", "--blr=1e-3"});
  ASSERT_TRUE(cl.ok()) << cl.status();
  EXPECT_EQ(cl->config.model().model(), "convnextv2_atto");
  EXPECT_EQ(cl->config.train().epochs(), 2);
  EXPECT_DOUBLE_EQ(cl->config.optim().blr(), 1e-3);
}

// The single-machine fine-tuning command of the official TRAINING.md (ConvNeXt V2-Base), after
// `python -m torch.distributed.launch --nproc_per_node=8 main_finetune.py`.
TEST(CommandLine, OfficialTrainingMdCommand) {
  absl::StatusOr<CommandLine> cl = Parse(
      {"--model", "convnextv2_base", "--batch_size", "32", "--update_freq", "4", "--blr",
       "6.25e-4", "--epochs", "100", "--warmup_epochs", "20", "--layer_decay_type", "'group'",
       "--layer_decay", "0.6", "--weight_decay", "0.05", "--drop_path", "0.1", "--reprob",
       "0.25", "--mixup", "0.8", "--cutmix", "1.0", "--smoothing", "0.1", "--model_ema", "True",
       "--model_ema_eval", "True", "--use_amp", "True", "--finetune", "/path/to/checkpoint",
       "--data_path", "/path/to/imagenet-1k", "--output_dir", "/path/to/save_results"});
  ASSERT_TRUE(cl.ok()) << cl.status();
  const ExperimentConfig& c = cl->config;
  EXPECT_THAT(cl->base, HasSubstr("official finetune defaults"));
  EXPECT_EQ(c.model().model(), "convnextv2_base");
  EXPECT_EQ(c.train().batch_size(), 32);
  EXPECT_EQ(c.train().update_freq(), 4);
  EXPECT_DOUBLE_EQ(c.optim().blr(), 6.25e-4);
  EXPECT_EQ(c.optim().layer_decay_type(), "group");
  EXPECT_DOUBLE_EQ(c.optim().layer_decay(), 0.6);
  EXPECT_DOUBLE_EQ(c.model().drop_path(), 0.1);
  EXPECT_DOUBLE_EQ(c.aug().mixup(), 0.8);
  EXPECT_DOUBLE_EQ(c.aug().cutmix(), 1.0);
  EXPECT_TRUE(c.ema().model_ema());
  EXPECT_TRUE(c.ema().model_ema_eval());
  EXPECT_TRUE(c.train().use_amp());
  EXPECT_EQ(c.checkpoint().finetune(), "/path/to/checkpoint");
  EXPECT_EQ(c.data().data_path(), "/path/to/imagenet-1k");
  EXPECT_EQ(c.output().output_dir(), "/path/to/save_results");
  // Unmentioned fields keep the official defaults, not the built-in run's.
  EXPECT_EQ(c.data().data_set(), "IMNET");
  EXPECT_EQ(c.model().input_size(), 224);
  EXPECT_EQ(c.aug().aa(), "rand-m9-mstd0.5-inc1");
  EXPECT_DOUBLE_EQ(c.model().head_init_scale(), 0.001);
}

TEST(CommandLine, PretrainOfficialDefaults) {
  absl::StatusOr<CommandLine> cl =
      Parse({"--model", "convnextv2_base", "--batch_size", "64", "--data_path", "/imnet"},
            Mode::kPretrain);
  ASSERT_TRUE(cl.ok()) << cl.status();
  EXPECT_EQ(cl->config.train().epochs(), 800);
  EXPECT_DOUBLE_EQ(cl->config.optim().blr(), 1.5e-4);
}

TEST(CommandLine, StoreTrueNargsAndNegativeValues) {
  absl::StatusOr<CommandLine> cl =
      Parse({"--norm_pix_loss", "--opt_betas", "0.9", "0.95", "--warmup_steps", "-1",
             "--cutmix_minmax", "0.3", "0.7", "--min_lr", "-0"});
  ASSERT_TRUE(cl.ok()) << cl.status();
  EXPECT_TRUE(cl->config.fcmae().norm_pix_loss());
  ASSERT_EQ(cl->config.optim().opt_betas_size(), 2);
  EXPECT_DOUBLE_EQ(cl->config.optim().opt_betas(1), 0.95);
  EXPECT_EQ(cl->config.schedule().warmup_steps(), -1);
  EXPECT_EQ(cl->config.aug().cutmix_minmax_size(), 2);
}

// timm's schedule flags (--sched, --decay_epochs, --decay_rate, --decay_milestones nargs='+').
TEST(CommandLine, TimmScheduleFlags) {
  absl::StatusOr<CommandLine> cl = Parse({"--sched", "multistep", "--decay_milestones", "30",
                                          "60", "--decay_rate", "0.5", "--decay_epochs", "2.5"});
  ASSERT_TRUE(cl.ok()) << cl.status();
  const ScheduleConfig& s = cl->config.schedule();
  EXPECT_EQ(s.sched(), "multistep");
  ASSERT_EQ(s.decay_milestones_size(), 2);
  EXPECT_EQ(s.decay_milestones(1), 60);
  EXPECT_DOUBLE_EQ(s.decay_rate(), 0.5);
  EXPECT_DOUBLE_EQ(s.decay_epochs(), 2.5);
  EXPECT_TRUE(Validate(cl->config, Mode::kFinetune).ok()) << Validate(cl->config, Mode::kFinetune);
  // Defaults: the official cosine; timm's decay_epochs 90 and decay_rate 0.1.
  const ScheduleConfig d = ModeDefaults(Mode::kFinetune).schedule();
  EXPECT_EQ(d.sched(), "cosine");
  EXPECT_DOUBLE_EQ(d.decay_epochs(), 90);
  EXPECT_DOUBLE_EQ(d.decay_rate(), 0.1);
  EXPECT_EQ(d.decay_milestones_size(), 0);
  absl::StatusOr<CommandLine> bad = Parse({"--sched", "step", "--decay_rate", "1.5"});
  ASSERT_TRUE(bad.ok()) << bad.status();
  EXPECT_THAT(std::string(Validate(bad->config, Mode::kFinetune).message()),
              HasSubstr("schedule.decay_rate: 1.5 must be in (0, 1] for sched step"));
  const std::string help = HelpText(Mode::kFinetune, "finetune");
  EXPECT_THAT(help, HasSubstr("--sched  (schedule.sched, string, default \"cosine\")"));
  EXPECT_THAT(help, HasSubstr("--decay-milestones, which decays one epoch earlier"));
}

TEST(CommandLine, SetAndFlagsApplyInOrder) {
  absl::StatusOr<CommandLine> cl =
      Parse({"--set", "optim.lr=1e-3", "--lr", "2e-3", "--set=train.epochs=9"});
  ASSERT_TRUE(cl.ok()) << cl.status();
  EXPECT_DOUBLE_EQ(cl->config.optim().lr(), 2e-3);
  EXPECT_EQ(cl->config.train().epochs(), 9);
  EXPECT_EQ(cl->assignments.size(), 3u);
}

TEST(CommandLine, ConfigFileOverModeDefaultsAndRelativeToWorkingDirectory) {
  const std::string dir = std::string(std::getenv("TEST_TMPDIR")) + "/cl";
  std::filesystem::create_directories(dir + "/configs");
  std::ofstream(dir + "/configs/x.pbtxt")
      << "train { batch_size: 7 }\ndata { data_path: \"rel/data\" }\n";
  setenv("BUILD_WORKING_DIRECTORY", dir.c_str(), 1);
  absl::StatusOr<CommandLine> cl =
      Parse({"--config=configs/x.pbtxt", "--output_dir", "out"}, Mode::kPretrain);
  unsetenv("BUILD_WORKING_DIRECTORY");
  ASSERT_TRUE(cl.ok()) << cl.status();
  EXPECT_EQ(cl->config.train().batch_size(), 7);
  EXPECT_EQ(cl->config.train().epochs(), 800);  // pretrain default under the file
  EXPECT_EQ(cl->config.data().data_path(), dir + "/rel/data");
  EXPECT_EQ(cl->config.output().output_dir(), dir + "/out");
  EXPECT_EQ(cl->working_dir, dir);
}

// An official CIFAR command: the class count comes from the files, overriding --nb_classes,
// before anything is built; the note is what the binary logs.
TEST(CommandLine, CifarNbClassesFromTheFiles) {
  const std::string dir = std::string(std::getenv("TEST_TMPDIR")) + "/cifar100";
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/train.bin") << "x";
  absl::StatusOr<CommandLine> cl = Parse({"--data_set", "CIFAR", "--data_path", dir.c_str(),
                                          "--nb_classes", "1000", "--epochs", "1"});
  ASSERT_TRUE(cl.ok()) << cl.status();
  EXPECT_EQ(cl->config.model().nb_classes(), 100);
  ASSERT_EQ(cl->notes.size(), 1u);
  EXPECT_THAT(cl->notes[0], HasSubstr("model.nb_classes set to 100 (was 1000)"));
  // The official defaults with --epochs 1 (warmup_epochs 20) validate: warmup spans the run.
  EXPECT_TRUE(Validate(cl->config, Mode::kFinetune).ok()) << Validate(cl->config, Mode::kFinetune);
  // Pre-training has no head: nothing changes.
  absl::StatusOr<CommandLine> pre =
      Parse({"--data_set", "CIFAR", "--data_path", dir.c_str()}, Mode::kPretrain);
  ASSERT_TRUE(pre.ok()) << pre.status();
  EXPECT_EQ(pre->config.model().nb_classes(), 1000);
  EXPECT_TRUE(pre->notes.empty());
}

TEST(CommandLine, ConfigOfficialKeyword) {
  absl::StatusOr<CommandLine> cl = Parse({"--config", "official"});
  ASSERT_TRUE(cl.ok());
  EXPECT_EQ(cl->config.model().model(), "convnextv2_base");
}

TEST(CommandLine, Errors) {
  EXPECT_THAT(std::string(Parse({"--batchsize", "3"}).status().message()),
              HasSubstr("flag --batchsize: unknown field 'batchsize' (did you mean 'batch_size'?)"));
  EXPECT_THAT(std::string(Parse({"--batch_size"}).status().message()), HasSubstr("--batch_size needs a value"));
  EXPECT_THAT(std::string(Parse({"--batch_size", "x"}).status().message()),
              HasSubstr("train.batch_size expects an integer, got 'x'"));
  EXPECT_THAT(std::string(Parse({"stray"}).status().message()), HasSubstr("unexpected argument 'stray'"));
  EXPECT_THAT(std::string(Parse({"--set", "lr"}).status().message()), HasSubstr("path.to.field=value"));
  EXPECT_THAT(std::string(Parse({"--set", "optim.nope=1"}).status().message()),
              HasSubstr("--set: unknown field 'optim.nope'"));
  absl::StatusOr<CommandLine> missing = Parse({"--config=/nonexistent.pbtxt"});
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("/nonexistent.pbtxt"));
}

TEST(CommandLine, HelpAndPrintConfig) {
  absl::StatusOr<CommandLine> cl = Parse({"--help", "--print_config"});
  ASSERT_TRUE(cl.ok());
  EXPECT_TRUE(cl->help);
  EXPECT_TRUE(cl->print_config);
  const std::string help = HelpText(Mode::kFinetune, "finetune");
  EXPECT_THAT(help, HasSubstr("--blr  (optim.blr, double, default 0.0005)"));
  // Field documentation comes from the comments in experiment.proto.
  EXPECT_THAT(help, HasSubstr("Base learning rate: lr = blr * batch_size * update_freq"));
  EXPECT_THAT(HelpText(Mode::kPretrain, "pretrain"), HasSubstr("--epochs  (train.epochs, int32, default 800)"));
}

}  // namespace
}  // namespace convnextv2::config
