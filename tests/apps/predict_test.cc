// predict and what it needs: a fine-tuning run records its classes' names (manifest and every
// checkpoint header); predict loads the run's checkpoint, classifies image files in batches with
// the run's evaluation transform, names the classes and writes JSON lines; its inference
// forward pass (InferenceMode) gives the logits of the fine-tuning evaluation's path (eval mode
// under NoGradGuard); a 1000-class head without names gets ImageNet-1k's; bad inputs are
// errors that name them.
#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "convnextv2/apps/finetune.h"
#include "convnextv2/apps/inference.h"
#include "convnextv2/apps/predict.h"
#include "convnextv2/checkpoint/file.h"
#include "convnextv2/checkpoint/pretrained.h"
#include "convnextv2/config/config.h"
#include "convnextv2/data/class_names.h"
#include "convnextv2/data/non_jpeg_codecs.h"
#include "convnextv2/data/synthetic_dataset.h"
#include "convnextv2/models/registry.h"
#include "convnextv2/proto/run_manifest.pb.h"
#include "convnextv2/util/files.h"
#include "convnextv2/util/text_proto.h"

namespace convnextv2::apps {
namespace {

namespace fs = std::filesystem;

std::string Dir(const std::string& name) {
  const std::string d = std::string(getenv("TEST_TMPDIR")) + "/" + name;
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

ExperimentConfig TinyRun(const std::string& out_dir) {
  ExperimentConfig c = config::ModeDefaults(config::Mode::kFinetune);
  absl::StatusOr<ExperimentConfig> parsed = config::ParseText(R"pb(
    model { model: "convnextv2_atto" input_size: 32 nb_classes: 4 }
    aug { aa: "none" reprob: 0 mixup: 0 cutmix: 0 }
    data { data_set: "synthetic" synthetic_train_size: 32 synthetic_eval_size: 16 }
    train { batch_size: 16 epochs: 1 num_threads: 1 print_freq: 100 seed: 3 }
    schedule { warmup_epochs: 0 warmup_steps: 1 }
    optim { blr: 8e-3 }
  )pb", "test");
  EXPECT_TRUE(parsed.ok()) << parsed.status();
  c.MergeFrom(*parsed);
  c.mutable_output()->set_output_dir(out_dir);
  return c;
}

class PredictTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    run_ = new std::string(Dir("run"));
    absl::StatusOr<FinetuneResult> r = RunFinetune(TinyRun(*run_));
    ASSERT_TRUE(r.ok()) << r.status();
    images_ = new std::string(Dir("images"));
    data::SyntheticDataset ds(5, 4, 28, 11);
    for (int i = 0; i < 5; ++i) {
      absl::StatusOr<data::Example> ex = ds.Get(i);
      ASSERT_TRUE(ex.ok());
      absl::StatusOr<std::string> png = data::EncodePng(ex->image);
      ASSERT_TRUE(png.ok()) << png.status();
      fs::create_directories(*images_ + "/sub");
      const std::string path = *images_ + (i < 3 ? "/" : "/sub/") + std::to_string(i) + ".png";
      ASSERT_TRUE(util::WriteFileAtomically(path, *png).ok());
    }
  }
  static std::string Checkpoint() { return *run_ + "/checkpoint-0.pth"; }
  static std::string* run_;
  static std::string* images_;
};
std::string* PredictTest::run_ = nullptr;
std::string* PredictTest::images_ = nullptr;

const std::vector<std::string> kFour = {"class_0", "class_1", "class_2", "class_3"};

TEST_F(PredictTest, TheRunRecordsItsClassNames) {
  absl::StatusOr<checkpoint::CheckpointHeader> h = checkpoint::ReadHeader(Checkpoint());
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(std::vector<std::string>(h->class_names().begin(), h->class_names().end()), kFour);
  const std::string manifest_path = *run_ + "/manifest.pbtxt";
  RunManifest m;
  ASSERT_TRUE(util::ParseTextProto(*util::ReadFile(manifest_path), manifest_path, &m).ok());
  EXPECT_EQ(std::vector<std::string>(m.class_names().begin(), m.class_names().end()), kFour);
}

// The images as predict sees them: sorted paths, the run's eval transform.
at::Tensor Images(const Classifier& c, const std::vector<std::string>& paths) {
  std::vector<at::Tensor> xs;
  for (const std::string& p : paths) {
    data::Example ex;
    ex.encoded = *util::ReadFile(p);
    data::SampleRng rng(0);
    xs.push_back(*c.transform->ApplyExample(ex, rng));
  }
  return at::stack(xs);
}

// The fine-tuning evaluation's forward pass (apps/finetune.cc Evaluate): eval, NoGradGuard.
at::Tensor EvalPathLogits(const Classifier& c, const at::Tensor& images) {
  c10::NoGradGuard no_grad;
  models::ConvNeXtV2 model = c.model;  // a holder: the same module, not const
  model->eval();
  return model->forward(images);
}

TEST_F(PredictTest, InferencePathGivesTheEvaluationPathsLogits) {
  PredictOptions o;
  o.resume = Checkpoint();
  absl::StatusOr<Classifier> c = LoadClassifier(o);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->class_names, kFour);
  EXPECT_EQ(c->names_from, "checkpoint");
  absl::StatusOr<std::vector<std::string>> paths = ListImages({*images_});
  ASSERT_TRUE(paths.ok()) << paths.status();
  ASSERT_EQ(paths->size(), 5u);
  const at::Tensor images = Images(*c, *paths);
  ASSERT_EQ(images.sizes(), (std::vector<int64_t>{5, 3, 32, 32}));
  const at::Tensor reference = EvalPathLogits(*c, images);
  EXPECT_GT(reference.abs().max().item<double>(), 1e-3);  // a trained head, not zeros
  c->model->train();  // InferenceLogits must switch to eval itself
  const at::Tensor fast = InferenceLogits(c->model, images, /*bf16=*/false);
  EXPECT_FALSE(c->model->is_training());
  EXPECT_TRUE(at::allclose(fast, reference, 1e-5, 1e-6))
      << (fast - reference).abs().max().item<double>();
  const at::Tensor bf16 = InferenceLogits(c->model, images, /*bf16=*/true);
  EXPECT_EQ(bf16.scalar_type(), at::kFloat);
  const double diff = (bf16 - reference).abs().max().item<double>();
  EXPECT_GT(diff, 0) << "bf16 autocast did not change anything: was it on?";
  EXPECT_LT(diff, 0.1 * reference.abs().max().item<double>() + 0.05);
}

TEST_F(PredictTest, PredictsEveryImageInBatchesWithNamesAndJsonLines) {
  PredictOptions o;
  o.resume = Checkpoint();
  o.inputs = {*images_};
  o.batch_size = 2;  // batches of 2, 2, 1
  o.top_k = 3;
  o.output = Dir("out") + "/p.jsonl";
  std::ostringstream printed;
  absl::StatusOr<std::vector<Prediction>> p = Predict(o, &printed);
  ASSERT_TRUE(p.ok()) << p.status();
  ASSERT_EQ(p->size(), 5u);
  absl::StatusOr<Classifier> c = LoadClassifier(o);
  ASSERT_TRUE(c.ok());
  std::vector<std::string> paths = *ListImages({*images_});
  const at::Tensor probs =
      at::softmax(EvalPathLogits(*c, Images(*c, paths)).to(at::kDouble), 1);
  std::ifstream json(o.output);
  for (size_t i = 0; i < 5; ++i) {
    const Prediction& pred = (*p)[i];
    EXPECT_EQ(pred.path, paths[i]);
    ASSERT_EQ(pred.top.size(), 3u);
    EXPECT_EQ(pred.top[0].index, probs[i].argmax().item<int64_t>()) << pred.path;
    for (size_t j = 0; j < 3; ++j) {
      const ClassScore& s = pred.top[j];
      EXPECT_EQ(s.name, kFour[s.index]);
      EXPECT_NEAR(s.probability, probs[i][s.index].item<double>(), 1e-5);
      if (j > 0) {
        EXPECT_GE(pred.top[j - 1].probability, s.probability);
      }
    }
    std::string line;
    ASSERT_TRUE(std::getline(json, line)) << "JSON line " << i;
    const nlohmann::json j = nlohmann::json::parse(line);
    EXPECT_EQ(j["path"], pred.path);
    ASSERT_EQ(j["top"].size(), 3u);
    EXPECT_EQ(j["top"][0]["name"], pred.top[0].name);
    EXPECT_EQ(j["top"][0]["index"], pred.top[0].index);
    EXPECT_NEAR(j["top"][0]["probability"].get<double>(), pred.top[0].probability, 1e-12);
  }
  EXPECT_NE(printed.str().find("4 classes (names: checkpoint), 5 image(s)"), std::string::npos)
      << printed.str();
  EXPECT_NE(printed.str().find("class_"), std::string::npos);
}

TEST_F(PredictTest, AThousandClassHeadWithoutNamesGetsImageNetNames) {
  const std::vector<std::string>& in1k = data::ImageNet1kClassNames();
  ASSERT_EQ(in1k.size(), 1000u);
  EXPECT_EQ(in1k[0], "tench");
  EXPECT_EQ(in1k[999], "toilet tissue");
  at::manual_seed(0);
  models::ConvNeXtV2 model = *models::CreateConvNeXtV2("convnextv2_atto", 1000);
  const std::string path = Dir("official") + "/atto_1k.pt";
  ASSERT_TRUE(checkpoint::ExportForPyTorch(*model, path).ok());
  PredictOptions o;
  o.resume = path;
  o.inputs = {*images_ + "/0.png"};
  absl::StatusOr<std::vector<Prediction>> p = Predict(o, nullptr);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("--model"), std::string::npos) << p.status();
  o.model = "convnextv2_atto";
  p = Predict(o, nullptr);
  ASSERT_TRUE(p.ok()) << p.status();
  ASSERT_EQ(p->size(), 1u);
  ASSERT_EQ((*p)[0].top.size(), 5u);
  for (const ClassScore& s : (*p)[0].top) EXPECT_EQ(s.name, in1k[s.index]);
}

void ExpectError(const PredictOptions& o, const std::string& needle) {
  absl::StatusOr<std::vector<Prediction>> p = Predict(o, nullptr);
  ASSERT_FALSE(p.ok()) << "accepted; expected an error with: " << needle;
  EXPECT_NE(p.status().message().find(needle), std::string::npos) << p.status();
}

TEST_F(PredictTest, BadInputsAreErrorsThatNameThem) {
  PredictOptions o;
  o.resume = Checkpoint();
  o.inputs = {*images_ + "/missing.jpg"};
  ExpectError(o, "no such image or folder: " + *images_ + "/missing.jpg");
  o.inputs = {Dir("empty")};
  ExpectError(o, "holds no images");
  const std::string bad = Dir("bad") + "/bad.png";
  ASSERT_TRUE(util::WriteFileAtomically(bad, "not a png at all").ok());
  o.inputs = {bad};
  ExpectError(o, bad);
  o.inputs = {*images_};
  o.resume = *run_ + "/nonexistent.pth";
  ExpectError(o, "no such checkpoint: " + o.resume);
  o.resume = Checkpoint();
  o.model = "convnextv2_femto";
  ExpectError(o, "is a convnextv2_atto checkpoint, not convnextv2_femto");
  // Weights of another variant in a file without a header: the strict load names the keys.
  models::ConvNeXtV2 femto = *models::CreateConvNeXtV2("convnextv2_femto", 4);
  o.resume = Dir("femto") + "/femto.pt";
  ASSERT_TRUE(checkpoint::ExportForPyTorch(*femto, o.resume).ok());
  o.model = "convnextv2_atto";
  ExpectError(o, "not convnextv2_atto weights");
}

}  // namespace
}  // namespace convnextv2::apps
