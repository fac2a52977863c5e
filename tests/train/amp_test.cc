// Autocast dtype choice and scopes (train/amp.h).
#include "convnextv2/train/amp.h"

#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>
#include <gtest/gtest.h>
#include <torch/csrc/autograd/generated/variable_factories.h>
#include <torch/types.h>

#include <cmath>

#include "convnextv2/models/registry.h"
#include "convnextv2/train/losses.h"
#include "convnextv2/train/train_step.h"
#include "convnextv2/util/torch_compat.h"

namespace convnextv2::train {
namespace {

models::ConvNeXtV2 TinyModel() {
  at::manual_seed(3);
  return *models::CreateConvNeXtV2("convnextv2_atto", 4);
}

TEST(Amp, DtypeChoice) {
  ExperimentConfig c;
  EXPECT_EQ(*AmpDtype(c, c10::Device(c10::kCPU)), c10::ScalarType::BFloat16);
  EXPECT_EQ(*AmpDtype(c, c10::Device(c10::kCUDA)), c10::ScalarType::Half);
  c.mutable_train()->set_amp_dtype("float16");
  EXPECT_FALSE(AmpDtype(c, c10::Device(c10::kCPU)).ok());
  c.mutable_train()->set_amp_dtype("bfloat16");
  EXPECT_EQ(*AmpDtype(c, c10::Device(c10::kCUDA)), c10::ScalarType::BFloat16);
}

TEST(Amp, CpuAutocastRunsTheModelInBfloat16AndRestores) {
  const at::Tensor a = torch::randn({4, 4});
  {
    AutocastGuard guard(c10::DeviceType::CPU, c10::ScalarType::BFloat16, true);
    EXPECT_EQ(at::mm(a, a).scalar_type(), c10::ScalarType::BFloat16);
    {
      AutocastGuard off(c10::DeviceType::CPU, c10::ScalarType::BFloat16, false);  // no-op
      EXPECT_EQ(at::mm(a, a).scalar_type(), c10::ScalarType::BFloat16);
    }
  }
  EXPECT_EQ(at::mm(a, a).scalar_type(), c10::ScalarType::Float);
  EXPECT_FALSE(compat::AutocastEnabled(c10::DeviceType::CPU));

  models::ConvNeXtV2 model = TinyModel();
  const at::Tensor images = torch::randn({2, 3, 32, 32});
  const at::Tensor labels = torch::tensor({1, 3}, torch::kLong);
  at::Tensor loss, logits;
  {
    AutocastGuard guard(c10::DeviceType::CPU, c10::ScalarType::BFloat16, true);
    logits = model->forward(images);
    loss = CrossEntropy(logits, labels);
  }
  EXPECT_EQ(logits.scalar_type(), c10::ScalarType::BFloat16);
  EXPECT_EQ(loss.scalar_type(), c10::ScalarType::Float);
  EXPECT_TRUE(std::isfinite(loss.item<double>()));
  loss.backward();
  EXPECT_EQ(model->head->weight.grad().scalar_type(), c10::ScalarType::Float);
  EXPECT_GT(GradNorm(model->parameters()), 0.0);
  // Close to the float32 loss.
  const double fp32 = CrossEntropy(model->forward(images), labels).item<double>();
  EXPECT_NEAR(loss.item<double>(), fp32, 0.05 * std::abs(fp32) + 0.02);
}

}  // namespace
}  // namespace convnextv2::train
