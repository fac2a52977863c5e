// `export`: every format reads back (through the loaders predict and --eval use) to the same
// logits and class names; bad requests are refused naming the flag or path, writing nothing.
#include "convnextv2/apps/export.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include "convnextv2/checkpoint/file.h"
#include "convnextv2/checkpoint/pretrained.h"
#include "convnextv2/checkpoint/state.h"
#include "convnextv2/models/registry.h"
#include "convnextv2/util/files.h"
#include "tests/checkpoint/weights_testing.h"

namespace convnextv2::apps {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// A convnextv2 "weights" checkpoint of a perturbed random model, with class names.
models::ConvNeXtV2 WriteRun(const std::string& path) {
  models::ConvNeXtV2 m = testing::PerturbedModel(models::kTestVariant, 3, 9);
  checkpoint::Checkpoint c;
  c.header.set_kind("weights");
  c.header.set_model(models::kTestVariant);
  for (const char* name : {"ant", "bee", "cow"}) c.header.add_class_names(name);
  checkpoint::AddModule(*m, "model.", &c);
  EXPECT_TRUE(checkpoint::WriteCheckpoint(path, c).ok());
  return m;
}

ExportOptions Options(const std::string& resume, const std::string& format,
                      const std::string& out) {
  ExportOptions o;
  o.resume = resume;
  o.format = format;
  o.out = out;
  return o;
}

TEST(ExportTest, EveryFormatLoadsBackToTheSameLogits) {
  const std::string dir = testing::FreshTmpDir("export");
  const models::ConvNeXtV2 source = WriteRun(dir + "/ckpt.pth");
  for (const ExportFormat& f : ExportFormats()) {
    const std::string out = dir + "/out." + f.name;
    ASSERT_TRUE(RunExport(Options(dir + "/ckpt.pth", f.name, out)).ok()) << f.name;
    if (f.name == "onnx") {  // not a weights file: tests/onnx runs it in onnxruntime
      EXPECT_EQ(util::ReadFile(out)->substr(0, 2), std::string("\x08\x08"));  // ir_version 8
      continue;
    }
    absl::StatusOr<checkpoint::InferenceModel> back =
        checkpoint::LoadInferenceModel(out, "", "model");
    ASSERT_TRUE(back.ok()) << f.name << ": " << back.status();
    EXPECT_EQ(back->variant, models::kTestVariant) << f.name;
    EXPECT_TRUE(testing::SmallLogits(back->model).equal(testing::SmallLogits(source))) << f.name;
    if (f.name == "hf") {
      EXPECT_THAT(back->class_names, ElementsAre("ant", "bee", "cow"));
    }
  }
  EXPECT_EQ(ExportFormatNames(), "safetensors, hf, pth, onnx");
  // A format's output converts again (timm-free round trip: hf -> pth).
  ASSERT_TRUE(RunExport(Options(dir + "/out.hf", "pth", dir + "/again.pth")).ok());
}

TEST(ExportTest, BadRequestsWriteNothing) {
  const std::string dir = testing::FreshTmpDir("export_bad");
  WriteRun(dir + "/ckpt.pth");
  absl::Status s = RunExport(Options(dir + "/ckpt.pth", "safetensor", dir + "/x"));
  EXPECT_THAT(std::string(s.message()),
              HasSubstr("--format: unknown format 'safetensor'; known: safetensors, hf, pth, onnx"));
  ExportOptions fp16_pth = Options(dir + "/ckpt.pth", "pth", dir + "/x");
  fp16_pth.precision = "fp16";
  EXPECT_THAT(std::string(RunExport(fp16_pth).message()),
              HasSubstr("apply to --format onnx only, not pth"));
  ExportOptions fp8 = Options(dir + "/ckpt.pth", "onnx", dir + "/x");
  fp8.precision = "fp8";
  EXPECT_THAT(std::string(RunExport(fp8).message()), HasSubstr("fp8"));
  fs::create_directories(dir + "/existing");
  ASSERT_TRUE(util::WriteFileAtomically(dir + "/existing/keep.txt", "mine").ok());
  s = RunExport(Options(dir + "/ckpt.pth", "hf", dir + "/existing"));
  EXPECT_EQ(s.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(std::string(s.message()), HasSubstr(dir + "/existing exists"));
  EXPECT_EQ(*util::ReadFile(dir + "/existing/keep.txt"), "mine");
  s = RunExport(Options(dir + "/ckpt.pth", "pth", dir + "/existing/keep.txt"));
  EXPECT_EQ(s.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(*util::ReadFile(dir + "/existing/keep.txt"), "mine");
  s = RunExport(Options(dir + "/missing.pth", "hf", dir + "/new"));
  EXPECT_THAT(std::string(s.message()), HasSubstr(dir + "/missing.pth"));
  ExportOptions wrong = Options(dir + "/ckpt.pth", "hf", dir + "/new");
  wrong.model = "convnextv2_atto";
  EXPECT_THAT(std::string(RunExport(wrong).message()), HasSubstr("but the model"));
  std::vector<std::string> left;
  for (const auto& e : fs::directory_iterator(dir)) left.push_back(e.path().filename().string());
  std::sort(left.begin(), left.end());
  EXPECT_THAT(left, ElementsAre("ckpt.pth", "existing"));
}

}  // namespace
}  // namespace convnextv2::apps
