// ConvNeXt V2: exact parameter counts, state-dict names and shapes (the official ones), output
// shapes, initialization.
#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/str_join.h"
#include "convnextv2/models/registry.h"
#include "convnextv2/models/variants.h"

namespace convnextv2::models {
namespace {

struct Expected {
  const char* name;
  int64_t params;   // with num_classes = 1000
  size_t entries;   // state-dict entries
};

// From the issue (and the official models/convnextv2.py).
constexpr Expected kExpected[] = {
    {"convnextv2_atto", 3708400, 140},    {"convnextv2_femto", 5233240, 140},
    {"convnextv2_pico", 9066280, 140},    {"convnextv2_nano", 15623800, 160},
    {"convnextv2_tiny", 28635496, 200},   {"convnextv2_base", 88717800, 380},
    {"convnextv2_large", 197956840, 380}, {"convnextv2_huge", 660289640, 380},
};

int64_t CountParams(ConvNeXtV2& model) {
  int64_t n = 0;
  for (const auto& p : model->named_parameters()) n += p.value().numel();
  return n;
}

// Parameters and state-dict entries of the official architecture, from the shapes alone (no
// weights allocated): stem conv 4x4 + LayerNorm; per downsampling LayerNorm + conv 2x2; per
// block dwconv 7x7, LayerNorm, pwconv1, GRN gamma/beta, pwconv2; final LayerNorm and head.
struct Count {
  int64_t params = 0;
  size_t entries = 0;
};
Count CountFromShapes(const Variant& v, int64_t num_classes) {
  Count c;
  auto add = [&c](int64_t n) {
    c.params += n;
    ++c.entries;
  };
  add(3 * v.dims[0] * 16), add(v.dims[0]);   // stem conv
  add(v.dims[0]), add(v.dims[0]);            // stem norm
  for (int i = 0; i < 3; ++i) {
    add(v.dims[i]), add(v.dims[i]);                            // norm
    add(v.dims[i] * v.dims[i + 1] * 4), add(v.dims[i + 1]);   // conv 2x2
  }
  for (int i = 0; i < 4; ++i) {
    const int64_t d = v.dims[i];
    for (int b = 0; b < v.depths[i]; ++b) {
      add(d * 49), add(d);              // dwconv
      add(d), add(d);                   // norm
      add(d * 4 * d), add(4 * d);       // pwconv1
      add(4 * d), add(4 * d);           // grn gamma, beta
      add(4 * d * d), add(d);           // pwconv2
    }
  }
  add(v.dims[3]), add(v.dims[3]);                          // final norm
  add(v.dims[3] * num_classes), add(num_classes);          // head
  return c;
}

class VariantTest : public testing::TestWithParam<Expected> {};

// Every variant's depths and widths give the official counts.
TEST_P(VariantTest, ParameterCountAndStateDictEntriesFromShapes) {
  const Expected& e = GetParam();
  absl::StatusOr<Variant> v = FindVariant(e.name);
  ASSERT_TRUE(v.ok()) << v.status();
  const Count c = CountFromShapes(*v, 1000);
  EXPECT_EQ(c.params, e.params);
  EXPECT_EQ(c.entries, e.entries);
  // CreateConvNeXtV2 builds the model from exactly these depths and widths.
  absl::StatusOr<ConvNeXtV2Options> options = VariantOptions(e.name);
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_EQ(options->depths(), std::vector<int64_t>(v->depths.begin(), v->depths.end()));
  EXPECT_EQ(options->dims(), std::vector<int64_t>(v->dims.begin(), v->dims.end()));
}

// The count from the shapes is the built model's for any depths and widths (so it can stand in
// for building the big variants): small irregular ones, cheap to build.
TEST(CountFromShapesTest, EqualsBuiltModels) {
  for (const Variant& v : {Variant{"a", {1, 1, 1, 1}, {4, 8, 12, 16}},
                           Variant{"b", {2, 1, 3, 1}, {8, 16, 24, 40}},
                           Variant{"c", {1, 3, 2, 4}, {6, 10, 14, 18}}}) {
    for (int64_t classes : {1, 7}) {
      ConvNeXtV2 model(ConvNeXtV2Options()
                           .depths({v.depths.begin(), v.depths.end()})
                           .dims({v.dims.begin(), v.dims.end()})
                           .num_classes(classes));
      const Count c = CountFromShapes(v, classes);
      EXPECT_EQ(CountParams(model), c.params) << v.name << " " << classes;
      EXPECT_EQ(model->named_parameters().size() + model->named_buffers().size(), c.entries)
          << v.name << " " << classes;
    }
  }
}

// The built model has them: every variant up to tiny. Base, large and huge (0.35, 0.8 and
// 2.6 GB of weights, most of this test's time to initialize, for the same code with other
// numbers) are counted from the shapes above, which equal the built models for any shapes.
TEST_P(VariantTest, ParameterCountAndStateDictEntries) {
  const Expected& e = GetParam();
  if (e.params > 50000000) {
    GTEST_SKIP() << "counted from the shapes above; the same code builds the others";
  }
  absl::StatusOr<ConvNeXtV2> model = CreateConvNeXtV2(e.name, 1000);
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ(CountParams(*model), e.params);
  // No buffers: the state dict is exactly the parameters.
  EXPECT_EQ((*model)->named_parameters().size() + (*model)->named_buffers().size(), e.entries);
}

TEST_P(VariantTest, OutputShape) {
  const Expected& e = GetParam();
  if (e.params > 50000000) {
    GTEST_SKIP() << "counted above; the forward pass of the largest three is left out for time";
  }
  absl::StatusOr<ConvNeXtV2> model = CreateConvNeXtV2(e.name, 7);
  ASSERT_TRUE(model.ok());
  c10::NoGradGuard no_grad;
  (*model)->eval();
  const at::Tensor x = at::randn({2, 3, 64, 64});
  EXPECT_EQ((*model)->forward(x).sizes(), (std::vector<int64_t>{2, 7}));
  EXPECT_EQ((*model)->forward_features(x).sizes(),
            (std::vector<int64_t>{2, (*model)->options.dims()[3]}));
}

INSTANTIATE_TEST_SUITE_P(AllVariants, VariantTest, testing::ValuesIn(kExpected),
                         [](const auto& info) { return std::string(info.param.name); });

std::string TestData(const std::string& name) {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  const char* workspace = std::getenv("TEST_WORKSPACE");
  return std::string(srcdir ? srcdir : ".") + "/" + (workspace ? workspace : "convnextv2") +
         "/tests/models/testdata/" + name;
}

TEST(ConvNeXtV2, AttoStateDictMatchesOfficialNamesAndShapes) {
  // Written from the official PyTorch model: "name dim0xdim1..." per line, in module order.
  std::ifstream in(TestData("convnextv2_atto_state_dict.txt"));
  ASSERT_TRUE(in) << "missing testdata";
  std::vector<std::string> expected;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) expected.push_back(line);
  }
  ASSERT_EQ(expected.size(), 140u);
  ConvNeXtV2 model = *CreateConvNeXtV2("convnextv2_atto", 1000);
  std::vector<std::string> actual;
  for (const auto& p : model->named_parameters()) {
    actual.push_back(p.key() + " " + absl::StrJoin(p.value().sizes(), "x"));
  }
  EXPECT_EQ(actual, expected);
}

TEST(ConvNeXtV2, InitializationAsOfficial) {
  at::manual_seed(0);
  ConvNeXtV2 model = *CreateConvNeXtV2("convnextv2_atto", 10, 0.0, /*head_init_scale=*/0.5);
  for (const auto& p : model->named_parameters()) {
    const std::string& name = p.key();
    const at::Tensor& t = p.value();
    if (name.find("grn.") != std::string::npos) {
      EXPECT_EQ(t.abs().max().item<float>(), 0.f) << name;  // GRN gamma, beta start at zero
    } else if (name.size() > 5 && name.substr(name.size() - 5) == ".bias") {
      EXPECT_EQ(t.abs().max().item<float>(), 0.f) << name;
    }
  }
  // Truncated normal std .02 on the pwconv1 weights: std close to .02, nothing beyond 2.
  const at::Tensor w = model->named_parameters()["stages.2.0.pwconv1.weight"];
  EXPECT_NEAR(w.std().item<double>(), 0.02, 0.001);
  // The head is scaled by head_init_scale: std .01.
  EXPECT_NEAR(model->head->weight.std().item<double>(), 0.01, 0.002);
  // LayerNorm weights are ones.
  EXPECT_EQ(model->named_parameters()["downsample_layers.1.0.weight"].min().item<float>(), 1.f);
}

TEST(ConvNeXtV2, DropPathRatesAreLinearOverBlocks) {
  ConvNeXtV2 model = *CreateConvNeXtV2("convnextv2_atto", 10, /*drop_path_rate=*/0.3);
  std::vector<double> rates;
  for (const auto& m : model->modules(/*include_self=*/false)) {
    if (auto* block = m->as<BlockImpl>()) rates.push_back(block->options.drop_path());
  }
  ASSERT_EQ(rates.size(), 12u);
  EXPECT_DOUBLE_EQ(rates.front(), 0.0);
  EXPECT_NEAR(rates[6], 0.3 * 6 / 11, 1e-6);
  EXPECT_NEAR(rates.back(), 0.3, 1e-6);
}

// The test-only variant: tiny, built by name, counted like the others, never listed.
TEST(Registry, TestVariantIsTinyAndUnlisted) {
  absl::StatusOr<Variant> v = FindVariant(kTestVariant);
  ASSERT_TRUE(v.ok()) << v.status();
  absl::StatusOr<ConvNeXtV2> model = CreateConvNeXtV2(kTestVariant, 10);
  ASSERT_TRUE(model.ok()) << model.status();
  const Count c = CountFromShapes(*v, 10);
  EXPECT_EQ(CountParams(*model), c.params);
  EXPECT_LT(c.params, 100000);
  EXPECT_EQ(VariantNamesList().find(kTestVariant), std::string::npos);
  for (const Variant& official : AllVariants()) EXPECT_NE(official.name, kTestVariant);
}

TEST(Registry, UnknownModelNamesTheAllowedOnes) {
  absl::StatusOr<ConvNeXtV2> model = CreateConvNeXtV2("convnextv2_gigantic", 10);
  ASSERT_FALSE(model.ok());
  EXPECT_NE(model.status().message().find("convnextv2_atto"), std::string::npos);
  EXPECT_TRUE(FindVariant("convnext_pico").ok());  // the official builder's spelling
}

}  // namespace
}  // namespace convnextv2::models
