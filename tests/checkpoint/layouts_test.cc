// Weight layouts, Hugging Face folders and the loaders behind --finetune, --eval and predict:
// timm's and transformers' names (transcribed here from the packages' own conversion rules,
// independently of layouts.cc's tables) convert to exactly the official state; folders load
// with their config.json; every kind of wrong input is refused naming what is wrong.
#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <regex>

#include "absl/strings/str_replace.h"
#include "convnextv2/checkpoint/hf_folder.h"
#include "convnextv2/checkpoint/layouts.h"
#include "convnextv2/checkpoint/pretrained.h"
#include "convnextv2/checkpoint/safetensors.h"
#include "convnextv2/checkpoint/state.h"
#include "convnextv2/models/registry.h"
#include "convnextv2/util/files.h"
#include "tests/checkpoint/weights_testing.h"

namespace convnextv2::checkpoint {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

using testing::FreshTmpDir;
using testing::PerturbedModel;
using testing::SmallLogits;

TensorMap State(const models::ConvNeXtV2& m) {
  TensorMap s;
  for (const auto& [k, v] : ModuleState(*m)) s[k] = v.detach().clone();
  return s;
}

// timm's convnext.py checkpoint_filter_fn, transcribed (it turns official files into timm's).
TensorMap ToTimm(const TensorMap& official, bool conv_mlp = true) {
  TensorMap out;
  for (const auto& [name, tensor] : official) {
    std::string k = name;
    at::Tensor v = tensor;
    k = absl::StrReplaceAll(k, {{"downsample_layers.0.", "stem."}});
    k = std::regex_replace(k, std::regex(R"(^stages\.([0-9]+)\.([0-9]+))"), "stages.$1.blocks.$2");
    k = std::regex_replace(k, std::regex(R"(downsample_layers\.([0-9]+)\.([0-9]+))"),
                           "stages.$1.downsample.$2");
    k = absl::StrReplaceAll(k, {{"dwconv", "conv_dw"}, {"pwconv", "mlp.fc"}});
    if (k.find("grn") != std::string::npos) {
      k = absl::StrReplaceAll(k, {{"grn.beta", "mlp.grn.bias"}, {"grn.gamma", "mlp.grn.weight"}});
      v = v.reshape({v.size(-1)});
    }
    if (k.rfind("head.", 0) == 0) k = "head.fc." + k.substr(5);
    if (k.rfind("norm.", 0) == 0) k = "head.norm." + k.substr(5);
    // atto..nano: timm's MLP is 1x1 convolutions.
    if (conv_mlp && v.dim() == 2 && k.find("mlp.fc") != std::string::npos) v = v.reshape({v.size(0), v.size(1), 1, 1});
    out[k] = v;
  }
  return out;
}

// The issue's table for transformers' ConvNextV2ForImageClassification.
TensorMap ToTransformers(const TensorMap& official) {
  TensorMap out;
  for (const auto& [name, v] : official) {
    std::string k = name;
    k = absl::StrReplaceAll(k, {{"downsample_layers.0.0.", "embeddings.patch_embeddings."},
                                {"downsample_layers.0.1.", "embeddings.layernorm."}});
    k = std::regex_replace(k, std::regex(R"(^downsample_layers\.([0-9]+)\.)"),
                           "encoder.stages.$1.downsampling_layer.");
    k = std::regex_replace(k, std::regex(R"(^stages\.([0-9]+)\.([0-9]+)\.norm\.)"),
                           "stages.$1.$2.layernorm.");
    k = std::regex_replace(k, std::regex(R"(^stages\.([0-9]+)\.([0-9]+)\.)"),
                           "encoder.stages.$1.layers.$2.");
    k = absl::StrReplaceAll(k, {{"grn.gamma", "grn.weight"}, {"grn.beta", "grn.bias"}});
    if (k.rfind("norm.", 0) == 0) k = "layernorm." + k.substr(5);
    out[k.rfind("head.", 0) == 0 ? "classifier." + k.substr(5) : "convnextv2." + k] = v;
  }
  return out;
}

void ExpectSameState(const TensorMap& a, const TensorMap& b) {
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [k, v] : a) {
    ASSERT_TRUE(b.count(k)) << "missing " << k;
    EXPECT_TRUE(b.at(k).sizes().equals(v.sizes())) << k;
    EXPECT_TRUE(b.at(k).equal(v)) << k;
  }
}

TEST(LayoutsTest, TimmAndTransformersNamesConvertToTheOfficialState) {
  const TensorMap official = State(PerturbedModel(models::kTestVariant, 10, 1));
  const TensorMap timm = ToTimm(official);
  ASSERT_TRUE(timm.count("stages.2.blocks.1.mlp.fc1.weight"));
  EXPECT_EQ(timm.at("stages.2.blocks.1.mlp.fc1.weight").dim(), 4);
  EXPECT_EQ(timm.at("stages.0.blocks.0.mlp.grn.weight").dim(), 1);
  EXPECT_TRUE(timm.count("stem.1.bias") && timm.count("stages.3.downsample.1.weight") &&
              timm.count("head.norm.weight") && timm.count("head.fc.bias"));
  EXPECT_EQ(DetectLayout(timm).name, "timm");
  ExpectSameState(official, DetectLayout(timm).to_official(timm));

  const TensorMap hf = ToTransformers(official);
  EXPECT_TRUE(hf.count("convnextv2.encoder.stages.1.layers.0.grn.weight") &&
              hf.count("convnextv2.encoder.stages.2.downsampling_layer.0.bias") &&
              hf.count("convnextv2.layernorm.weight") && hf.count("classifier.weight"));
  EXPECT_EQ(DetectLayout(hf).name, "transformers");
  ExpectSameState(official, DetectLayout(hf).to_official(hf));
  ExpectSameState(hf, FromOfficial(TransformersLayout(), official));

  // A bare ConvNextV2Model: transformers' names without "convnextv2." and no classifier.
  TensorMap bare;
  for (const auto& [k, v] : hf) {
    if (k.rfind("convnextv2.", 0) == 0) bare[k.substr(11)] = v;
  }
  EXPECT_EQ(DetectLayout(bare).name, "transformers");
  EXPECT_EQ(DetectLayout(bare).to_official(bare).size(), official.size() - 2);

  TensorMap encoder;  // convnextv2_*.fcmae: timm's names, no head
  for (const auto& [k, v] : timm) {
    if (k.rfind("head.", 0) != 0) encoder[k] = v;
  }
  EXPECT_EQ(DetectLayout(encoder).name, "timm FCMAE encoder");
  EXPECT_EQ(DetectLayout(official).name, "official");
  EXPECT_EQ(DetectLayout({{"encoder.stages.0.0.dwconv.kernel", at::zeros({49, 8})}}).name,
            "FCMAE sparse");

  const std::optional<Architecture> arch = InferArchitecture(official);
  ASSERT_TRUE(arch.has_value());
  EXPECT_EQ(DescribeArchitecture(*arch), "convnextv2_test (depths 1-1-2-1, dims 8-16-32-64)");
}

TEST(LayoutsTest, TimmFcmaeEncoderInitializesFineTuning) {
  const std::string dir = FreshTmpDir("fcmae_enc");
  const TensorMap official = State(PerturbedModel(models::kTestVariant, 10, 2));
  TensorMap encoder;
  for (const auto& [k, v] : ToTimm(official)) {
    if (k.rfind("head.", 0) != 0) encoder[k] = v;
  }
  ASSERT_TRUE(WriteSafetensors(dir + "/enc.safetensors", encoder, {{"format", "pt"}}).ok());
  models::ConvNeXtV2 target = *models::CreateConvNeXtV2(models::kTestVariant, 3);
  absl::StatusOr<PretrainedReport> r =
      InitFromPretrained(dir + "/enc.safetensors", "model|module", "", *target, true);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->format, "safetensors");
  EXPECT_EQ(r->layout, "timm FCMAE encoder");
  EXPECT_THAT(r->load.missing, ElementsAre("head.bias", "head.weight", "norm.bias", "norm.weight"));
  EXPECT_TRUE(r->load.unexpected.empty());
  EXPECT_TRUE(ModuleState(*target).at("stages.2.1.grn.gamma").equal(official.at("stages.2.1.grn.gamma")));
  const std::vector<std::string> log = DescribeLoad("enc.safetensors", *r);
  EXPECT_THAT(log.front(), HasSubstr("(safetensors) in the timm FCMAE encoder layout"));
}

TEST(HfFolderTest, WrittenFolderLoadsWithItsConfig) {
  const std::string dir = FreshTmpDir("hf") + "/model";
  const models::ConvNeXtV2 source = PerturbedModel(models::kTestVariant, 3, 4);
  const Architecture arch = *InferArchitecture(State(source));
  ASSERT_TRUE(WriteHfFolder(dir, arch, FromOfficial(TransformersLayout(), State(source)),
                            {"cat", "dog"}).ok());
  EXPECT_TRUE(fs::exists(dir + "/model.safetensors") && fs::exists(dir + "/config.json"));
  absl::StatusOr<HfConfig> config = ReadHfConfig(dir);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->layer_norm_eps, 1e-6);
  EXPECT_THAT(config->class_names, ElementsAre("cat", "dog", "LABEL_2"));
  absl::StatusOr<InferenceModel> loaded = LoadInferenceModel(dir, "", "model");
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->variant, models::kTestVariant);
  EXPECT_EQ(loaded->report.layout, "transformers");
  EXPECT_THAT(loaded->class_names, ElementsAre("cat", "dog", "LABEL_2"));
  EXPECT_TRUE(SmallLogits(loaded->model).equal(SmallLogits(source)));
  // Refused over an existing folder, which stays as it was.
  absl::Status again = WriteHfFolder(dir, arch, {}, {});
  EXPECT_THAT(std::string(again.message()), HasSubstr(dir + " exists"));
  EXPECT_TRUE(fs::exists(dir + "/model.safetensors"));
  for (const auto& e : fs::directory_iterator(fs::path(dir).parent_path())) {
    EXPECT_EQ(e.path().filename().string(), "model") << "left behind: " << e.path();
  }

  // transformers' default final-norm eps (1e-12) is the final norm's.
  std::string text = *util::ReadFile(dir + "/config.json");
  text = absl::StrReplaceAll(text, {{"\"layer_norm_eps\": 1e-06", "\"layer_norm_eps\": 1e-12"}});
  ASSERT_TRUE(util::WriteFileAtomically(dir + "/config.json", text).ok());
  loaded = LoadInferenceModel(dir, "", "model");
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->report.final_norm_eps, 1e-12);
  EXPECT_EQ(loaded->model->norm->options.eps(), 1e-12);
}

TEST(HfFolderTest, BadInputIsRefusedNamingWhatIsWrong) {
  const std::string dir = FreshTmpDir("hf_bad");
  const models::ConvNeXtV2 model = PerturbedModel(models::kTestVariant, 3, 5);
  const auto init = [&](const std::string& path, const std::string& variant) {
    models::ConvNeXtV2 m = *models::CreateConvNeXtV2(variant, 3);
    return std::string(InitFromPretrained(path, "model", "", *m, true).status().message());
  };
  // A folder with config.json and no weights; a folder without config.json.
  fs::create_directories(dir + "/noweights");
  ASSERT_TRUE(util::WriteFileAtomically(dir + "/noweights/config.json",
                                        HfConfigJson(*InferArchitecture(State(model)), 3, {})).ok());
  EXPECT_THAT(init(dir + "/noweights", models::kTestVariant),
              HasSubstr("model folder " + dir + "/noweights has config.json but no weights"));
  fs::create_directories(dir + "/empty");
  EXPECT_THAT(init(dir + "/empty", models::kTestVariant),
              HasSubstr(dir + "/empty is a folder without config.json"));
  // config.json of another variant.
  const Architecture atto{{2, 2, 6, 2}, {40, 80, 160, 320}};
  ASSERT_TRUE(WriteHfFolder(dir + "/atto", atto,
                            FromOfficial(TransformersLayout(), State(model)), {}).ok());
  EXPECT_THAT(init(dir + "/atto", models::kTestVariant),
              HasSubstr(dir + "/atto/config.json: depths and hidden_sizes describe convnextv2_atto "
                        "(depths 2-2-6-2, dims 40-80-160-320), but the model (--model, "
                        "model.model) is convnextv2_test (depths 1-1-2-1, dims 8-16-32-64)"));
  // timm's convnextv2_tiny weights for convnextv2_atto.
  ASSERT_TRUE(WriteSafetensors(dir + "/tiny.safetensors",
                               ToTimm(State(PerturbedModel("convnextv2_tiny", 3, 6)), /*conv_mlp=*/false), {}).ok());
  EXPECT_THAT(init(dir + "/tiny.safetensors", "convnextv2_atto"),
              HasSubstr(dir + "/tiny.safetensors holds the weights of convnextv2_tiny (depths "
                        "3-3-9-3, dims 96-192-384-768) (timm layout), but the model (--model, "
                        "model.model) is convnextv2_atto"));
  // A safetensors header that lies about its length.
  std::string bytes = SerializeSafetensors(State(model), {});
  bytes[3] = static_cast<char>(0x10);  // 2^28 more header bytes than there are
  ASSERT_TRUE(util::WriteFileAtomically(dir + "/lying.safetensors", bytes).ok());
  EXPECT_THAT(init(dir + "/lying.safetensors", models::kTestVariant),
              HasSubstr(dir + "/lying.safetensors: the header length says"));
  // Encoder-only weights cannot classify.
  TensorMap encoder = State(model);
  encoder.erase("head.weight");
  encoder.erase("head.bias");
  ASSERT_TRUE(WriteSafetensors(dir + "/enc.safetensors", encoder, {}).ok());
  EXPECT_THAT(std::string(LoadInferenceModel(dir + "/enc.safetensors", "", "model").status().message()),
              HasSubstr("has no classifier head"));
}

}  // namespace
}  // namespace convnextv2::checkpoint
