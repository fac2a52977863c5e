// Exponential moving average of the weights (train/ema.h).
#include "convnextv2/train/ema.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/linear.h>
#include <torch/types.h>

#include <string>

#include "convnextv2/models/registry.h"

namespace convnextv2::train {
namespace {

using ::testing::HasSubstr;

models::ConvNeXtV2 TinyModel() {
  at::manual_seed(3);
  return *models::CreateConvNeXtV2("convnextv2_atto", 4);
}

TEST(Ema, FormulaAndDecayZero) {
  models::ConvNeXtV2 model = TinyModel();
  ModelEma ema(model.ptr(), 0.9, /*force_cpu=*/false);
  ModelEma follower(model.ptr(), 0.0, /*force_cpu=*/true);
  const at::Tensor w0 = model->head->weight.detach().clone();
  {
    c10::NoGradGuard no_grad;
    for (at::Tensor& p : model->parameters()) p.add_(1.0);
  }
  // A deep copy: changing the model does not move the average before Update.
  auto ema_model = std::dynamic_pointer_cast<models::ConvNeXtV2Impl>(ema.module());
  ASSERT_NE(ema_model, nullptr);
  EXPECT_TRUE(at::equal(ema_model->head->weight, w0));
  ema.Update(*model);
  follower.Update(*model);
  EXPECT_TRUE(at::allclose(ema_model->head->weight, 0.9 * w0 + 0.1 * (w0 + 1.0), 1e-6, 1e-6));
  const auto live = model->named_parameters();
  for (const auto& item : follower.StateDict()) {
    EXPECT_TRUE(at::equal(item.value(), live[item.key()])) << item.key();
  }
  for (const at::Tensor& p : ema_model->parameters()) EXPECT_FALSE(p.requires_grad());
  EXPECT_FALSE(ema_model->is_training());
}

TEST(Ema, StateDictByNameRoundTrip) {
  models::ConvNeXtV2 model = TinyModel();
  ModelEma ema(model.ptr(), 0.99, false);
  const auto sd = ema.StateDict();
  EXPECT_EQ(sd.size(), model->named_parameters().size());
  ASSERT_NE(sd.find("stages.2.5.grn.gamma"), nullptr);
  torch::OrderedDict<std::string, at::Tensor> changed;
  for (const auto& item : sd) changed.insert(item.key(), item.value().detach().clone() + 2.0);
  ASSERT_TRUE(ema.LoadStateDict(changed).ok());
  EXPECT_TRUE(at::equal(ema.StateDict()["head.bias"], changed["head.bias"]));
  torch::OrderedDict<std::string, at::Tensor> missing;
  missing.insert("head.bias", changed["head.bias"]);
  const absl::Status s = ema.LoadStateDict(missing);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.message()), HasSubstr("lacks"));
}

// Any module: the average follows parameters and buffers by name (BatchNorm's running mean is
// averaged, its integer num_batches_tracked copied), with no knowledge of the model's type.
TEST(Ema, AnyModuleByName) {
  torch::nn::Sequential net(torch::nn::Linear(3, 2), torch::nn::BatchNorm1d(2));
  ModelEma ema(net.ptr(), 0.75, /*force_cpu=*/false);
  const at::Tensor w0 = net->named_parameters()["0.weight"].detach().clone();
  net->train();
  {
    c10::NoGradGuard no_grad;
    net->forward(torch::ones({4, 3}));  // moves the running stats, counts one batch
    net->named_parameters()["0.weight"].add_(4.0);
  }
  ema.Update(*net);
  const auto sd = ema.StateDict();
  EXPECT_TRUE(at::allclose(sd["0.weight"], w0 + 1.0));  // 0.75 w0 + 0.25 (w0 + 4)
  EXPECT_EQ(sd["1.num_batches_tracked"].item<int64_t>(), 1);
  EXPECT_TRUE(at::allclose(sd["1.running_mean"],
                           0.25 * net->named_buffers()["1.running_mean"]));  // from 0
}

}  // namespace
}  // namespace convnextv2::train
