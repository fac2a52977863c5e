// The modules' fused CUDA path, as a CUDA build runs it (convnextv2.cc: the branch through the
// GELU + GRN kernels, the drop-path factors, the bias + drop path + residual kernel), run on the
// CPU over the emulated kernels (//convnextv2/models:convnextv2_emulated), against the same
// modules with fused_grn off, the plain ATen chain: a block and a small model, forward and
// backward, training with drop path and evaluation, channels-last and NCHW inputs.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/nn/module.h>

#include <string>
#include <utility>
#include <vector>

#include <cuda_runtime_api.h>  // the emulation's (convnextv2/models/cuda_emulation/)

#include "convnextv2/models/convnextv2.h"

namespace convnextv2::models {
namespace {

void CopyParameters(const torch::nn::Module& from, torch::nn::Module& to) {
  at::NoGradGuard no_grad;
  const auto source = from.named_parameters();
  for (auto& p : to.named_parameters()) p.value().copy_(source[p.key()]);
}

void ExpectClose(const at::Tensor& actual, const at::Tensor& expected, const std::string& what) {
  ASSERT_TRUE(actual.defined() && expected.defined()) << what;
  ASSERT_EQ(actual.sizes(), expected.sizes()) << what;
  const double scale = expected.abs().max().item<double>();
  const double worst = (actual - expected).abs().max().item<double>();
  EXPECT_LE(worst, 1e-4 * scale + 1e-6) << what << " (scale " << scale << ")";
}

struct Result {
  int64_t launches;  // emulated kernel launches in the forward and backward
  at::Tensor out;
  at::Tensor dx;
  std::vector<std::pair<std::string, at::Tensor>> grads;
};

template <typename Module>
Result ForwardBackward(Module& module, const at::Tensor& x0, const at::Tensor& grad, bool train) {
  module->train(train);
  module->zero_grad();
  at::Tensor x = x0.detach().clone(at::MemoryFormat::Preserve).requires_grad_();
  at::manual_seed(123);  // the same drop-path draws on both sides
  const int64_t before = cuda::emulation::launches;
  const at::Tensor out = module->forward(x);
  out.backward(grad);
  Result r{cuda::emulation::launches - before, out.detach(), x.grad(), {}};
  for (const auto& p : module->named_parameters()) {
    r.grads.emplace_back(p.key(), p.value().grad().defined() ? p.value().grad().clone()
                                                             : at::Tensor());
  }
  return r;
}

void ExpectSame(const Result& fused, const Result& plain) {
  EXPECT_GT(fused.launches, 0) << "the fused path did not run the emulated kernels";
  EXPECT_EQ(plain.launches, 0) << "fused_grn off ran CUDA kernels";
  ExpectClose(fused.out, plain.out, "output");
  ExpectClose(fused.dx, plain.dx, "input gradient");
  ASSERT_EQ(fused.grads.size(), plain.grads.size());
  for (size_t i = 0; i < fused.grads.size(); ++i) {
    ExpectClose(fused.grads[i].second, plain.grads[i].second, fused.grads[i].first + ".grad");
  }
}

// dim 20: GRN runs over 80 channels, two full channel tiles of 32 and a partial one.
TEST(BlockEmulated, FusedBlockMatchesPlainBlock) {
  at::manual_seed(1);
  Block fused(BlockOptions(20).drop_path(0.4).fused_grn(true));
  Block plain(BlockOptions(20).drop_path(0.4).fused_grn(false));
  CopyParameters(*fused, *plain);
  const at::Tensor x_cl = at::randn({5, 20, 9, 11}).contiguous(at::MemoryFormat::ChannelsLast);
  const at::Tensor grad = at::randn({5, 20, 9, 11});
  for (bool train : {true, false}) {
    SCOPED_TRACE(train ? "training, drop path 0.4" : "evaluation");
    ExpectSame(ForwardBackward(fused, x_cl, grad, train), ForwardBackward(plain, x_cl, grad, train));
    // An NCHW-contiguous input: the residual kernel does not apply; the branch still fuses.
    ExpectSame(ForwardBackward(fused, x_cl.contiguous(), grad, train),
               ForwardBackward(plain, x_cl.contiguous(), grad, train));
  }
}

TEST(BlockEmulated, FusedModelMatchesPlainModel) {
  at::manual_seed(2);
  const auto options = [](bool fused) {
    return ConvNeXtV2Options()
        .depths({1, 1, 2, 1})
        .dims({8, 16, 32, 64})
        .num_classes(10)
        .drop_path_rate(0.3)
        .fused_grn(fused);
  };
  ConvNeXtV2 fused(options(true));
  ConvNeXtV2 plain(options(false));
  CopyParameters(*fused, *plain);
  const at::Tensor x = at::randn({3, 3, 64, 64}).contiguous(at::MemoryFormat::ChannelsLast);
  const at::Tensor grad = at::randn({3, 10});
  for (bool train : {true, false}) {
    SCOPED_TRACE(train ? "training, drop path 0.3" : "evaluation");
    ExpectSame(ForwardBackward(fused, x, grad, train), ForwardBackward(plain, x, grad, train));
  }
}

}  // namespace
}  // namespace convnextv2::models
