// Cross-entropy with label smoothing and soft-target cross-entropy (train/losses.h).
#include "convnextv2/train/losses.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/csrc/autograd/generated/variable_factories.h>
#include <torch/types.h>

#include <cmath>

#include "convnextv2/data/mixup.h"

namespace convnextv2::train {
namespace {

TEST(Losses, LabelSmoothingByHand) {
  const at::Tensor logits = torch::tensor({{2.0, 0.0, 0.0}});
  const at::Tensor labels = torch::tensor({1}, torch::kLong);
  const double lse = std::log(std::exp(2.0) + 2.0);
  EXPECT_NEAR(CrossEntropy(logits, labels).item<double>(), lse, 1e-6);
  // 0.9 * nll + 0.1 * mean_c(-log p) = 0.9 * lse + 0.1 * (lse - 2/3).
  EXPECT_NEAR(CrossEntropy(logits, labels, 0.1).item<double>(), lse - 0.2 / 3, 1e-6);
}

TEST(Losses, AgreeWithEachOtherAndWithATen) {
  at::manual_seed(0);
  const at::Tensor logits = torch::randn({6, 5});
  const at::Tensor labels = torch::tensor({0, 4, 2, 2, 1, 3}, torch::kLong);
  for (double s : {0.0, 0.1, 0.3}) {
    const double ours = CrossEntropy(logits, labels, s).item<double>();
    const double aten = at::cross_entropy_loss(logits, labels, {}, at::Reduction::Mean, -100, s)
                            .item<double>();
    EXPECT_NEAR(ours, aten, 1e-6) << s;
    // Smoothed one-hot targets, as Mixup builds them with mixing off.
    const at::Tensor soft = at::one_hot(labels, 5).to(at::kFloat) * (1 - s) + s / 5;
    EXPECT_NEAR(SoftTargetCrossEntropy(logits, soft).item<double>(), ours, 1e-6) << s;
  }
  // A two-image mix: the mean of the per-target losses weighted by lambda.
  const at::Tensor a = at::one_hot(labels, 5).to(at::kFloat);
  const at::Tensor b = at::one_hot(labels.flip(0), 5).to(at::kFloat);
  EXPECT_NEAR(SoftTargetCrossEntropy(logits, 0.7 * a + 0.3 * b).item<double>(),
              0.7 * CrossEntropy(logits, labels).item<double>() +
                  0.3 * CrossEntropy(logits, labels.flip(0)).item<double>(),
              1e-5);
}

TEST(LossTest, SoftTargetCrossEntropyEqualsHardOnOneHot) {
  const at::Tensor logits = at::randn({5, 7});
  const at::Tensor labels = at::tensor({0, 3, 6, 2, 2}, at::kLong);
  const at::Tensor one_hot = at::zeros({5, 7}).scatter_(1, labels.view({-1, 1}), 1.0);
  EXPECT_NEAR(SoftTargetCrossEntropy(logits, one_hot).item<double>(),
              at::cross_entropy_loss(logits, labels).item<double>(), 1e-5);
  // Smoothed targets give PyTorch's label-smoothing cross-entropy.
  const at::Tensor smooth = data::MixupTarget(labels, 7, at::ones({1}), 0.1);
  EXPECT_NEAR(SoftTargetCrossEntropy(logits, smooth).item<double>(),
              at::cross_entropy_loss(logits, labels, {}, at::Reduction::Mean, -100, 0.1)
                  .item<double>(),
              1e-5);
}

}  // namespace
}  // namespace convnextv2::train
