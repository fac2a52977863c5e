// The CUDA kernels of grn_cuda.cu, unchanged, run on the CPU under cuda_emulation.h (real
// threads per block, real barriers, blocks in turn) against a float64 autograd reference of
// the block's math: GRN with and without the folded bias + GELU, forward and backward, in
// float32, float16 and bfloat16; the bias + drop path + residual pass for every dtype pair.
// Shapes cover partial channel tiles, several position chunks per sample (so partial sums
// meet in atomicAdd), more channels than the statistics kernels have threads, and a float16
// input whose naive float16 norm overflows.
//
// What this cannot show: speed, the GPU's memory model, or cuda_ops.cc (the tensor plumbing
// and autograd nodes), which //tests/models:cuda_ops_test checks on a GPU.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <string>
#include <tuple>

#include "convnextv2/models/grn_cuda.h"
#include "tests/models/emulated_expect.h"

namespace convnextv2::models::cuda {
namespace {

constexpr double kEps = 1e-6;

Dtype KernelDtype(at::ScalarType t) {
  switch (t) {
    case at::kHalf:
      return Dtype::kFloat16;
    case at::kBFloat16:
      return Dtype::kBFloat16;
    default:
      return Dtype::kFloat32;
  }
}

using testing_emulated::ExpectClose;
using testing_emulated::Tolerance;
using testing_emulated::ToleranceFor;

struct GrnInputs {
  at::Tensor h;     // (n, hw, c) in the kernel's dtype
  at::Tensor bias;  // (c) float32, or undefined: plain GRN
  at::Tensor gamma;
  at::Tensor beta;
  at::Tensor grad;  // dL/dy, h's dtype
};

GrnInputs MakeInputs(GrnShape s, at::ScalarType dtype, bool gelu, double h_scale) {
  const at::TensorOptions f64 = at::TensorOptions().dtype(at::kDouble);
  GrnInputs in;
  in.h = (at::randn({s.n, s.hw, s.c}, f64) * h_scale).to(dtype);
  if (gelu) in.bias = (at::randn({s.c}, f64) * 0.5).to(at::kFloat);
  in.gamma = (at::randn({s.c}, f64) * 0.5).to(at::kFloat);
  in.beta = (at::randn({s.c}, f64) * 0.5).to(at::kFloat);
  in.grad = at::randn({s.n, s.hw, s.c}, f64).to(dtype);
  return in;
}

struct GrnResult {
  at::Tensor y, dh, dbias, dgamma, dbeta;
};

// The official GRN (gamma * (a * Nx) + beta + a, a = gelu(h + bias)) in float64 autograd,
// from the same (rounded) inputs the kernels get.
GrnResult Reference(const GrnInputs& in) {
  const auto leaf = [](const at::Tensor& t) {
    return t.defined() ? t.to(at::kDouble).detach().requires_grad_() : t;
  };
  const at::Tensor h = leaf(in.h), bias = leaf(in.bias), gamma = leaf(in.gamma),
                   beta = leaf(in.beta);
  const at::Tensor a = bias.defined() ? at::gelu(h + bias) : h;
  const at::Tensor g = a.pow(2).sum(1, /*keepdim=*/true).sqrt();
  const at::Tensor nx = g / (g.mean(-1, /*keepdim=*/true) + kEps);
  const at::Tensor y = gamma * (a * nx) + beta + a;
  y.backward(in.grad.to(at::kDouble));
  return {y.detach(), h.grad(), bias.defined() ? bias.grad() : at::Tensor(), gamma.grad(),
          beta.grad()};
}

GrnResult RunKernels(const GrnInputs& in, GrnShape s) {
  const Dtype dtype = KernelDtype(in.h.scalar_type());
  const at::TensorOptions f32 = at::TensorOptions().dtype(at::kFloat);
  const bool gelu = in.bias.defined();
  at::Tensor sumsq = at::zeros({s.n, s.c}, f32), g_norm = at::empty({s.n, s.c}, f32),
             denom = at::empty({s.n}, f32), nx = at::empty({s.n, s.c}, f32),
             scale = at::empty({s.n, s.c}, f32), y = at::empty_like(in.h);
  const float* bias = gelu ? in.bias.data_ptr<float>() : nullptr;
  EXPECT_EQ(GrnForward(dtype, in.h.data_ptr(), bias, in.gamma.data_ptr<float>(),
                       in.beta.data_ptr<float>(), static_cast<float>(kEps), s, y.data_ptr(),
                       sumsq.data_ptr<float>(), g_norm.data_ptr<float>(),
                       denom.data_ptr<float>(), nx.data_ptr<float>(), scale.data_ptr<float>(),
                       nullptr),
            cudaSuccess);
  at::Tensor p = at::zeros({s.n, s.c}, f32), dbeta = at::zeros({s.c}, f32),
             dgamma_n = at::empty({s.n, s.c}, f32), t = at::empty({s.n, s.c}, f32),
             dbias = gelu ? at::zeros({s.c}, f32) : at::Tensor(), dh = at::empty_like(in.h);
  EXPECT_EQ(GrnBackward(dtype, in.grad.data_ptr(), in.h.data_ptr(), bias,
                        in.gamma.data_ptr<float>(), g_norm.data_ptr<float>(),
                        denom.data_ptr<float>(), nx.data_ptr<float>(),
                        scale.data_ptr<float>(), s, dh.data_ptr(), p.data_ptr<float>(),
                        dbeta.data_ptr<float>(), dgamma_n.data_ptr<float>(),
                        t.data_ptr<float>(), gelu ? dbias.data_ptr<float>() : nullptr, nullptr),
            cudaSuccess);
  return {y, dh, dbias, dgamma_n.sum(0), dbeta};
}

void ExpectGrnMatches(GrnShape s, at::ScalarType dtype, bool gelu, double h_scale) {
  const GrnInputs in = MakeInputs(s, dtype, gelu, h_scale);
  const GrnResult want = Reference(in);
  const GrnResult got = RunKernels(in, s);
  const Tolerance activations = ToleranceFor(dtype);
  // Parameter gradients are float32 sums of float32 terms whatever the dtype; dh's rounding
  // to `dtype` comes after them.
  const Tolerance params = ToleranceFor(at::kFloat);
  ExpectClose(got.y, want.y, activations, "y");
  ExpectClose(got.dh, want.dh, activations, "dh");
  ExpectClose(got.dgamma, want.dgamma.view({s.c}), params, "dgamma");
  ExpectClose(got.dbeta, want.dbeta.view({s.c}), params, "dbeta");
  if (gelu) ExpectClose(got.dbias, want.dbias, params, "dbias");
}

class GrnKernels
    : public testing::TestWithParam<std::tuple<at::ScalarType, bool, std::tuple<int, int, int>>> {
};

TEST_P(GrnKernels, MatchFloat64Reference) {
  at::manual_seed(7);
  const auto [dtype, gelu, dims] = GetParam();
  const auto [n, hw, c] = dims;
  ExpectGrnMatches(GrnShape{n, hw, c}, dtype, gelu, /*h_scale=*/1.0);
}

INSTANTIATE_TEST_SUITE_P(
    DtypesAndShapes, GrnKernels,
    testing::Combine(testing::Values(at::kFloat, at::kHalf, at::kBFloat16), testing::Bool(),
                     // (n, hw, c): 2 channel tiles, the second partial, and 3 position chunks,
                     // the last partial; more channels (300) than the statistics kernels'
                     // 256 threads, one position; exact tiles.
                     testing::Values(std::make_tuple(3, 150, 40), std::make_tuple(2, 1, 300),
                                     std::make_tuple(1, 64, 32))));

// A 56x56 stage-1 feature map with activations around 8: each channel's sum of squares is
// about 200,000, past float16's 65,504. The kernels keep it in float32.
TEST(GrnKernelsFloat16, SumOfSquaresPastFloat16MaxStaysFinite) {
  at::manual_seed(11);
  const GrnShape s{2, 56 * 56, 8};
  const GrnInputs in = MakeInputs(s, at::kHalf, /*gelu=*/false, /*h_scale=*/8.0);
  const at::Tensor naive = in.h.pow(2).sum(1);  // float16, as an fp16 engine computes it
  ASSERT_EQ(naive.scalar_type(), at::kHalf);
  ASSERT_TRUE(naive.isinf().any().item<bool>())
      << "the premise: the naive float16 sum of squares overflows for this input";
  const GrnResult want = Reference(in);
  const GrnResult got = RunKernels(in, s);
  ExpectClose(got.y, want.y, ToleranceFor(at::kHalf), "y");
  ExpectClose(got.dh, want.dh, ToleranceFor(at::kHalf), "dh");
  ExpectClose(got.dgamma, want.dgamma.view({s.c}), ToleranceFor(at::kFloat), "dgamma");
}

TEST(GrnKernelsEmpty, EmptyShapesDoNothing) {
  EXPECT_EQ(GrnForward(Dtype::kFloat32, nullptr, nullptr, nullptr, nullptr, 1e-6f,
                       GrnShape{0, 4, 4}, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr,
                       nullptr),
            cudaSuccess);
  EXPECT_EQ(GrnBackward(Dtype::kFloat16, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr,
                        nullptr, nullptr, GrnShape{2, 0, 4}, nullptr, nullptr, nullptr, nullptr,
                        nullptr, nullptr, nullptr),
            cudaSuccess);
}

class ResidualKernel
    : public testing::TestWithParam<std::tuple<std::tuple<at::ScalarType, at::ScalarType>, bool>> {
};

// out = residual + keep[n] * (z + bias): the residual's dtype is float32 or z's.
TEST_P(ResidualKernel, MatchesFloat64Reference) {
  at::manual_seed(3);
  const auto [dtypes, drop_path] = GetParam();
  const auto [residual_dtype, z_dtype] = dtypes;
  const GrnShape s{3, 70, 40};
  const at::TensorOptions f64 = at::TensorOptions().dtype(at::kDouble);
  const at::Tensor residual = at::randn({s.n, s.hw, s.c}, f64).to(residual_dtype);
  const at::Tensor z = at::randn({s.n, s.hw, s.c}, f64).to(z_dtype);
  const at::Tensor bias = at::randn({s.c}, f64).to(at::kFloat);
  // Drop path as DropPath makes it: 0 for a dropped sample, 1 / keep_prob for a kept one.
  const at::Tensor keep =
      drop_path ? at::tensor({1.0f / 0.9f, 0.0f, 1.0f / 0.9f}) : at::Tensor();
  at::Tensor out = at::empty_like(residual);
  ASSERT_EQ(BiasDropPathResidual(KernelDtype(residual_dtype), KernelDtype(z_dtype),
                                 residual.data_ptr(), z.data_ptr(), bias.data_ptr<float>(),
                                 drop_path ? keep.data_ptr<float>() : nullptr, s,
                                 out.data_ptr(), nullptr),
            cudaSuccess);
  at::Tensor branch = z.to(at::kDouble) + bias.to(at::kDouble);
  if (drop_path) branch = branch * keep.to(at::kDouble).view({-1, 1, 1});
  const at::Tensor want = residual.to(at::kDouble) + branch;
  EXPECT_EQ(out.scalar_type(), residual_dtype);
  ExpectClose(out, want, ToleranceFor(residual_dtype), "out");
  if (drop_path) {
    EXPECT_TRUE(out[1].to(at::kDouble).equal(residual[1].to(at::kDouble)))
        << "a dropped sample is its residual, unchanged";
  }
}

INSTANTIATE_TEST_SUITE_P(
    DtypePairs, ResidualKernel,
    testing::Combine(testing::Values(std::make_tuple(at::kFloat, at::kFloat),
                                     std::make_tuple(at::kFloat, at::kHalf),
                                     std::make_tuple(at::kFloat, at::kBFloat16),
                                     std::make_tuple(at::kHalf, at::kHalf),
                                     std::make_tuple(at::kBFloat16, at::kBFloat16)),
                     testing::Bool()));

TEST(ResidualKernelDtypes, RefusesDtypePairsItDoesNotHandle) {
  const GrnShape s{1, 1, 1};
  for (const auto& [r, z] : {std::make_tuple(Dtype::kFloat16, Dtype::kBFloat16),
                             std::make_tuple(Dtype::kBFloat16, Dtype::kFloat32),
                             std::make_tuple(Dtype::kFloat16, Dtype::kFloat32)}) {
    EXPECT_EQ(BiasDropPathResidual(r, z, nullptr, nullptr, nullptr, nullptr, s, nullptr,
                                   nullptr),
              cudaErrorInvalidValue);
  }
}

}  // namespace
}  // namespace convnextv2::models::cuda
