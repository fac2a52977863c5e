// The test that matters most: a run stopped after an epoch, or mid-epoch, and resumed ends
// bitwise identical (parameters, optimizer state, RNG, logged metrics) to the run that never
// stopped. DropPath is on so the RNG state matters.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "convnextv2/apps/finetune.h"
#include "convnextv2/checkpoint/file.h"
#include "convnextv2/config/config.h"

namespace convnextv2::apps {
namespace {

namespace fs = std::filesystem;

ExperimentConfig TinyRun(const std::string& out_dir) {
  ExperimentConfig c = config::ModeDefaults(config::Mode::kFinetune);
  absl::StatusOr<ExperimentConfig> parsed = config::ParseText(R"pb(
    model { model: "convnextv2_atto" input_size: 32 nb_classes: 4 drop_path: 0.2 }
    aug { aa: "none" reprob: 0 mixup: 0 cutmix: 0 }
    data { data_set: "synthetic" synthetic_train_size: 48 synthetic_eval_size: 16 }
    train { batch_size: 16 epochs: 3 num_threads: 1 print_freq: 100 seed: 7 }
    schedule { warmup_epochs: 0 warmup_steps: 1 }
    optim { blr: 8e-3 }
  )pb", "test");
  if (!parsed.ok()) ADD_FAILURE() << parsed.status();
  c.MergeFrom(*parsed);
  c.mutable_output()->set_output_dir(out_dir);
  // A config the binary would refuse must not be trained on (it could run for hours).
  const absl::Status valid = config::Validate(c, config::Mode::kFinetune);
  if (!valid.ok()) {
    ADD_FAILURE() << valid;
    std::abort();
  }
  return c;
}

std::string Dir(const std::string& name) {
  const std::string d = std::string(getenv("TEST_TMPDIR")) + "/" + name;
  fs::remove_all(d);
  return d;
}

// log.txt without the timing field (wall-clock speed differs between runs).
std::string LogWithoutTiming(const std::string& dir) {
  std::ifstream in(dir + "/log.txt");
  std::stringstream s;
  s << in.rdbuf();
  return std::regex_replace(s.str(), std::regex(R"("train_images_per_second": [^,]*, )"), "");
}

void ExpectSameFinalState(const std::string& a_dir, const std::string& b_dir) {
  absl::StatusOr<checkpoint::Checkpoint> a = checkpoint::ReadCheckpoint(a_dir + "/checkpoint-2.pth");
  absl::StatusOr<checkpoint::Checkpoint> b = checkpoint::ReadCheckpoint(b_dir + "/checkpoint-2.pth");
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(a->header.global_step(), b->header.global_step());
  EXPECT_EQ(a->header.best_acc1(), b->header.best_acc1());
  ASSERT_EQ(a->tensors.size(), b->tensors.size());
  int optimizer_tensors = 0;
  for (const auto& [name, t] : a->tensors) {
    const at::Tensor* other = b->Find(name);
    ASSERT_NE(other, nullptr) << name;
    EXPECT_TRUE(at::equal(t, *other)) << name << " differs";
    optimizer_tensors += name.rfind("optimizer.", 0) == 0;
  }
  EXPECT_GT(optimizer_tensors, 100);  // exp_avg, exp_avg_sq and step of every parameter
  EXPECT_EQ(LogWithoutTiming(a_dir), LogWithoutTiming(b_dir));
}

class ResumeTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    reference_ = new std::string(Dir("uninterrupted"));
    absl::StatusOr<FinetuneResult> r = RunFinetune(TinyRun(*reference_));
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_EQ(r->epochs.size(), 3u);
    ASSERT_FALSE(r->preempted);
  }
  static std::string* reference_;
};
std::string* ResumeTest::reference_ = nullptr;

TEST_F(ResumeTest, AfterAnEpochIsBitwiseIdentical) {
  const std::string dir = Dir("after_epoch");
  absl::StatusOr<FinetuneResult> first = RunFinetune(TinyRun(dir), {.stop_epoch = 1, .stop_step = 0});
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_TRUE(first->preempted);
  EXPECT_EQ(first->epochs.size(), 1u);
  // Continue from the end-of-epoch checkpoint (not the step one), and pretend the process
  // died after writing a log row it had no checkpoint for: the resumed run must drop it.
  fs::remove(dir + "/checkpoint-1-step0.pth");
  ASSERT_TRUE(fs::exists(dir + "/checkpoint-0.pth"));
  { std::ofstream(dir + "/log.txt", std::ios::app) << "{\"train_lr\": 9, \"epoch\": 1, \"n_parameters\": 1}\n"; }
  absl::StatusOr<FinetuneResult> second = RunFinetune(TinyRun(dir));
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_FALSE(second->preempted);
  EXPECT_EQ(second->epochs.size(), 2u);
  ExpectSameFinalState(*reference_, dir);
}

TEST_F(ResumeTest, MidEpochIsBitwiseIdentical) {
  const std::string dir = Dir("mid_epoch");
  absl::StatusOr<FinetuneResult> first = RunFinetune(TinyRun(dir), {.stop_epoch = 1, .stop_step = 2});
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_TRUE(first->preempted);
  ASSERT_TRUE(fs::exists(dir + "/checkpoint-1-step2.pth"));
  absl::StatusOr<FinetuneResult> second = RunFinetune(TinyRun(dir));
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->epochs.size(), 2u);
  EXPECT_FALSE(fs::exists(dir + "/checkpoint-1-step2.pth")) << "superseded, should be removed";
  ExpectSameFinalState(*reference_, dir);
}

TEST_F(ResumeTest, ExplicitResumeFileAndOverrideIsApplied) {
  const std::string dir = Dir("explicit");
  ASSERT_TRUE(RunFinetune(TinyRun(dir), {.stop_epoch = 2, .stop_step = 1}).ok());
  ExperimentConfig c = TinyRun(dir + "/elsewhere");
  c.mutable_checkpoint()->set_resume(dir + "/checkpoint-2-step1.pth");
  c.mutable_optim()->set_lr(0.0);  // overrides on resume: no more learning
  c.mutable_schedule()->set_min_lr(0.0);
  absl::StatusOr<FinetuneResult> r = RunFinetune(c);
  ASSERT_TRUE(r.ok()) << r.status();
  absl::StatusOr<checkpoint::Checkpoint> stopped =
      checkpoint::ReadCheckpoint(dir + "/checkpoint-2-step1.pth");
  absl::StatusOr<checkpoint::Checkpoint> done =
      checkpoint::ReadCheckpoint(dir + "/elsewhere/checkpoint-2.pth");
  ASSERT_TRUE(stopped.ok() && done.ok());
  // lr 0: AdamW changes nothing (weight decay is scaled by lr too), steps still advance.
  EXPECT_TRUE(at::equal(*stopped->Find("model.head.weight"), *done->Find("model.head.weight")));
  EXPECT_EQ(done->header.global_step(), stopped->header.global_step() + 2);
  EXPECT_EQ(done->header.next_epoch(), 3);
}

TEST_F(ResumeTest, MismatchedOptimizerOrModelIsAnError) {
  const std::string dir = Dir("mismatch");
  ASSERT_TRUE(RunFinetune(TinyRun(dir), {.stop_epoch = 0, .stop_step = 1}).ok());
  ExperimentConfig c = TinyRun(dir);
  c.mutable_model()->set_nb_classes(5);
  absl::StatusOr<FinetuneResult> r = RunFinetune(c);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(std::string(r.status().message()).find("head.weight (4, 320) vs model (5, 320)"),
            std::string::npos) << r.status();

  c = TinyRun(dir);
  c.mutable_checkpoint()->set_resume(dir + "/../uninterrupted/checkpoint-best.pth");
  r = RunFinetune(c);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(std::string(r.status().message()).find("use checkpoint.finetune"), std::string::npos)
      << r.status();
}

}  // namespace
}  // namespace convnextv2::apps
