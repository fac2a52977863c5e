// Pre-training outputs: the reconstruction PNG (per epoch, every vis_freq steps, and on demand
// from a checkpoint), a whole tiny run, image folders with any class count, AMP, exact resume.
// (The weights archive: tests/checkpoint/named_tensors_test.cc; the official weight-decay
// groups: tests/optim/param_groups_test.cc.)
#include "convnextv2/apps/pretrain.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"

#include "convnextv2/apps/reconstruction_grid.h"
#include "convnextv2/apps/visualize.h"
#include "convnextv2/checkpoint/file.h"
#include "convnextv2/checkpoint/named_tensors.h"
#include "convnextv2/config/config.h"
#include "convnextv2/models/fcmae.h"
#include "convnextv2/util/files.h"

namespace convnextv2::apps {
namespace {

std::string TempDir(const std::string& name) {
  const std::string dir = std::string(std::getenv("TEST_TMPDIR")) + "/" + name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

TEST(ReconstructionGridTest, ColumnsShowOriginalMaskedAndDenormalizedPrediction) {
  at::manual_seed(3);
  const int64_t n = 2, s = 64, g = 2;
  const at::Tensor images = at::randn({n, 3, s, s}).clamp(-1.5, 1.5);
  const at::Tensor mask = at::tensor({0.f, 1.f, 1.f, 0.f, 1.f, 1.f, 0.f, 1.f}).reshape({n, 4});
  // A perfect norm_pix prediction: the normalized target, as the decoder's (N, D, h, w) map.
  const at::Tensor target = models::NormalizePatches(models::Patchify(images, 32));
  const at::Tensor pred = target.permute({0, 2, 1}).reshape({n, 3072, 2, 2});
  GridOptions o;
  const at::Tensor grid = ReconstructionGrid(images, pred, mask, o);
  ASSERT_EQ(grid.sizes(), (std::vector<int64_t>{n * s + (n + 1) * g, 4 * s + 5 * g, 3}));
  auto tile = [&](int64_t row, int col) {
    return grid.narrow(0, g + row * (s + g), s).narrow(1, g + col * (s + g), s).to(at::kInt);
  };
  for (int64_t i = 0; i < n; ++i) {
    // Reconstruction (de-normalized per patch) and the pasted version equal the original.
    EXPECT_LE((tile(i, 2) - tile(i, 0)).abs().max().item<int>(), 1);
    EXPECT_LE((tile(i, 3) - tile(i, 0)).abs().max().item<int>(), 1);
  }
  // Masked input: sample 0's patch (0, 1) is removed (gray), patch (0, 0) visible.
  const at::Tensor masked = tile(0, 1);
  EXPECT_EQ(masked.narrow(0, 0, 32).narrow(1, 32, 32).eq(128).all().item<bool>(), true);
  EXPECT_TRUE(at::equal(masked.narrow(0, 0, 32).narrow(1, 0, 32),
                        tile(0, 0).narrow(0, 0, 32).narrow(1, 0, 32)));
  // The PNG holds exactly these pixels (RGB order).
  const std::string path = TempDir("png") + "/grid.png";
  ASSERT_TRUE(WritePng(grid, path).ok());
  const cv::Mat bgr = cv::imread(path, cv::IMREAD_COLOR);
  ASSERT_EQ(bgr.rows, grid.size(0));
  ASSERT_EQ(bgr.cols, grid.size(1));
  const cv::Vec3b px = bgr.at<cv::Vec3b>(g + 5, g + 7);
  EXPECT_EQ(px[2], grid[g + 5][g + 7][0].item<uint8_t>());
  EXPECT_EQ(px[0], grid[g + 5][g + 7][2].item<uint8_t>());
}

// The pretrain defaults with `body` (text format) merged in, writing to `out_dir`. The runs
// below use the test-only tiny model (models/variants.h): they check the run, not the model.
ExperimentConfig PretrainConfig(const char* body, const std::string& out_dir) {
  ExperimentConfig c = config::ModeDefaults(config::Mode::kPretrain);
  absl::StatusOr<ExperimentConfig> parsed = config::ParseText(body, "inline");
  EXPECT_TRUE(parsed.ok()) << parsed.status();
  if (parsed.ok()) c.MergeFrom(*parsed);
  c.mutable_output()->set_output_dir(out_dir);
  const absl::Status valid = config::Validate(c, config::Mode::kPretrain);
  if (!valid.ok()) {
    ADD_FAILURE() << valid;
    std::abort();  // never train on a config the binary would refuse
  }
  return c;
}

TEST(RunPretrainTest, TinyRunWritesLogPicturesAndWeights) {
  const std::string dir = TempDir("run");
  ExperimentConfig c = PretrainConfig(R"pb(
    model { model: "convnextv2_test" input_size: 64 }
    fcmae { decoder_embed_dim: 32 vis_images: 3 mask_ratio: 0.5 }
    data { data_set: "synthetic" synthetic_train_size: 24 }
    optim { blr: 1e-2 }
    schedule { warmup_epochs: 0 }
    train { batch_size: 4 epochs: 2 update_freq: 2 num_threads: 2 print_freq: 100 }
  )pb", dir);
  absl::StatusOr<PretrainResult> r = RunPretrain(c);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->epochs.size(), 2u);
  EXPECT_GT(r->epochs[1].train_lr, 0.0);
  std::ifstream log(dir + "/log.txt");
  std::string line;
  int lines = 0;
  while (std::getline(log, line)) {
    EXPECT_EQ(line.rfind("{\"train_lr\": ", 0), 0u) << line;
    EXPECT_NE(line.find("\"epoch\": " + std::to_string(lines) + ", \"n_parameters\": " +
                        std::to_string(r->n_parameters) + "}"),
              std::string::npos)
        << line;
    ++lines;
  }
  EXPECT_EQ(lines, 2);
  for (int e : {0, 1}) {
    const cv::Mat png = cv::imread(dir + "/" + ReconstructionFileName(e));
    EXPECT_EQ(png.rows, 3 * 64 + 4 * 2) << e;
  }
  EXPECT_EQ(r->weights_path, dir + "/fcmae_weights.pt");
  EXPECT_TRUE(
      checkpoint::ReadNamedTensor(r->weights_path, "encoder.stages.2.1.pwconv2.weight").ok());
  // Not enough images for one optimizer step: a clear error, not a silent empty run.
  c.mutable_train()->set_batch_size(16);
  absl::StatusOr<PretrainResult> none = RunPretrain(c);
  EXPECT_EQ(none.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(none.status().message()).find("train.update_freq 2"), std::string::npos);
}

// ---- exact resume ---------------------------------------------------------------------------
// 3 epochs of 4 steps; DropPath on so the restored torch RNG state matters, and the masks come
// from (seed, epoch, step) generators.
ExperimentConfig ResumeRun(const std::string& out_dir) {
  return PretrainConfig(R"pb(
    model { model: "convnextv2_test" input_size: 64 drop_path: 0.2 }
    fcmae { decoder_embed_dim: 16 vis_images: 0 mask_ratio: 0.5 }
    data { data_set: "synthetic" synthetic_train_size: 16 }
    optim { blr: 1e-2 }
    schedule { warmup_epochs: 1 }
    train { batch_size: 4 epochs: 3 num_threads: 1 print_freq: 100 seed: 3 }
  )pb", out_dir);
}

std::string ReadAll(const std::string& path) {
  absl::StatusOr<std::string> s = util::ReadFile(path);
  return s.ok() ? *s : "";
}

void ExpectSameCheckpoint(const std::string& a_path, const std::string& b_path) {
  absl::StatusOr<checkpoint::Checkpoint> a = checkpoint::ReadCheckpoint(a_path);
  absl::StatusOr<checkpoint::Checkpoint> b = checkpoint::ReadCheckpoint(b_path);
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(a->header.model(), "fcmae_convnextv2_test");
  EXPECT_EQ(a->header.global_step(), b->header.global_step());
  ASSERT_EQ(a->tensors.size(), b->tensors.size());
  int model_tensors = 0, optimizer_tensors = 0;
  for (const auto& [name, t] : a->tensors) {
    const at::Tensor* other = b->Find(name);
    ASSERT_NE(other, nullptr) << name;
    EXPECT_TRUE(at::equal(t, *other)) << name << " differs";
    model_tensors += name.rfind("model.", 0) == 0;
    optimizer_tensors += name.rfind("optimizer.", 0) == 0;
  }
  // The FCMAE state dict: encoder, decoder, mask token, proj and pred.
  for (const char* name : {"model.encoder.stages.3.0.pwconv2.weight", "model.mask_token",
                           "model.proj.weight", "model.pred.weight"}) {
    EXPECT_NE(a->Find(name), nullptr) << name;
  }
  EXPECT_GT(model_tensors, 50);
  EXPECT_GT(optimizer_tensors, 100);
}

class PretrainResumeTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    reference_ = new std::string(TempDir("uninterrupted"));
    absl::StatusOr<PretrainResult> r = RunPretrain(ResumeRun(*reference_));
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_EQ(r->epochs.size(), 3u);
    ASSERT_FALSE(r->preempted);
  }
  static std::string* reference_;
};
std::string* PretrainResumeTest::reference_ = nullptr;

TEST_F(PretrainResumeTest, AfterAnEpochIsBitwiseIdentical) {
  const std::string dir = TempDir("after_epoch");
  absl::StatusOr<PretrainResult> first =
      RunPretrain(ResumeRun(dir), {.stop_epoch = 1, .stop_step = 0});
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_TRUE(first->preempted);
  ASSERT_EQ(first->epochs.size(), 1u);
  // Resume from the end-of-epoch checkpoint; a log row without a checkpoint must be dropped.
  std::filesystem::remove(dir + "/checkpoint-1-step0.pth");
  ASSERT_TRUE(std::filesystem::exists(dir + "/checkpoint-0.pth"));
  { std::ofstream(dir + "/log.txt", std::ios::app) << "{\"train_lr\": 9, \"epoch\": 1}\n"; }
  absl::StatusOr<PretrainResult> second = RunPretrain(ResumeRun(dir));
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_FALSE(second->preempted);
  EXPECT_EQ(second->epochs.size(), 2u);
  ExpectSameCheckpoint(*reference_ + "/checkpoint-2.pth", dir + "/checkpoint-2.pth");
  EXPECT_EQ(ReadAll(*reference_ + "/log.txt"), ReadAll(dir + "/log.txt"));
}

TEST_F(PretrainResumeTest, MidEpochIsBitwiseIdentical) {
  const std::string dir = TempDir("mid_epoch");
  absl::StatusOr<PretrainResult> first =
      RunPretrain(ResumeRun(dir), {.stop_epoch = 1, .stop_step = 2});
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_TRUE(first->preempted);
  ASSERT_TRUE(std::filesystem::exists(dir + "/checkpoint-1-step2.pth"));
  absl::StatusOr<PretrainResult> second = RunPretrain(ResumeRun(dir));
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->epochs.size(), 2u);
  EXPECT_FALSE(std::filesystem::exists(dir + "/checkpoint-1-step2.pth"));
  ExpectSameCheckpoint(*reference_ + "/checkpoint-2.pth", dir + "/checkpoint-2.pth");
  // The resumed epoch's mean loss and lr continue from the saved meters.
  EXPECT_EQ(ReadAll(*reference_ + "/log.txt"), ReadAll(dir + "/log.txt"));
}

TEST_F(PretrainResumeTest, ExplicitResumeOfAnotherKindIsAnError) {
  ExperimentConfig c = ResumeRun(TempDir("explicit"));
  c.mutable_checkpoint()->set_resume(*reference_ + "/checkpoint-2.pth");
  c.mutable_model()->set_model("convnextv2_femto");
  absl::StatusOr<PretrainResult> r = RunPretrain(c);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(std::string(r.status().message()).find("is a fcmae_convnextv2_test"),
            std::string::npos)
      << r.status();
}

// ---- reconstructions every vis_freq steps and on demand --------------------------------------

// Decoded pixels of a PNG (empty when unreadable), for exact comparisons.
std::vector<uint8_t> Pixels(const std::string& path, int* rows = nullptr, int* cols = nullptr) {
  const cv::Mat m = cv::imread(path, cv::IMREAD_COLOR);
  if (rows != nullptr) *rows = m.rows;
  if (cols != nullptr) *cols = m.cols;
  if (m.empty()) return {};
  return std::vector<uint8_t>(m.data, m.data + m.total() * m.elemSize());
}

class PretrainVisualizeTest : public ::testing::Test {
 protected:
  // 2 epochs of 4 steps, a picture every 3 steps and after each epoch.
  static void SetUpTestSuite() {
    dir_ = new std::string(TempDir("vis_run"));
    absl::StatusOr<PretrainResult> r = RunPretrain(PretrainConfig(R"pb(
      model { model: "convnextv2_test" input_size: 64 }
      fcmae { decoder_embed_dim: 16 vis_images: 3 mask_ratio: 0.5 vis_freq: 3 }
      data { data_set: "synthetic" synthetic_train_size: 16 }
      optim { blr: 5e-2 }
      schedule { warmup_epochs: 0 }
      train { batch_size: 4 epochs: 2 num_threads: 1 print_freq: 100 seed: 5 }
    )pb", *dir_));
    ASSERT_TRUE(r.ok()) << r.status();
  }
  static std::string* dir_;
};
std::string* PretrainVisualizeTest::dir_ = nullptr;

TEST_F(PretrainVisualizeTest, VisFreqWritesAPictureEveryNSteps) {
  const std::string& d = *dir_;
  EXPECT_EQ(ReconstructionFileName(1, 6), "reconstruction-0001-step000006.png");
  std::set<std::string> pngs;
  for (const auto& e : std::filesystem::directory_iterator(d)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("reconstruction-", 0) == 0) pngs.insert(name);
  }
  EXPECT_EQ(pngs, (std::set<std::string>{"reconstruction-0000.png", "reconstruction-0001.png",
                                         "reconstruction-0000-step000003.png",
                                         "reconstruction-0001-step000006.png"}));
  int rows = 0, cols = 0;
  EXPECT_FALSE(Pixels(d + "/reconstruction-0000-step000003.png", &rows, &cols).empty());
  EXPECT_EQ(rows, 3 * 64 + 4 * 2);
  EXPECT_EQ(cols, 4 * 64 + 5 * 2);
  // Weights change between step 3 and the end of epoch 0 (step 4), so the pictures do too.
  EXPECT_NE(Pixels(d + "/reconstruction-0000-step000003.png"),
            Pixels(d + "/reconstruction-0000.png"));
}

TEST_F(PretrainVisualizeTest, CheckpointGridIsTheRunsPictureOfThatEpochAndDeterministic) {
  const std::string& d = *dir_;
  const std::string ckpt = d + "/checkpoint-0.pth";
  // --vis_output is relative to where the user runs the binary.
  std::filesystem::current_path(TempDir("cwd"));
  const std::string cwd = std::filesystem::current_path().string();
  const char* argv[] = {"pretrain", "--visualize", ckpt.c_str(), "--vis_output", "vis/a.png"};
  absl::StatusOr<ExperimentConfig> c = VisualizeConfig(5, argv);
  ASSERT_TRUE(c.ok()) << c.status();
  // The base is the run's stored config; the flags apply over it, paths resolved.
  EXPECT_EQ(c->model().input_size(), 64);
  EXPECT_EQ(c->fcmae().decoder_embed_dim(), 16);
  EXPECT_EQ(c->train().seed(), 5);
  EXPECT_EQ(c->fcmae().vis_output(), cwd + "/vis/a.png");
  absl::StatusOr<std::string> png = VisualizeCheckpoint(*c);
  ASSERT_TRUE(png.ok()) << png.status();
  EXPECT_EQ(*png, cwd + "/vis/a.png");
  int rows = 0, cols = 0;
  const std::vector<uint8_t> drawn = Pixels(*png, &rows, &cols);
  EXPECT_EQ(rows, 3 * 64 + 4 * 2);
  EXPECT_EQ(cols, 4 * 64 + 5 * 2);
  EXPECT_EQ(drawn, Pixels(d + "/reconstruction-0000.png"));
  // Again, into the default place next to the checkpoint: the same picture.
  ExperimentConfig again = *c;
  again.mutable_fcmae()->clear_vis_output();
  absl::StatusOr<std::string> second = VisualizeCheckpoint(again);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(*second, d + "/checkpoint-0-reconstruction.png");
  EXPECT_EQ(util::ReadFile(*second).value(), util::ReadFile(*png).value());
  // Another epoch's checkpoint draws that epoch's picture; fewer images make fewer rows.
  const std::string ckpt1 = d + "/checkpoint-1.pth";
  const char* argv2[] = {"pretrain", "--visualize", ckpt1.c_str(), "--vis_images", "2"};
  absl::StatusOr<ExperimentConfig> c1 = VisualizeConfig(5, argv2);
  ASSERT_TRUE(c1.ok()) << c1.status();
  absl::StatusOr<std::string> png1 = VisualizeCheckpoint(*c1);
  ASSERT_TRUE(png1.ok()) << png1.status();
  Pixels(*png1, &rows, &cols);
  EXPECT_EQ(rows, 2 * 64 + 3 * 2);
  EXPECT_EQ(cols, 4 * 64 + 5 * 2);
  // Its originals (first column) are the first two of the run's pictures.
  const cv::Mat full = cv::imread(d + "/reconstruction-0001.png");
  const cv::Mat two = cv::imread(*png1);
  const cv::Rect originals(0, 0, 2 + 64, 2 * 64 + 3 * 2);
  EXPECT_EQ(cv::norm(full(originals), two(originals), cv::NORM_INF), 0.0);
}

TEST_F(PretrainVisualizeTest, ErrorsNameWhatIsWrong) {
  const std::string ckpt = *dir_ + "/checkpoint-0.pth";
  const char* with_config[] = {"pretrain", "--visualize", ckpt.c_str(), "--config=x.pbtxt"};
  EXPECT_NE(std::string(VisualizeConfig(4, with_config).status().message())
                .find("--config cannot be used with --visualize"),
            std::string::npos);
  const char* missing[] = {"pretrain", "--visualize", "/no/such/checkpoint-3.pth"};
  absl::StatusOr<ExperimentConfig> m = VisualizeConfig(3, missing);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(std::string(m.status().message()).find("/no/such/checkpoint-3.pth"),
            std::string::npos) << m.status();
  const char* other[] = {"pretrain", "--visualize", ckpt.c_str(), "--model", "convnextv2_femto"};
  absl::StatusOr<ExperimentConfig> c = VisualizeConfig(5, other);
  ASSERT_TRUE(c.ok()) << c.status();
  absl::StatusOr<std::string> png = VisualizeCheckpoint(*c);
  ASSERT_FALSE(png.ok());
  EXPECT_NE(std::string(png.status().message())
                .find("is a fcmae_convnextv2_test checkpoint, not fcmae_convnextv2_femto"),
            std::string::npos) << png.status();
}

// ---- image folders: labels are unused --------------------------------------------------------

void WritePngFile(const std::string& path, int seed) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  cv::Mat m(48, 40, CV_8UC3);
  cv::randu(m, cv::Scalar::all(seed), cv::Scalar::all(200 + seed));
  ASSERT_TRUE(cv::imwrite(path, m));
}

TEST(PretrainImageFolderTest, AnyClassCountAndImnetReadsTrain) {
  const std::string root = TempDir("folders");
  for (int i = 0; i < 8; ++i) {
    WritePngFile(absl::StrCat(root, "/train/", std::string(1, "abc"[i % 3]), "/", i, ".png"), i);
  }
  // nb_classes stays 1000 (the default) although there are 3 class folders.
  for (const auto& [data_set, path] : std::vector<std::pair<std::string, std::string>>{
           {"IMNET", root}, {"image_folder", root + "/train"}}) {
    ExperimentConfig c = PretrainConfig(R"pb(
      model { model: "convnextv2_test" input_size: 64 }
      fcmae { decoder_embed_dim: 16 vis_images: 2 }
      optim { blr: 1e-2 }
      schedule { warmup_epochs: 0 }
      train { batch_size: 4 epochs: 1 num_threads: 1 print_freq: 100 }
    )pb", TempDir("folder_run_" + data_set));
    c.mutable_data()->set_data_set(data_set);
    c.mutable_data()->set_data_path(path);
    ASSERT_EQ(c.model().nb_classes(), 1000);
    absl::StatusOr<PretrainResult> r = RunPretrain(c);
    ASSERT_TRUE(r.ok()) << data_set << ": " << r.status();
    ASSERT_EQ(r->epochs.size(), 1u);
    EXPECT_TRUE(std::isfinite(r->epochs[0].train_loss));
  }
}

// ---- mixed precision -------------------------------------------------------------------------

ExperimentConfig AmpRun(const std::string& out_dir) {
  return PretrainConfig(R"pb(
    model { model: "convnextv2_test" input_size: 64 }
    fcmae { decoder_embed_dim: 16 vis_images: 0 mask_ratio: 0.5 }
    data { data_set: "synthetic" synthetic_train_size: 16 }
    optim { blr: 1e-2 }
    schedule { warmup_epochs: 0 }
    train { batch_size: 4 epochs: 3 num_threads: 1 print_freq: 100 seed: 3 use_amp: true
            update_freq: 2 }
  )pb", out_dir);
}

TEST(PretrainAmpTest, LossFallsAndResumeIsBitwiseIdenticalWithTheScaler) {
  const std::string reference = TempDir("amp_reference");
  absl::StatusOr<PretrainResult> full = RunPretrain(AmpRun(reference));
  ASSERT_TRUE(full.ok()) << full.status();
  ASSERT_EQ(full->epochs.size(), 3u);
  for (const PretrainEpochStats& e : full->epochs) EXPECT_TRUE(std::isfinite(e.train_loss));
  EXPECT_LT(full->epochs[2].train_loss, full->epochs[0].train_loss);
  absl::StatusOr<checkpoint::Checkpoint> ckpt =
      checkpoint::ReadCheckpoint(reference + "/checkpoint-2.pth");
  ASSERT_TRUE(ckpt.ok()) << ckpt.status();
  const at::Tensor* scale = ckpt->Find("scaler.scale");
  const at::Tensor* tracker = ckpt->Find("scaler.growth_tracker");
  ASSERT_NE(scale, nullptr);
  ASSERT_NE(tracker, nullptr);
  // 6 optimizer steps; a skipped one (inf/NaN) would have halved the scale and reset the count.
  EXPECT_EQ(scale->item<double>(), 65536.0);
  EXPECT_EQ(tracker->item<int64_t>(), 6);

  const std::string dir = TempDir("amp_resumed");
  absl::StatusOr<PretrainResult> first =
      RunPretrain(AmpRun(dir), {.stop_epoch = 1, .stop_step = 2});
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE(first->preempted);
  absl::StatusOr<PretrainResult> second = RunPretrain(AmpRun(dir));
  ASSERT_TRUE(second.ok()) << second.status();
  ExpectSameCheckpoint(reference + "/checkpoint-2.pth", dir + "/checkpoint-2.pth");
  EXPECT_EQ(ReadAll(reference + "/log.txt"), ReadAll(dir + "/log.txt"));
}

}  // namespace
}  // namespace convnextv2::apps
