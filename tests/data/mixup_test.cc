// Mixup/CutMix: targets, lambdas, boxes, modes (the soft-target loss: tests/train/losses_test.cc).
#include "convnextv2/data/mixup.h"

#include <ATen/ATen.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace convnextv2::data {
namespace {

TEST(MixupTest, TargetsSmoothAndMix) {
  const at::Tensor labels = at::tensor({0, 2}, at::kLong);
  const at::Tensor t = MixupTarget(labels, 4, at::tensor({0.7}), 0.1);
  // off = 0.025, on = 0.925; row 0 = 0.7 * onehot(0) + 0.3 * onehot(2).
  EXPECT_NEAR(t[0][0].item<float>(), 0.7 * 0.925 + 0.3 * 0.025, 1e-6);
  EXPECT_NEAR(t[0][2].item<float>(), 0.7 * 0.025 + 0.3 * 0.925, 1e-6);
  EXPECT_NEAR(t[0][1].item<float>(), 0.025, 1e-6);
  EXPECT_TRUE(at::allclose(t.sum(1), at::ones({2})));
}

TEST(MixupTest, BetaHasTheRightMean) {
  SampleRng rng(1);
  for (double alpha : {0.2, 0.8, 1.0, 3.0}) {
    double sum = 0, sq = 0;
    const int n = 20000;
    for (int i = 0; i < n; ++i) {
      const double x = SampleBeta(alpha, rng);
      ASSERT_GE(x, 0);
      ASSERT_LE(x, 1);
      sum += x;
      sq += x * x;
    }
    const double var = sq / n - (sum / n) * (sum / n);
    EXPECT_NEAR(sum / n, 0.5, 0.01) << alpha;
    EXPECT_NEAR(var, 1.0 / (4 * (2 * alpha + 1)), 0.01) << alpha;  // Beta(a, a) variance
  }
}

TEST(MixupTest, CutmixBoxLambdaIsCorrectedByClippedArea) {
  SampleRng rng(3);
  for (int i = 0; i < 200; ++i) {
    const double lam = rng.Uniform();
    const CutmixBox b = DrawCutmixBox(20, 30, lam, std::nullopt, true, rng);
    ASSERT_LE(0, b.yl);
    ASSERT_LE(b.yh, 20);
    ASSERT_LE(0, b.xl);
    ASSERT_LE(b.xh, 30);
    EXPECT_DOUBLE_EQ(b.lam, 1.0 - (b.yh - b.yl) * (b.xh - b.xl) / 600.0);
    EXPECT_GE(b.lam, lam - 1e-9);  // clipping only shrinks the box
  }
  const CutmixBox u = DrawCutmixBox(20, 30, 0.5, std::nullopt, false, rng);
  EXPECT_DOUBLE_EQ(u.lam, 0.5);
  for (int i = 0; i < 100; ++i) {
    const CutmixBox m = DrawCutmixBox(20, 30, 0.9, std::make_pair(0.2, 0.5), false, rng);
    EXPECT_GE(m.yh - m.yl, 4);
    EXPECT_LT(m.yh - m.yl, 10);
    EXPECT_GE(m.xh - m.xl, 6);
    EXPECT_LT(m.xh - m.xl, 15);
    EXPECT_DOUBLE_EQ(m.lam, 1.0 - (m.yh - m.yl) * (m.xh - m.xl) / 600.0);
  }
}

// Image i is the constant i: a mixed pixel reveals lambda and the partner.
at::Tensor ConstantImages(int n, int size) {
  return at::arange(n, at::kFloat).view({n, 1, 1, 1}).expand({n, 3, size, size}).contiguous();
}

TEST(MixupTest, BatchMixupMixesWithFlippedBatch) {
  MixupOptions o;
  o.mixup_alpha = 1.0;
  o.num_classes = 4;
  o.label_smoothing = 0;
  Mixup mixup(o);
  at::Tensor x = ConstantImages(4, 2);
  SampleRng rng(9);
  std::vector<double> lams;
  const at::Tensor t = mixup.Apply(x, at::tensor({0, 1, 2, 3}, at::kLong), rng, &lams);
  const double lam = lams[0];
  for (int i = 0; i < 4; ++i) {
    EXPECT_NEAR(x[i][0][0][0].item<float>(), lam * i + (1 - lam) * (3 - i), 1e-5);
    EXPECT_NEAR(t[i][i].item<float>() + t[i][3 - i].item<float>(), 1.0, 1e-6);
    EXPECT_NEAR(t[i][i].item<float>(), lam, 1e-6);
  }
}

TEST(MixupTest, CutmixTargetsMatchPastedArea) {
  MixupOptions o;
  o.mixup_alpha = 0;
  o.cutmix_alpha = 1.0;
  o.num_classes = 6;
  o.label_smoothing = 0;
  for (const char* mode : {"batch", "pair", "elem"}) {
    o.mode = MixupModes().Of(mode);
    Mixup mixup(o);
    for (uint64_t seed = 0; seed < 10; ++seed) {
      at::Tensor x = ConstantImages(6, 16);
      SampleRng rng(seed);
      const at::Tensor t = mixup.Apply(x, at::arange(6, at::kLong), rng);
      for (int i = 0; i < 6; ++i) {
        // The share of pixels still showing image i is the target weight of label i.
        const double own = x[i][0].eq(static_cast<float>(i)).to(at::kFloat).mean().item<double>();
        EXPECT_NEAR(t[i][i].item<float>(), own, 1e-6) << mode << " seed " << seed << " i " << i;
        EXPECT_NEAR(t[i].sum().item<float>(), 1.0, 1e-6);
      }
    }
  }
}

TEST(MixupTest, ProbZeroLeavesBatchAloneAndDeterministic) {
  MixupOptions o;
  o.mixup_alpha = 0.8;
  o.cutmix_alpha = 1.0;
  o.prob = 0;
  o.num_classes = 3;
  Mixup off(o);
  at::Tensor x = ConstantImages(2, 4);
  SampleRng rng(1);
  const at::Tensor t = off.Apply(x, at::tensor({0, 1}, at::kLong), rng);
  EXPECT_TRUE(x.equal(ConstantImages(2, 4)));
  EXPECT_NEAR(t[0][0].item<float>(), 1 - 0.1 + 0.1 / 3, 1e-6);
  o.prob = 1;
  o.num_classes = 4;
  Mixup on(o);
  at::Tensor a = ConstantImages(4, 8), b = ConstantImages(4, 8);
  SampleRng r1(5), r2(5);
  on.Apply(a, at::arange(4, at::kLong), r1);
  on.Apply(b, at::arange(4, at::kLong), r2);
  EXPECT_TRUE(a.equal(b));
}

}  // namespace
}  // namespace convnextv2::data
