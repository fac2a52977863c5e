// cuda_ops.cc, the autograd nodes around the CUDA kernels, compiled for CPU tensors over the
// emulated kernels (//convnextv2/models:cuda_ops_emulated): what the modules call on a GPU,
// checked here against a float64 autograd reference of the plain chain. It covers the tensor
// plumbing the kernel test cannot: contiguity, saved tensors, the (1, 1, 1, C) parameter shapes,
// dtype casts of outputs and gradients, and the residual's NCHW/NHWC permutes both ways.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <string>
#include <tuple>

#include "convnextv2/models/cuda_ops.h"
#include "tests/models/emulated_expect.h"

namespace convnextv2::models::internal {
namespace {

constexpr double kEps = 1e-6;

using testing_emulated::ExpectClose;
using testing_emulated::ToleranceFor;

at::Tensor Leaf(const at::Tensor& t) { return t.detach().clone().requires_grad_(); }

class GeluGrnNode : public testing::TestWithParam<std::tuple<at::ScalarType, bool>> {};

// h (N, H, W, C) in the activation dtype as pwconv1 leaves it (autocast: bfloat16 or float16),
// bias, gamma and beta float32 parameters, gamma and beta shaped (1, 1, 1, C) like GRN's.
TEST_P(GeluGrnNode, ValuesAndGradientsMatchThePlainChain) {
  const auto [dtype, with_bias] = GetParam();
  at::manual_seed(5);
  const int64_t n = 2, hgt = 5, wid = 7, c = 40;
  const at::TensorOptions f64 = at::TensorOptions().dtype(at::kDouble);
  // A permuted view: the node must make it contiguous.
  const at::Tensor h0 = at::randn({n, c, hgt, wid}, f64).to(dtype).permute({0, 2, 3, 1});
  ASSERT_FALSE(h0.is_contiguous());
  const at::Tensor bias0 = (at::randn({c}, f64) * 0.5).to(at::kFloat);
  const at::Tensor gamma0 = (at::randn({1, 1, 1, c}, f64) * 0.5).to(at::kFloat);
  const at::Tensor beta0 = (at::randn({1, 1, 1, c}, f64) * 0.5).to(at::kFloat);
  const at::Tensor grad = at::randn({n, hgt, wid, c}, f64).to(dtype);

  at::Tensor h = Leaf(h0), gamma = Leaf(gamma0), beta = Leaf(beta0);
  at::Tensor bias = with_bias ? Leaf(bias0) : at::Tensor();
  ASSERT_TRUE(GrnCudaApplies(h));
  const at::Tensor y = GeluGrnCuda(h, bias, gamma, beta, kEps);
  EXPECT_EQ(y.scalar_type(), dtype);
  y.backward(grad);

  const auto ref_leaf = [](const at::Tensor& t) { return Leaf(t.to(at::kDouble)); };
  at::Tensor rh = ref_leaf(h0), rgamma = ref_leaf(gamma0), rbeta = ref_leaf(beta0);
  at::Tensor rbias = with_bias ? ref_leaf(bias0) : at::Tensor();
  const at::Tensor a = with_bias ? at::gelu(rh + rbias) : rh;
  const at::Tensor g = a.pow(2).sum({1, 2}, /*keepdim=*/true).sqrt();
  const at::Tensor nx = g / (g.mean(-1, /*keepdim=*/true) + kEps);
  const at::Tensor ry = rgamma * (a * nx) + rbeta + a;
  ry.backward(grad.to(at::kDouble));

  const testing_emulated::Tolerance tol = ToleranceFor(dtype);
  ExpectClose(y, ry, tol, "y");
  ExpectClose(h.grad(), rh.grad(), tol, "dh");
  EXPECT_EQ(h.grad().scalar_type(), dtype);
  ExpectClose(gamma.grad(), rgamma.grad(), ToleranceFor(at::kFloat), "dgamma");
  ExpectClose(beta.grad(), rbeta.grad(), ToleranceFor(at::kFloat), "dbeta");
  EXPECT_EQ(gamma.grad().scalar_type(), at::kFloat);
  if (with_bias) {
    ExpectClose(bias.grad(), rbias.grad(), ToleranceFor(at::kFloat), "dbias");
    EXPECT_EQ(bias.grad().scalar_type(), at::kFloat);
  }
}

INSTANTIATE_TEST_SUITE_P(DtypesWithAndWithoutBias, GeluGrnNode,
                         testing::Combine(testing::Values(at::kFloat, at::kHalf, at::kBFloat16),
                                          testing::Bool()));

class ResidualNode
    : public testing::TestWithParam<std::tuple<std::tuple<at::ScalarType, at::ScalarType>, bool>> {
};

// out = residual + keep[n] * (z + bias).permute(0, 3, 1, 2), residual (N, C, H, W)
// channels-last, z (N, H, W, C): the block's last step.
TEST_P(ResidualNode, ValuesAndGradientsMatchThePlainSum) {
  const auto [dtypes, drop_path] = GetParam();
  const auto [residual_dtype, z_dtype] = dtypes;
  at::manual_seed(9);
  const int64_t n = 3, hgt = 4, wid = 6, c = 24;
  const at::TensorOptions f64 = at::TensorOptions().dtype(at::kDouble);
  const at::Tensor residual0 = at::randn({n, c, hgt, wid}, f64)
                                   .to(residual_dtype)
                                   .contiguous(at::MemoryFormat::ChannelsLast);
  const at::Tensor z0 = at::randn({n, hgt, wid, c}, f64).to(z_dtype);
  const at::Tensor bias0 = at::randn({c}, f64).to(at::kFloat);
  const at::Tensor keep =
      drop_path ? at::tensor({1.0f / 0.8f, 0.0f, 1.0f / 0.8f}) : at::Tensor();
  const at::Tensor grad = at::randn({n, c, hgt, wid}, f64)
                              .to(residual_dtype)
                              .contiguous(at::MemoryFormat::ChannelsLast);

  at::Tensor residual = Leaf(residual0), z = Leaf(z0), bias = Leaf(bias0);
  ASSERT_TRUE(ResidualCudaApplies(residual, z));
  const at::Tensor out = BiasDropPathResidualCuda(residual, z, bias, keep);
  EXPECT_EQ(out.scalar_type(), residual_dtype);
  EXPECT_EQ(out.sizes(), residual.sizes());
  out.backward(grad);

  at::Tensor rresidual = Leaf(residual0.to(at::kDouble)), rz = Leaf(z0.to(at::kDouble)),
             rbias = Leaf(bias0.to(at::kDouble));
  at::Tensor branch = (rz + rbias).permute({0, 3, 1, 2});
  if (drop_path) branch = branch * keep.to(at::kDouble).view({-1, 1, 1, 1});
  const at::Tensor rout = rresidual + branch;
  rout.backward(grad.to(at::kDouble));

  ExpectClose(out, rout, ToleranceFor(residual_dtype), "out");
  ExpectClose(residual.grad(), rresidual.grad(), ToleranceFor(residual_dtype), "dresidual");
  ExpectClose(z.grad(), rz.grad(), ToleranceFor(z_dtype), "dz");
  EXPECT_EQ(z.grad().scalar_type(), z_dtype);
  ExpectClose(bias.grad(), rbias.grad(), ToleranceFor(at::kFloat), "dbias");
}

INSTANTIATE_TEST_SUITE_P(
    DtypePairs, ResidualNode,
    testing::Combine(testing::Values(std::make_tuple(at::kFloat, at::kFloat),
                                     std::make_tuple(at::kFloat, at::kBFloat16),
                                     std::make_tuple(at::kBFloat16, at::kBFloat16),
                                     std::make_tuple(at::kHalf, at::kHalf)),
                     testing::Bool()));

TEST(CudaOpsApply, OnlyToTheShapesAndDtypesTheKernelsTake) {
  EXPECT_FALSE(GrnCudaApplies(at::Tensor()));
  EXPECT_FALSE(GrnCudaApplies(at::zeros({2, 3, 4})));  // not (N, H, W, C)
  EXPECT_FALSE(GrnCudaApplies(at::zeros({1, 2, 2, 3}, at::kDouble)));
  EXPECT_TRUE(GrnCudaApplies(at::zeros({1, 2, 2, 3}, at::kBFloat16)));
  const at::Tensor residual = at::zeros({1, 3, 2, 2}).contiguous(at::MemoryFormat::ChannelsLast);
  EXPECT_TRUE(ResidualCudaApplies(residual, at::zeros({1, 2, 2, 3})));
  EXPECT_FALSE(ResidualCudaApplies(at::zeros({1, 3, 2, 2}), at::zeros({1, 2, 2, 3})))
      << "an NCHW-contiguous residual";
  EXPECT_FALSE(ResidualCudaApplies(residual, at::zeros({1, 2, 2, 4}))) << "channels differ";
  EXPECT_FALSE(ResidualCudaApplies(residual.to(at::kHalf), at::zeros({1, 2, 2, 3})))
      << "a float16 residual with a float32 branch";
  EXPECT_THROW(GeluGrnCuda(at::zeros({2, 3}), at::Tensor(), at::zeros({3}), at::zeros({3}), kEps),
               c10::Error);
  EXPECT_THROW(GeluGrnCuda(at::zeros({1, 2, 2, 3}), at::Tensor(), at::zeros({4}), at::zeros({3}),
                           kEps),
               c10::Error);
}

}  // namespace
}  // namespace convnextv2::models::internal
