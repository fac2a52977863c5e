// The weights archive pre-training hands to fine-tuning (checkpoint/named_tensors.h): it loads
// into the fine-tuning model with all weights equal, and its errors name the key and the file.
#include "convnextv2/checkpoint/named_tensors.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "convnextv2/models/convnextv2.h"
#include "convnextv2/models/fcmae.h"
#include "convnextv2/util/files.h"

namespace convnextv2::checkpoint {
namespace {

std::string TempDir(const std::string& name) {
  const std::string dir = std::string(std::getenv("TEST_TMPDIR")) + "/" + name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

models::FCMAEOptions Tiny() {
  return models::FCMAEOptions().img_size(64).depths({1, 1, 2, 1}).dims({8, 16, 16, 24})
      .decoder_embed_dim(16).mask_ratio(0.5).norm_pix_loss(true);
}

// What a fine-tuning loader does with the archive: every classifier parameter but the final
// norm and head read from "encoder.<name>".
std::vector<std::string> LoadEncoder(const std::string& path, models::ConvNeXtV2Impl& net) {
  std::vector<std::string> missing;
  c10::NoGradGuard no_grad;
  for (auto& item : net.named_parameters()) {
    absl::StatusOr<at::Tensor> t = ReadNamedTensor(path, "encoder." + item.key());
    if (!t.ok()) {
      missing.push_back(item.key());
      continue;
    }
    EXPECT_EQ(t->sizes(), item.value().sizes()) << item.key();
    item.value().copy_(*t);
  }
  return missing;
}

TEST(PretrainWeightsTest, EncoderLoadsIntoTheFineTuningModelWithAllWeightsEqual) {
  at::manual_seed(7);
  models::FCMAE fcmae(Tiny());
  const std::string path = TempDir("weights") + "/fcmae_weights.pt";
  ASSERT_TRUE(SaveNamedTensors(fcmae->named_parameters(), path).ok());
  models::ConvNeXtV2 net(models::ConvNeXtV2Options().depths({1, 1, 2, 1}).dims({8, 16, 16, 24})
                             .num_classes(5));
  const std::vector<std::string> missing = LoadEncoder(path, *net);
  EXPECT_EQ(missing, (std::vector<std::string>{"norm.weight", "norm.bias", "head.weight",
                                               "head.bias"}));
  const auto enc = fcmae->encoder->named_parameters();
  for (const auto& item : enc) {
    EXPECT_TRUE(at::equal(item.value(), net->named_parameters()[item.key()])) << item.key();
  }
  // The decoder side is in the archive too, under the official names.
  for (const char* key : {"mask_token", "proj.weight", "decoder.0.grn.gamma", "pred.bias"}) {
    absl::StatusOr<at::Tensor> t = ReadNamedTensor(path, key);
    ASSERT_TRUE(t.ok()) << key;
    EXPECT_TRUE(at::equal(*t, fcmae->named_parameters()[key].contiguous())) << key;
  }
  // With nothing masked, the loaded classifier's trunk computes what the encoder computes.
  fcmae->eval();
  net->eval();
  const at::Tensor x = at::randn({2, 3, 64, 64});
  at::Tensor y = x.contiguous(at::MemoryFormat::ChannelsLast);
  for (size_t i = 0; i < 4; ++i) {
    y = net->downsample_layers[i]->as<torch::nn::Sequential>()->forward(y);
    y = net->stages[i]->as<torch::nn::Sequential>()->forward(y);
  }
  // Two float32 implementations (the encoder's masked blocks, the classifier's fused ones) sum
  // in different orders: outputs reach ~85 here and differ by up to ~7e-5 (about 1e-6 of the
  // largest), so the absolute tolerance follows the output's scale; a wrong weight or mask
  // moves them by O(1).
  const double scale = y.abs().max().item<double>();
  EXPECT_TRUE(
      at::allclose(fcmae->encoder->forward(x, at::zeros({2, 4})), y, 1e-4, 1e-5 * scale));
}

TEST(PretrainWeightsTest, ErrorsNameTheKeyAndTheFile) {
  const std::string dir = TempDir("bad");
  torch::OrderedDict<std::string, at::Tensor> one;
  one.insert("a.weight", at::ones({2}));
  ASSERT_TRUE(SaveNamedTensors(one, dir + "/w.pt").ok());
  absl::StatusOr<at::Tensor> t = ReadNamedTensor(dir + "/w.pt", "b.weight");
  EXPECT_EQ(t.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(std::string(t.status().message()).find("no tensor 'b.weight' in " + dir), std::string::npos);
  ASSERT_TRUE(util::WriteFileAtomically(dir + "/junk.pt", "not an archive").ok());
  EXPECT_EQ(ReadNamedTensor(dir + "/junk.pt", "a.weight").status().code(),
            absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace convnextv2::checkpoint
