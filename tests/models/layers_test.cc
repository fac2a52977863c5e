// LayerNorm, GRN and depthwise convolution (plain and fused), DropPath against their definitions;
// the inference fold of GRN into pwconv2 against the training path.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/GradMode.h>
#include <c10/core/InferenceMode.h>
#include <gtest/gtest.h>
#include <torch/autograd.h>
#include <torch/csrc/autograd/generated/variable_factories.h>

#include <cmath>
#include <vector>

#include "convnextv2/models/convnextv2.h"
#include "convnextv2/models/layers.h"

namespace convnextv2::models {
namespace {

TEST(LayerNorm, ChannelsFirstEqualsLayerNormOnPermutedTensor) {
  at::manual_seed(3);
  LayerNorm ln(LayerNormOptions(6).data_format(DataFormat::kChannelsFirst));
  {
    c10::NoGradGuard no_grad;
    ln->weight.uniform_(0.5, 1.5);
    ln->bias.uniform_(-1, 1);
  }
  const at::Tensor x = at::randn({2, 6, 5, 4}) * 3 + 1;
  const at::Tensor expected =
      at::layer_norm(x.permute({0, 2, 3, 1}), {6}, ln->weight, ln->bias, 1e-6)
          .permute({0, 3, 1, 2});
  EXPECT_TRUE(at::allclose(ln->forward(x), expected, 1e-5, 1e-6));
  // And the official formula: (x - mean_C) / sqrt(var_C + eps) * w + b, biased variance.
  const at::Tensor u = x.mean(1, true);
  const at::Tensor s = (x - u).pow(2).mean(1, true);
  const at::Tensor official = ln->weight.view({1, 6, 1, 1}) * ((x - u) / at::sqrt(s + 1e-6)) +
                              ln->bias.view({1, 6, 1, 1});
  EXPECT_TRUE(at::allclose(ln->forward(x), official, 1e-4, 1e-5));
  // A channels_last input gives the same values.
  EXPECT_TRUE(at::allclose(ln->forward(x.contiguous(at::MemoryFormat::ChannelsLast)), expected,
                           1e-5, 1e-6));
}

TEST(LayerNorm, RejectsWrongChannelCount) {
  LayerNorm ln(LayerNormOptions(6).data_format(DataFormat::kChannelsFirst));
  EXPECT_THROW(ln->forward(at::randn({1, 5, 2, 2})), c10::Error);
}

// A 1x2x2x2 tensor worked by hand.
//   channel 0 values 1, 2, 2, 4 -> G0 = sqrt(1 + 4 + 4 + 16) = 5
//   channel 1 values 0, 3, 0, 4 -> G1 = sqrt(9 + 16) = 5... use 0, 6, 0, 8 -> G1 = 10
//   mean G = 7.5; N0 = 5 / 7.5 = 2/3, N1 = 10 / 7.5 = 4/3 (eps 1e-6 ignored to 1e-6)
//   y = gamma * x * N + beta + x with gamma = (1, 0.5), beta = (0.1, -0.2).
TEST(GRN, MatchesHandComputation) {
  const at::Tensor x = at::tensor({1.f, 0.f, 2.f, 6.f, 2.f, 0.f, 4.f, 8.f}).view({1, 2, 2, 2});
  for (bool fused : {false, true}) {
    GRN grn(GRNOptions(2).fused(fused));
    {
      c10::NoGradGuard no_grad;
      grn->gamma.copy_(at::tensor({1.f, 0.5f}).view({1, 1, 1, 2}));
      grn->beta.copy_(at::tensor({0.1f, -0.2f}).view({1, 1, 1, 2}));
    }
    const at::Tensor y = grn->forward(x);
    const float n0 = 2.f / 3.f, n1 = 4.f / 3.f;
    const float xs[8] = {1, 0, 2, 6, 2, 0, 4, 8};
    for (int i = 0; i < 8; ++i) {
      const int c = i % 2;
      const float expected = c == 0 ? 1.f * xs[i] * n0 + 0.1f + xs[i]
                                    : 0.5f * xs[i] * n1 - 0.2f + xs[i];
      EXPECT_NEAR(y.view({-1})[i].item<float>(), expected, 1e-4) << "fused " << fused << " i " << i;
    }
  }
}

TEST(GRN, FusedEqualsPlainValuesAndGradients) {
  at::manual_seed(5);
  for (bool contiguous : {true, false}) {  // false: the ATen fallback of the fused path
    at::Tensor base = torch::randn({3, 5, 6, 8}, torch::requires_grad());
    {
      c10::NoGradGuard no_grad;
      base[0].select(2, 3).zero_();  // a channel whose norm is 0
    }
    const at::Tensor gamma = torch::randn({1, 1, 1, 8}, torch::requires_grad());
    const at::Tensor beta = torch::randn({1, 1, 1, 8}, torch::requires_grad());
    const at::Tensor x = contiguous ? base : base.transpose(1, 2);
    const at::Tensor w = at::randn(x.sizes());
    const at::Tensor y_plain = GrnPlain(x, gamma, beta, 1e-6);
    const auto g_plain = torch::autograd::grad({(y_plain * w).sum()}, {base, gamma, beta});
    const at::Tensor y_fused = GrnFused(x, gamma, beta, 1e-6);
    const auto g_fused = torch::autograd::grad({(y_fused * w).sum()}, {base, gamma, beta});
    EXPECT_TRUE(at::allclose(y_plain, y_fused, 1e-5, 1e-5));
    for (int i = 0; i < 3; ++i) {
      EXPECT_TRUE(at::allclose(g_plain[i], g_fused[i], 1e-4, 1e-4))
          << "grad " << i << " contiguous " << contiguous << " max diff "
          << (g_plain[i] - g_fused[i]).abs().max().item<float>();
    }
  }
}

// Values and all three gradients of the depthwise-convolution kernel against at::conv2d, on maps
// larger than, equal to and smaller than the kernel (where taps fall outside on both sides),
// non-square ones, maps wide enough for the kernel's interior tiles with channel counts that
// leave lanes over (37, 19), and 5x5, 3x3 and 1x1 kernels; and of DepthwiseConvFused, which
// takes the kernel, on the same shapes and conv2d on input the kernel does not take.
TEST(DepthwiseConv, KernelAndFusedEqualConv2dValuesAndGradients) {
  at::manual_seed(11);
  struct Case {
    int64_t n, c, h, w, k;
    bool channels_last;
  };
  for (const Case& t : {Case{2, 5, 9, 9, 7, true}, Case{3, 4, 8, 8, 7, true},
                        Case{2, 6, 7, 7, 7, true}, Case{2, 3, 4, 5, 7, true},
                        Case{4, 8, 2, 2, 7, true}, Case{3, 5, 1, 1, 7, true},
                        Case{2, 7, 6, 3, 3, true}, Case{2, 37, 12, 17, 7, true},
                        Case{2, 19, 11, 14, 5, true}, Case{2, 16, 5, 9, 1, true},
                        Case{2, 5, 6, 6, 7, false}}) {
    SCOPED_TRACE(testing::Message() << "n " << t.n << " c " << t.c << " " << t.h << "x" << t.w
                                    << " k " << t.k << " channels_last " << t.channels_last);
    at::Tensor x = torch::randn({t.n, t.c, t.h, t.w});
    if (t.channels_last) x = x.contiguous(at::MemoryFormat::ChannelsLast);
    x.requires_grad_(true);
    const at::Tensor weight =
        torch::randn({t.c, 1, t.k, t.k}).contiguous(at::MemoryFormat::ChannelsLast).requires_grad_(true);
    const at::Tensor bias = torch::randn({t.c}, torch::requires_grad());
    const at::Tensor y_plain = DepthwiseConvPlain(x, weight, bias);
    const at::Tensor probe = at::randn(y_plain.sizes());
    const auto g_plain = torch::autograd::grad({(y_plain * probe).sum()}, {x, weight, bias});
    EXPECT_EQ(DepthwiseConvKernelApplies(x, weight, bias), t.channels_last);
    for (bool kernel : {true, false}) {
      if (kernel && !t.channels_last) continue;
      SCOPED_TRACE(kernel ? "DepthwiseConvKernel" : "DepthwiseConvFused");
      const at::Tensor y = kernel ? DepthwiseConvKernel(x, weight, bias)
                                  : DepthwiseConvFused(x, weight, bias);
      const auto g = torch::autograd::grad({(y * probe).sum()}, {x, weight, bias});
      EXPECT_EQ(y.sizes(), y_plain.sizes());
      EXPECT_TRUE(at::allclose(y_plain, y, 1e-5, 1e-5))
          << (y_plain - y).abs().max().item<float>();
      for (int i = 0; i < 3; ++i) {
        EXPECT_EQ(g[i].sizes(), g_plain[i].sizes());
        EXPECT_TRUE(at::allclose(g_plain[i], g[i], 1e-4, 1e-4))
            << "grad " << i << " max diff " << (g_plain[i] - g[i]).abs().max().item<float>();
      }
    }
  }
}

// The weight gradient sums per sample, then over samples in order: the same bits with 1 and 2
// threads (a run's numbers must not depend on the machine's core count).
TEST(DepthwiseConv, FusedGradientsDoNotDependOnThreads) {
  at::manual_seed(12);
  const at::Tensor x = torch::randn({6, 16, 8, 8})
                           .contiguous(at::MemoryFormat::ChannelsLast)
                           .requires_grad_(true);
  const at::Tensor weight = torch::randn({16, 1, 7, 7}, torch::requires_grad());
  const at::Tensor bias = torch::randn({16}, torch::requires_grad());
  const at::Tensor probe = at::randn({6, 16, 8, 8});
  std::vector<std::vector<at::Tensor>> grads;
  const int before = at::get_num_threads();
  for (int threads : {1, 2}) {
    at::set_num_threads(threads);
    grads.push_back(torch::autograd::grad(
        {(DepthwiseConvKernel(x, weight, bias) * probe).sum()}, {x, weight, bias}));
  }
  at::set_num_threads(before);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(at::equal(grads[0][i], grads[1][i])) << "grad " << i;
}

// A block with the fused convolution computes what the plain one does, with the same weights.
TEST(DepthwiseConv, BlockFusedEqualsPlain) {
  at::manual_seed(13);
  Block fused(BlockOptions(8).fused_dwconv(true));
  Block plain(BlockOptions(8).fused_dwconv(false));
  {
    c10::NoGradGuard no_grad;
    const auto src = fused->named_parameters();
    for (auto& p : plain->named_parameters()) p.value().copy_(src[p.key()]);
  }
  for (int64_t size : {2, 5, 12}) {  // all sizes, interior tiles at 12
    const at::Tensor x =
        at::randn({2, 8, size, size}).contiguous(at::MemoryFormat::ChannelsLast);
    EXPECT_TRUE(at::allclose(fused->forward(x), plain->forward(x), 1e-5, 1e-5)) << size;
  }
}

// The inference fold of the GRN output into pwconv2 gives what the training path's composition
// gives (autograd on: GeluGrnFused's node, then at::linear), where it folds (maps of at least 4C
// pixels) and where it does not.
TEST(GeluGrnLinear, FoldedEqualsTheTrainingPathsComposition) {
  at::manual_seed(17);
  const int64_t c = 4;
  const at::Tensor bias1 = at::randn({4 * c}) * 0.5, gamma = at::randn({1, 1, 1, 4 * c});
  const at::Tensor beta = at::randn({1, 1, 1, 4 * c}), w2 = at::randn({c, 4 * c}) * 0.3;
  const at::Tensor bias2 = at::randn({c});
  for (int64_t size : {3, 4, 9}) {  // 9 and 16 pixels: not folded; 81: folded
    const at::Tensor h = at::randn({3, size, size, 4 * c});
    const at::Tensor reference = at::linear(GeluGrnFused(h, bias1, gamma, beta, 1e-6), w2, bias2);
    c10::NoGradGuard no_grad;
    EXPECT_EQ(GeluGrnLinearFolds(h, bias1, w2, bias2), size * size >= 4 * c) << size;
    const at::Tensor fast = GeluGrnLinear(h, bias1, gamma, beta, 1e-6, w2, bias2);
    ASSERT_EQ(fast.sizes(), reference.sizes());
    EXPECT_TRUE(at::allclose(fast, reference, 1e-5, 1e-5))
        << size << ": " << (fast - reference).abs().max().item<double>();
  }
  // Autograd on: never folded (the backward needs y).
  EXPECT_FALSE(GeluGrnLinearFolds(at::randn({1, 9, 9, 4 * c}), bias1, w2, bias2));
}

// A block in eval mode gives the same output for inference (InferenceMode: folded) as with
// autograd on (the training path), on a map large enough to fold.
TEST(GeluGrnLinear, BlockInferenceEqualsTrainingPathInEval) {
  at::manual_seed(19);
  Block block(BlockOptions(8));
  {
    c10::NoGradGuard no_grad;
    for (auto& p : block->parameters()) p.normal_(0.0, 0.3);  // gamma, beta nonzero too
  }
  block->eval();
  const at::Tensor x = at::randn({2, 8, 12, 12}).contiguous(at::MemoryFormat::ChannelsLast);
  const at::Tensor reference = block->forward(x);
  ASSERT_TRUE(reference.requires_grad());
  c10::InferenceMode inference;
  const at::Tensor fast = block->forward(x);
  EXPECT_TRUE(at::allclose(fast, reference, 1e-5, 1e-5))
      << (fast - reference).abs().max().item<double>();
}

TEST(DropPath, IdentityInEvalAndWhenZero) {
  const at::Tensor x = at::randn({4, 3, 2, 2});
  DropPath dp(0.5);
  dp->eval();
  EXPECT_TRUE(at::equal(dp->forward(x), x));
  DropPath zero(0.0);
  zero->train();
  EXPECT_TRUE(at::equal(zero->forward(x), x));
}

TEST(DropPath, DropsWholeSamplesAndIsUnbiased) {
  at::manual_seed(11);
  DropPath dp(0.25);
  dp->train();
  const at::Tensor x = at::ones({20000, 2, 2, 2});
  const at::Tensor y = dp->forward(x);
  // Each sample is either all zero or all 1 / 0.75.
  const at::Tensor per_sample_max = y.amax({1, 2, 3}), per_sample_min = y.amin({1, 2, 3});
  EXPECT_TRUE(at::equal(per_sample_max, per_sample_min));
  const at::Tensor kept = per_sample_max.gt(0);
  EXPECT_TRUE(at::allclose(per_sample_max.masked_select(kept),
                           at::full({kept.sum().item<int64_t>()}, 1.f / 0.75f)));
  EXPECT_NEAR(kept.to(at::kFloat).mean().item<double>(), 0.75, 0.01);
  EXPECT_NEAR(y.mean().item<double>(), 1.0, 0.015);  // E[y] = x
}

TEST(Block, ResidualWithZeroBranchIsIdentity) {
  // With pwconv2 zeroed the branch contributes nothing: output == input.
  Block block(BlockOptions(8));
  {
    c10::NoGradGuard no_grad;
    block->pwconv2->weight.zero_();
    block->pwconv2->bias.zero_();
  }
  const at::Tensor x = at::randn({2, 8, 5, 5});
  EXPECT_TRUE(at::allclose(block->forward(x), x));
}

}  // namespace
}  // namespace convnextv2::models
