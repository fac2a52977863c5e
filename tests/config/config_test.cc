// ExperimentConfig: text parsing, overrides through reflection, validation messages, paths.
#include "convnextv2/config/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>

namespace convnextv2::config {
namespace {

using ::testing::HasSubstr;

ExperimentConfig ValidFinetune() {
  absl::StatusOr<ExperimentConfig> c = ParseText(R"pb(
    model { model: "convnextv2_atto" input_size: 32 nb_classes: 10 }
    data { data_set: "synthetic" }
    aug { aa: "none" reprob: 0 }
    train { batch_size: 8 epochs: 2 }
    schedule { warmup_epochs: 1 }
  )pb", "inline");
  EXPECT_TRUE(c.ok()) << c.status();
  return *c;
}

TEST(ParseText, DefaultsAreTheOfficialOnes) {
  const ExperimentConfig c;
  EXPECT_EQ(c.train().batch_size(), 64);
  EXPECT_EQ(c.train().epochs(), 100);
  EXPECT_EQ(c.model().model(), "convnextv2_base");
  EXPECT_DOUBLE_EQ(c.optim().blr(), 5e-4);
  EXPECT_DOUBLE_EQ(c.schedule().min_lr(), 1e-6);
  EXPECT_EQ(c.schedule().warmup_epochs(), 20);
  EXPECT_DOUBLE_EQ(c.aug().smoothing(), 0.1);
  EXPECT_EQ(c.aug().aa(), "rand-m9-mstd0.5-inc1");
  EXPECT_DOUBLE_EQ(c.aug().reprob(), 0.25);
  EXPECT_DOUBLE_EQ(c.model().head_init_scale(), 0.001);
  EXPECT_DOUBLE_EQ(c.fcmae().mask_ratio(), 0.6);
  EXPECT_TRUE(c.fcmae().norm_pix_loss());
  EXPECT_EQ(c.fcmae().decoder_embed_dim(), 512);
  EXPECT_EQ(c.checkpoint().save_ckpt_num(), 3);
  EXPECT_TRUE(c.checkpoint().auto_resume());
  EXPECT_FALSE(c.optim().has_lr());
  EXPECT_EQ(c.checkpoint().model_key(), "model|module");
}

TEST(ModeDefaults, PretrainUsesMainPretrainDefaults) {
  const ExperimentConfig p = ModeDefaults(Mode::kPretrain);
  EXPECT_EQ(p.train().epochs(), 800);
  EXPECT_EQ(p.schedule().warmup_epochs(), 40);
  EXPECT_DOUBLE_EQ(p.optim().blr(), 1.5e-4);
  EXPECT_DOUBLE_EQ(p.schedule().min_lr(), 0.0);
  ASSERT_EQ(p.optim().opt_betas_size(), 2);
  EXPECT_DOUBLE_EQ(p.optim().opt_betas(1), 0.95);
  EXPECT_EQ(ModeDefaults(Mode::kFinetune).ByteSizeLong(), 0u);
}

TEST(ParseText, ErrorNamesSourceLineAndField) {
  absl::StatusOr<ExperimentConfig> c =
      ParseText("train {\n  batch_size: 3\n  bach_size: 4\n}\n", "ft.pbtxt");
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(std::string(c.status().message()), HasSubstr("ft.pbtxt:3"));
  EXPECT_THAT(std::string(c.status().message()), HasSubstr("bach_size"));
  absl::StatusOr<ExperimentConfig> wrong_type = ParseText("train { batch_size: \"x\" }", "f");
  ASSERT_FALSE(wrong_type.ok());
  EXPECT_THAT(std::string(wrong_type.status().message()), HasSubstr("batch_size"));
}

TEST(LoadTextFile, MissingFileIsNotFound) {
  absl::StatusOr<ExperimentConfig> c = LoadTextFile("/nonexistent/dir/x.pbtxt");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(c.status().message()), HasSubstr("/nonexistent/dir/x.pbtxt"));
}

TEST(SetField, EveryScalarTypeByPathAndByOfficialName) {
  ExperimentConfig c;
  ASSERT_TRUE(SetField("train.batch_size", "32", &c).ok());
  ASSERT_TRUE(SetField("blr", "6.25e-4", &c).ok());
  ASSERT_TRUE(SetField("model_ema", "True", &c).ok());
  ASSERT_TRUE(SetField("layer_decay_type", "'group'", &c).ok());
  ASSERT_TRUE(SetField("seed", "12345678901", &c).ok());
  ASSERT_TRUE(SetField("optim.opt_betas", "[0.9, 0.95]", &c).ok());
  ASSERT_TRUE(SetField("cutmix_minmax", "0.2 0.8", &c).ok());
  EXPECT_EQ(c.train().batch_size(), 32);
  EXPECT_DOUBLE_EQ(c.optim().blr(), 6.25e-4);
  EXPECT_TRUE(c.ema().model_ema());
  EXPECT_EQ(c.optim().layer_decay_type(), "group");
  EXPECT_EQ(c.train().seed(), 12345678901);
  ASSERT_EQ(c.optim().opt_betas_size(), 2);
  EXPECT_DOUBLE_EQ(c.optim().opt_betas(1), 0.95);
  ASSERT_EQ(c.aug().cutmix_minmax_size(), 2);
  // Setting a repeated field replaces it.
  ASSERT_TRUE(SetField("opt_betas", "0.8,0.9", &c).ok());
  EXPECT_DOUBLE_EQ(c.optim().opt_betas(0), 0.8);
  EXPECT_EQ(c.optim().opt_betas_size(), 2);
  // Presence: setting an optional field without default makes it present.
  ASSERT_TRUE(SetField("optim.lr", "1e-3", &c).ok());
  EXPECT_TRUE(c.optim().has_lr());
}

TEST(SetField, UnknownFieldSuggestsTheClosest) {
  ExperimentConfig c;
  absl::Status s = SetField("optim.lrr", "1", &c);
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(s.message()), HasSubstr("unknown field 'optim.lrr'"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("did you mean 'optim.lr'"));
  s = SetField("batchsize", "1", &c);
  EXPECT_THAT(std::string(s.message()), HasSubstr("did you mean 'batch_size'"));
  s = SetField("optim", "1", &c);
  EXPECT_THAT(std::string(s.message()), HasSubstr("group of fields"));
}

TEST(SetField, WrongTypeNamesPathValueAndType) {
  ExperimentConfig c;
  absl::Status s = SetField("train.batch_size", "many", &c);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("train.batch_size expects an integer, got 'many'"));
  s = SetField("model_ema", "maybe", &c);
  EXPECT_THAT(std::string(s.message()), HasSubstr("expects a boolean"));
  s = SetField("blr", "1e-3x", &c);
  EXPECT_THAT(std::string(s.message()), HasSubstr("expects a number"));
  s = SetField("opt_betas", "[0.9, 0.95", &c);
  EXPECT_THAT(std::string(s.message()), HasSubstr("unbalanced"));
  s = SetField("blr", "nan", &c);
  EXPECT_FALSE(s.ok());
}

TEST(ApplyOverride, NeedsAnEqualsSign) {
  ExperimentConfig c;
  EXPECT_TRUE(ApplyOverride("optim.weight_decay=0.3", &c).ok());
  EXPECT_DOUBLE_EQ(c.optim().weight_decay(), 0.3);
  EXPECT_THAT(std::string(ApplyOverride("optim.weight_decay", &c).message()), HasSubstr("path.to.field=value"));
}

TEST(LeafPaths, OfficialFlagNamesAreUniqueAndAllPresent) {
  std::set<std::string> leaves;
  for (const std::string& p : LeafPaths()) {
    leaves.insert(p.substr(p.rfind('.') + 1));
  }
  EXPECT_EQ(leaves.size(), LeafPaths().size());
  // Every flag of the official main_finetune.py / main_pretrain.py argument parsers.
  for (const char* flag :
       {"batch_size", "epochs", "update_freq", "model", "input_size", "drop_path",
        "layer_decay_type", "model_ema", "model_ema_decay", "model_ema_force_cpu",
        "model_ema_eval", "clip_grad", "weight_decay", "lr", "blr", "layer_decay", "min_lr",
        "warmup_epochs", "warmup_steps", "opt", "opt_eps", "opt_betas", "momentum",
        "weight_decay_end", "color_jitter", "aa", "smoothing", "train_interpolation", "reprob",
        "remode", "recount", "resplit", "mixup", "cutmix", "cutmix_minmax", "mixup_prob",
        "mixup_switch_prob", "mixup_mode", "finetune", "head_init_scale", "model_key",
        "model_prefix", "data_path", "nb_classes", "output_dir", "log_dir", "device", "seed",
        "resume", "eval_data_path", "imagenet_default_mean_and_std", "data_set", "auto_resume",
        "save_ckpt", "save_ckpt_freq", "save_ckpt_num", "start_epoch", "eval", "dist_eval",
        "disable_eval", "num_workers", "pin_mem", "crop_pct", "world_size", "local_rank",
        "dist_on_itp", "dist_url", "use_amp", "mask_ratio", "norm_pix_loss", "decoder_depth",
        "decoder_embed_dim"}) {
    EXPECT_TRUE(leaves.count(flag)) << flag;
  }
}

TEST(Validate, AcceptsAValidConfig) {
  EXPECT_TRUE(Validate(ValidFinetune(), Mode::kFinetune).ok());
}

// Each rule: a change to a valid config and the words its error must contain.
struct Rule {
  const char* assignment;
  const char* message;
};

class ValidateRuleTest : public testing::TestWithParam<Rule> {};

TEST_P(ValidateRuleTest, NamesFieldValueAndWhatIsAllowed) {
  ExperimentConfig c = ValidFinetune();
  ASSERT_TRUE(ApplyOverride(GetParam().assignment, &c).ok());
  absl::Status s = Validate(c, Mode::kFinetune);
  ASSERT_FALSE(s.ok()) << GetParam().assignment;
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr(GetParam().message));
}

INSTANTIATE_TEST_SUITE_P(
    Rules, ValidateRuleTest,
    testing::Values(
        Rule{"train.batch_size=-4", "train.batch_size: -4 must be positive"},
        Rule{"train.batch_size=0", "train.batch_size: 0 must be positive"},
        Rule{"fcmae.mask_ratio=1", "fcmae.mask_ratio: 1 must be in [0, 1)"},
        Rule{"fcmae.mask_ratio=-0.1", "fcmae.mask_ratio: -0.1 must be in [0, 1)"},
        Rule{"model.model=convnextv2_mega", "unknown model 'convnextv2_mega'; allowed: "
                                           "convnextv2_atto"},
        Rule{"data.data_set=imagenet", "data.data_set: 'imagenet' is not one of: IMNET"},
        Rule{"optim.opt=rmsprop", "optim.opt: 'rmsprop' is not one of: adamw, adam, sgd"},
        Rule{"optim.layer_decay_type=triple", "layer_decay_type: 'triple' is not one of"},
        Rule{"model.input_size=16", "model.input_size: 16 is too small"},
        Rule{"train.update_freq=0", "train.update_freq: 0 must be >= 1"},
        Rule{"model.drop_path=1.5", "model.drop_path: 1.5 must be in [0, 1)"},
        Rule{"aug.smoothing=1", "aug.smoothing: 1 must be in [0, 1)"},
        Rule{"aug.mixup_mode=row", "aug.mixup_mode: 'row' is not one of: batch, pair, elem"},
        Rule{"optim.opt_betas=0.9", "optim.opt_betas: needs two values"},
        Rule{"train.device=tpu", "train.device: 'tpu' is not one of"},
        Rule{"optim.clip_grad=0", "optim.clip_grad: 0 must be positive"},
        Rule{"data.corrupt_images=ignore", "data.corrupt_images: 'ignore' is not one of: fail, skip"},
        Rule{"data.prefetch_batches=-1", "data.prefetch_batches: -1 must be >= 0"},
        Rule{"aug.aa=autoaug", "aug.aa: 'autoaug' is not a RandAugment policy"},
        Rule{"aug.cutmix_minmax=[0.5, 0.2]", "aug.cutmix_minmax: min must be less than max"},
        Rule{"aug.cutmix_minmax=[0, 0.2]", "aug.cutmix_minmax: 0 must be in (0, 1]"},
        Rule{"checkpoint.preempt_signal=SIGFOO",
             "checkpoint.preempt_signal: 'SIGFOO' is not a signal name"},
        Rule{"checkpoint.save_ckpt_steps=-1", "checkpoint.save_ckpt_steps: -1 must be >= 0"},
        Rule{"data.max_train_images=-1", "data.max_train_images: -1 must be >= 0"},
        Rule{"checkpoint.preempt_lead_seconds=-5",
             "checkpoint.preempt_lead_seconds: -5 must be >= 0"},
        Rule{"eval.eval_weights=best", "eval.eval_weights: 'best' is not one of: model, ema"},
        Rule{"eval.eval=true", "eval.eval: evaluation only needs weights: set checkpoint.resume"},
        Rule{"checkpoint.model_key=", "checkpoint.model_key: '' must be key names"},
        Rule{"schedule.sched=poly", "schedule.sched: 'poly' is not one of: cosine, step, "
                                    "multistep, constant"},
        Rule{"schedule.sched=multistep", "schedule.decay_milestones: sched multistep needs"}));

TEST(Validate, CheckpointSettings) {
  ExperimentConfig c = ValidFinetune();
  c.mutable_checkpoint()->set_finetune("/w/fcmae.pt");
  c.mutable_checkpoint()->set_preempt_signal("usr1");
  EXPECT_TRUE(Validate(c, Mode::kFinetune).ok()) << Validate(c, Mode::kFinetune);
  c.mutable_checkpoint()->set_resume("/run/checkpoint-3.pth");
  EXPECT_THAT(std::string(Validate(c, Mode::kFinetune).message()),
              HasSubstr("checkpoint.resume and checkpoint.finetune are both set"));
  c.mutable_checkpoint()->clear_finetune();
  c.mutable_eval()->set_eval(true);
  c.mutable_eval()->set_eval_weights("ema");
  EXPECT_TRUE(Validate(c, Mode::kFinetune).ok()) << Validate(c, Mode::kFinetune);
  // Without resume, auto_resume evaluates output_dir's newest checkpoint (main_finetune.py).
  c.mutable_checkpoint()->clear_resume();
  c.mutable_output()->set_output_dir("/run");
  EXPECT_TRUE(Validate(c, Mode::kFinetune).ok()) << Validate(c, Mode::kFinetune);
  c.mutable_checkpoint()->set_auto_resume(false);
  EXPECT_THAT(std::string(Validate(c, Mode::kFinetune).message()),
              HasSubstr("eval.eval: evaluation only needs weights"));
}

TEST(Validate, MixupNeedsEvenBatch) {
  ExperimentConfig c = ValidFinetune();
  c.mutable_aug()->set_mixup(0.8);
  c.mutable_train()->set_batch_size(7);
  EXPECT_THAT(std::string(Validate(c, Mode::kFinetune).message()),
              HasSubstr("train.batch_size: 7 must be even with mixup/cutmix"));
  c.mutable_train()->set_batch_size(8);
  EXPECT_TRUE(Validate(c, Mode::kFinetune).ok());
}

TEST(Validate, MissingDataPath) {
  ExperimentConfig c = ValidFinetune();
  c.mutable_data()->set_data_set("IDX");
  c.mutable_data()->set_data_path("");
  absl::Status s = Validate(c, Mode::kFinetune);
  EXPECT_THAT(std::string(s.message()), HasSubstr("data.data_path: empty; data_set IDX needs a dataset folder"));
  c.mutable_data()->set_data_path("/no/such/dataset");
  absl::Status paths = CheckPaths(c, Mode::kFinetune);
  EXPECT_EQ(paths.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(paths.message()), HasSubstr("data.data_path: '/no/such/dataset' does not exist"));
}

TEST(Validate, ReportsEveryProblemAtOnce) {
  ExperimentConfig c = ValidFinetune();
  c.mutable_train()->set_batch_size(-1);
  c.mutable_fcmae()->set_mask_ratio(2);
  const std::string message(Validate(c, Mode::kFinetune).message());
  EXPECT_THAT(message, HasSubstr("train.batch_size"));
  EXPECT_THAT(message, HasSubstr("fcmae.mask_ratio"));
}

ExperimentConfig ValidPretrain() {
  ExperimentConfig c = ModeDefaults(Mode::kPretrain);
  absl::StatusOr<ExperimentConfig> body = ParseText(R"pb(
    model { model: "convnextv2_atto" input_size: 128 }
    data { data_set: "synthetic" }
    train { batch_size: 8 epochs: 2 }
    schedule { warmup_epochs: 1 }
  )pb", "inline");
  EXPECT_TRUE(body.ok()) << body.status();
  c.MergeFrom(*body);
  return c;
}

TEST(Validate, AcceptsAValidPretrainConfig) {
  EXPECT_TRUE(Validate(ValidPretrain(), Mode::kPretrain).ok())
      << Validate(ValidPretrain(), Mode::kPretrain);
}

class ValidatePretrainRuleTest : public testing::TestWithParam<Rule> {};

TEST_P(ValidatePretrainRuleTest, NamesFieldValueAndWhatIsAllowed) {
  ExperimentConfig c = ValidPretrain();
  ASSERT_TRUE(ApplyOverride(GetParam().assignment, &c).ok());
  absl::Status s = Validate(c, Mode::kPretrain);
  ASSERT_FALSE(s.ok()) << GetParam().assignment;
  EXPECT_THAT(std::string(s.message()), HasSubstr(GetParam().message));
}

INSTANTIATE_TEST_SUITE_P(
    Rules, ValidatePretrainRuleTest,
    testing::Values(
        Rule{"model.input_size=100", "model.input_size: 100 is not divisible by fcmae.patch_size"},
        Rule{"fcmae.patch_size=16", "fcmae.patch_size: 16 must be 32"},
        // 128 pixels: 16 patches; int(16 * 0.05) = 0 visible.
        Rule{"fcmae.mask_ratio=0.95", "fcmae.mask_ratio: 0.95 keeps int(16 * (1 - mask_ratio)) = 0"},
        Rule{"fcmae.grn_scope=global", "fcmae.grn_scope: 'global' is not one of: sample, batch"},
        Rule{"fcmae.vis_images=-1", "fcmae.vis_images: -1 must be >= 0"},
        Rule{"fcmae.train_subset=-5", "fcmae.train_subset: -5 must be >= 0"},
        Rule{"fcmae.vis_freq=-1", "fcmae.vis_freq: -1 must be >= 0"},
        Rule{"optim.opt=sgd", "optim.opt: 'sgd' cannot be used: pretrain uses AdamW"},
        Rule{"optim.clip_grad=1", "optim.clip_grad: pretrain does not clip gradients"}));

TEST(Validate, VisualizeNeedsImagesAndIsPretrainOnly) {
  ExperimentConfig c = ValidPretrain();
  c.mutable_fcmae()->set_visualize("/run/checkpoint-3.pth");
  c.mutable_train()->set_use_amp(true);  // pre-training takes use_amp
  EXPECT_TRUE(Validate(c, Mode::kPretrain).ok()) << Validate(c, Mode::kPretrain);
  c.mutable_fcmae()->set_vis_images(0);
  EXPECT_THAT(std::string(Validate(c, Mode::kPretrain).message()),
              HasSubstr("fcmae.vis_images: 0 leaves nothing for fcmae.visualize to draw"));
  EXPECT_THAT(std::string(Validate(c, Mode::kFinetune).message()),
              HasSubstr("fcmae.visualize: reconstructions of a pre-training checkpoint are drawn "
                        "by pretrain, not finetune"));
}

TEST(Validate, PretrainKeepsOnePatchAtTheEdge) {
  ExperimentConfig c = ValidPretrain();
  c.mutable_model()->set_input_size(64);  // 4 patches; int(4 * 0.25) = 1 visible
  c.mutable_fcmae()->set_mask_ratio(0.75);
  EXPECT_TRUE(Validate(c, Mode::kPretrain).ok());
  c.mutable_fcmae()->set_mask_ratio(0.76);
  EXPECT_FALSE(Validate(c, Mode::kPretrain).ok());
}

// The official adjust_learning_rate warms up for the whole run when warmup_epochs >= epochs
// (main_finetune.py's defaults with --epochs 1: warmup 20); both binaries accept it.
TEST(Validate, WarmupLongerThanTheRunIsAccepted) {
  ExperimentConfig f = ValidFinetune();
  f.mutable_train()->set_epochs(1);
  f.mutable_schedule()->set_warmup_epochs(20);
  EXPECT_TRUE(Validate(f, Mode::kFinetune).ok()) << Validate(f, Mode::kFinetune);
  f.mutable_schedule()->set_warmup_epochs(1);  // equal: warmup is the whole run too
  EXPECT_TRUE(Validate(f, Mode::kFinetune).ok()) << Validate(f, Mode::kFinetune);
  ExperimentConfig p = ValidPretrain();
  p.mutable_train()->set_epochs(1);
  p.mutable_schedule()->set_warmup_epochs(40);
  EXPECT_TRUE(Validate(p, Mode::kPretrain).ok()) << Validate(p, Mode::kPretrain);
}

void WriteFile(const std::string& path) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path) << "x";
}

// data_set CIFAR: nb_classes comes from the files, as the official build_dataset sets it.
TEST(ResolveDataClasses, CifarTakesTheClassCountFromTheFiles) {
  const std::string tmp = std::string(std::getenv("TEST_TMPDIR")) + "/resolve";
  WriteFile(tmp + "/c100/train.bin");
  WriteFile(tmp + "/c10/data_batch_1.bin");
  ExperimentConfig c;  // nb_classes 1000, the official default
  c.mutable_data()->set_data_set("CIFAR");
  c.mutable_data()->set_data_path(tmp + "/c100");
  const std::string note = ResolveDataClasses(&c, Mode::kFinetune);
  EXPECT_EQ(c.model().nb_classes(), 100);
  EXPECT_THAT(note, HasSubstr("holds CIFAR-100: model.nb_classes set to 100 (was 1000)"));
  EXPECT_THAT(ToText(c), HasSubstr("nb_classes: 100"));  // what --print_config shows

  c.mutable_data()->set_data_path(tmp + "/c10");
  EXPECT_THAT(ResolveDataClasses(&c, Mode::kFinetune), HasSubstr("set to 10 (was 100)"));
  EXPECT_EQ(c.model().nb_classes(), 10);
  EXPECT_THAT(ResolveDataClasses(&c, Mode::kFinetune), HasSubstr("model.nb_classes 10"));

  // Neither layout: left alone (opening the data set names the folder).
  c.mutable_data()->set_data_path(tmp + "/missing");
  c.mutable_model()->set_nb_classes(7);
  EXPECT_EQ(ResolveDataClasses(&c, Mode::kFinetune), "");
  EXPECT_EQ(c.model().nb_classes(), 7);
  // Other data sets and pre-training (no head) are untouched.
  c.mutable_data()->set_data_path(tmp + "/c100");
  EXPECT_EQ(ResolveDataClasses(&c, Mode::kPretrain), "");
  EXPECT_EQ(c.model().nb_classes(), 7);
  c.mutable_data()->set_data_set("IMNET");
  EXPECT_EQ(ResolveDataClasses(&c, Mode::kFinetune), "");
  EXPECT_EQ(c.model().nb_classes(), 7);
}

TEST(ResolvePaths, RelativePathsJoinTheBaseDirectory) {
  ExperimentConfig c;
  c.mutable_data()->set_data_path("data/fmnist");
  c.mutable_output()->set_output_dir("/abs/out");
  c.mutable_checkpoint()->set_finetune("ckpt/pre.pth");
  ResolvePaths("/home/me/work", &c);
  EXPECT_EQ(c.data().data_path(), "/home/me/work/data/fmnist");
  EXPECT_EQ(c.output().output_dir(), "/abs/out");
  EXPECT_EQ(c.checkpoint().finetune(), "/home/me/work/ckpt/pre.pth");
  EXPECT_EQ(c.checkpoint().resume(), "");  // empty stays empty
  EXPECT_EQ(c.model().model(), "convnextv2_base");  // not a path: untouched
}

TEST(EffectiveLr, BlrTimesEffectiveBatchOver256UnlessLrIsSet) {
  ExperimentConfig c;
  c.mutable_train()->set_batch_size(32);
  c.mutable_train()->set_update_freq(4);
  c.mutable_optim()->set_blr(6.25e-4);
  EXPECT_DOUBLE_EQ(EffectiveLr(c, 8), 6.25e-4 * 32 * 4 * 8 / 256);
  c.mutable_optim()->set_lr(0.1);
  EXPECT_DOUBLE_EQ(EffectiveLr(c, 8), 0.1);
}

}  // namespace
}  // namespace convnextv2::config
