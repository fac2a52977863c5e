// The CUDA kernels of the block (cuda_ops.h) against the plain ATen path, per dtype: values and
// gradients. Tagged "gpu": without --config=cuda or without a visible GPU every test says that it
// was skipped and why (GTEST_SKIP), never passes silently.
#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <gtest/gtest.h>
#include <torch/cuda.h>

#include <string>
#include <tuple>
#include <vector>

#include "convnextv2/models/convnextv2.h"
#include "convnextv2/models/cuda_ops.h"
#include "convnextv2/models/layers.h"
#include "convnextv2/util/torch_compat.h"

namespace convnextv2::models {
namespace {

// Empty when the kernels can run here, else why not.
std::string WhyNoGpu() {
  if (!internal::kCudaKernels) {
    return "built without --config=cuda: this binary has no CUDA kernels (build it with "
           "tools/cuda/build_check.sh and run it on a GPU machine: tools/cuda/device_check.sh)";
  }
  if (!torch::cuda::is_available()) return "no CUDA device visible (torch::cuda::is_available())";
  return "";
}

#define SKIP_WITHOUT_GPU()                                     \
  do {                                                         \
    const std::string why = WhyNoGpu();                        \
    if (!why.empty()) GTEST_SKIP() << "skipped: " << why;      \
  } while (0)

struct Tolerance {
  double rtol;
  double atol;
};

// Per dtype: float32 agrees to rounding; float16 has 11 significant bits, bfloat16 8.
Tolerance TolFor(at::ScalarType t) {
  switch (t) {
    case at::kHalf:
      return {5e-3, 5e-3};
    case at::kBFloat16:
      return {3e-2, 3e-2};
    default:
      return {1e-4, 1e-5};
  }
}

// |a - b| <= atol * max|b| + rtol * |b| elementwise (atol scaled to b's magnitude, so sums over
// many elements get a fair bound), with a message naming the worst element.
::testing::AssertionResult Close(const at::Tensor& actual, const at::Tensor& expected,
                                 Tolerance tol) {
  const at::Tensor a = actual.detach().to(at::kCPU, at::kDouble);
  const at::Tensor b = expected.detach().to(at::kCPU, at::kDouble);
  if (a.sizes() != b.sizes()) {
    return ::testing::AssertionFailure() << "shapes differ: " << a.sizes() << " vs " << b.sizes();
  }
  if (!at::isfinite(a).all().item<bool>()) {
    return ::testing::AssertionFailure() << "non-finite values in the result";
  }
  const double scale = b.abs().max().item<double>();
  const at::Tensor err = (a - b).abs() - (tol.atol * scale + tol.rtol * b.abs());
  const double worst = err.max().item<double>();
  if (worst > 0) {
    const int64_t i = err.flatten().argmax().item<int64_t>();
    return ::testing::AssertionFailure()
           << "element " << i << ": " << a.flatten()[i].item<double>() << " vs "
           << b.flatten()[i].item<double>() << " (max |expected| " << scale << ")";
  }
  return ::testing::AssertionSuccess();
}

// Reference: gelu(h + bias) (or h) then the plain GRN formula, in float32 autograd.
std::vector<at::Tensor> Reference(const at::Tensor& h, const at::Tensor& bias,
                                  const at::Tensor& gamma, const at::Tensor& beta,
                                  const at::Tensor& grad, double eps) {
  at::Tensor h32 = h.detach().to(at::kFloat).requires_grad_(true);
  at::Tensor b32 = bias.defined() ? bias.detach().clone().requires_grad_(true) : at::Tensor();
  at::Tensor g32 = gamma.detach().clone().requires_grad_(true);
  at::Tensor be32 = beta.detach().clone().requires_grad_(true);
  const at::Tensor a = b32.defined() ? at::gelu(h32 + b32) : h32;
  const at::Tensor y = GrnPlain(a, g32, be32, eps);
  y.backward(grad.to(at::kFloat));
  return {y.detach(), h32.grad(), b32.defined() ? b32.grad() : at::Tensor(), g32.grad(),
          be32.grad()};
}

class GeluGrnCudaTest
    : public ::testing::TestWithParam<std::tuple<at::ScalarType, bool /*gelu*/>> {};

TEST_P(GeluGrnCudaTest, ValuesAndGradientsMatchThePlainPath) {
  SKIP_WITHOUT_GPU();
  const auto [dtype, gelu] = GetParam();
  at::manual_seed(7);
  const auto f32 = at::TensorOptions().device(at::kCUDA).dtype(at::kFloat);
  // 40 channels: one full and one partial tile of 32; 9x7 positions: not a multiple of 8.
  const int64_t n = 3, h = 9, w = 7, c = 40;
  const at::Tensor x = (at::randn({n, h, w, c}, f32) * 2).to(dtype);
  const at::Tensor bias = gelu ? at::randn({c}, f32) * 0.5 : at::Tensor();
  const at::Tensor gamma = at::randn({1, 1, 1, c}, f32);
  const at::Tensor beta = at::randn({1, 1, 1, c}, f32);
  const at::Tensor grad = at::randn({n, h, w, c}, f32).to(dtype);
  const double eps = 1e-6;

  at::Tensor xk = x.detach().clone().requires_grad_(true);
  at::Tensor bk = gelu ? bias.clone().requires_grad_(true) : at::Tensor();
  at::Tensor gk = gamma.clone().requires_grad_(true);
  at::Tensor bek = beta.clone().requires_grad_(true);
  const at::Tensor y = internal::GeluGrnCuda(xk, bk, gk, bek, eps);
  EXPECT_EQ(y.scalar_type(), dtype);
  y.backward(grad);

  // The reference sees the same (rounded) inputs, in float32.
  const auto ref = Reference(x, bias, gamma, beta, grad, eps);
  const Tolerance tol = TolFor(dtype);
  EXPECT_TRUE(Close(y, ref[0], tol)) << "y";
  EXPECT_TRUE(Close(xk.grad(), ref[1], tol)) << "dx";
  if (gelu) {
    EXPECT_TRUE(Close(bk.grad(), ref[2], tol)) << "dbias";
  }
  EXPECT_TRUE(Close(gk.grad(), ref[3], tol)) << "dgamma";
  EXPECT_TRUE(Close(bek.grad(), ref[4], tol)) << "dbeta";
  EXPECT_EQ(gk.grad().scalar_type(), at::kFloat);
}

INSTANTIATE_TEST_SUITE_P(
    Dtypes, GeluGrnCudaTest,
    ::testing::Combine(::testing::Values(at::kFloat, at::kHalf, at::kBFloat16),
                       ::testing::Bool()),
    [](const auto& info) {
      return std::string(c10::toString(std::get<0>(info.param))) +
             (std::get<1>(info.param) ? "_gelu" : "_plain");
    });

// A channel's sum of squares over 56x56 positions of values ~200 is ~1.3e8, far past float16's
// 65504: the naive float16 norm is inf, the kernel (float32 sums) matches float32.
TEST(GrnCuda, Float16InputWhoseNaiveNormOverflows) {
  SKIP_WITHOUT_GPU();
  at::manual_seed(11);
  const auto f32 = at::TensorOptions().device(at::kCUDA).dtype(at::kFloat);
  const at::Tensor x32 = at::rand({2, 56, 56, 32}, f32) * 200 + 100;
  const at::Tensor x16 = x32.to(at::kHalf);
  const at::Tensor naive = (x16 * x16).sum({1, 2});  // float16 accumulation
  ASSERT_EQ(naive.scalar_type(), at::kHalf);
  ASSERT_FALSE(at::isfinite(naive).all().item<bool>()) << "the naive float16 norm should overflow";
  const at::Tensor gamma = at::randn({1, 1, 1, 32}, f32);
  const at::Tensor beta = at::randn({1, 1, 1, 32}, f32);
  c10::NoGradGuard no_grad;
  const at::Tensor y = GrnFused(x16, gamma, beta, 1e-6);
  const at::Tensor expected = GrnPlain(x16.to(at::kFloat), gamma, beta, 1e-6);
  EXPECT_TRUE(Close(y, expected, TolFor(at::kHalf)));
}

class ResidualCudaTest
    : public ::testing::TestWithParam<std::tuple<at::ScalarType, at::ScalarType>> {};

TEST_P(ResidualCudaTest, MatchesBiasDropPathAndSum) {
  SKIP_WITHOUT_GPU();
  const auto [residual_dtype, z_dtype] = GetParam();
  at::manual_seed(5);
  const auto f32 = at::TensorOptions().device(at::kCUDA).dtype(at::kFloat);
  const int64_t n = 4, c = 24, h = 5, w = 6;
  const at::Tensor residual = at::randn({n, c, h, w}, f32)
                                  .to(residual_dtype)
                                  .contiguous(at::MemoryFormat::ChannelsLast);
  const at::Tensor z = at::randn({n, h, w, c}, f32).to(z_dtype);
  const at::Tensor bias = at::randn({c}, f32);
  // Drop path at p = 0.5: samples 1 and 2 dropped, the others scaled by 2.
  const at::Tensor keep = at::tensor({2.f, 0.f, 0.f, 2.f}, f32);
  ASSERT_TRUE(internal::ResidualCudaApplies(residual, z));

  at::Tensor rk = residual.detach().clone().requires_grad_(true);
  at::Tensor zk = z.detach().clone().requires_grad_(true);
  at::Tensor bk = bias.clone().requires_grad_(true);
  const at::Tensor out = internal::BiasDropPathResidualCuda(rk, zk, bk, keep);
  EXPECT_EQ(out.scalar_type(), residual_dtype);
  const at::Tensor grad = at::randn({n, c, h, w}, f32).to(residual_dtype);
  out.backward(grad);

  at::Tensor r32 = residual.detach().to(at::kFloat).requires_grad_(true);
  at::Tensor z32 = z.detach().to(at::kFloat).requires_grad_(true);
  at::Tensor b32 = bias.clone().requires_grad_(true);
  const at::Tensor expected =
      r32 + keep.view({n, 1, 1, 1}) * (z32 + b32).permute({0, 3, 1, 2});
  expected.backward(grad.to(at::kFloat));
  const Tolerance tol = TolFor(residual_dtype == at::kFloat ? z_dtype : residual_dtype);
  EXPECT_TRUE(Close(out, expected, tol)) << "out";
  EXPECT_TRUE(Close(rk.grad(), r32.grad(), tol)) << "dresidual";
  EXPECT_TRUE(Close(zk.grad(), z32.grad(), tol)) << "dz";
  EXPECT_TRUE(Close(bk.grad(), b32.grad(), tol)) << "dbias";
}

INSTANTIATE_TEST_SUITE_P(
    Dtypes, ResidualCudaTest,
    ::testing::Values(std::make_tuple(at::kFloat, at::kFloat),
                      std::make_tuple(at::kFloat, at::kBFloat16),
                      std::make_tuple(at::kFloat, at::kHalf),
                      std::make_tuple(at::kBFloat16, at::kBFloat16),
                      std::make_tuple(at::kHalf, at::kHalf)),
    [](const auto& info) {
      return std::string(c10::toString(std::get<0>(info.param))) + "_" +
             c10::toString(std::get<1>(info.param));
    });

// A whole block (eval, so no drop path) with the fused kernels against the same block with
// fused_grn = false, in float32 and under bfloat16 autocast; input channels-last.
class BlockCudaTest : public ::testing::TestWithParam<bool /*autocast bf16*/> {};

TEST_P(BlockCudaTest, FusedBlockMatchesPlainBlock) {
  SKIP_WITHOUT_GPU();
  const bool amp = GetParam();
  at::manual_seed(3);
  Block fused(BlockOptions(48).drop_path(0.2));
  Block plain(BlockOptions(48).drop_path(0.2).fused_grn(false));
  {
    c10::NoGradGuard no_grad;
    for (auto& p : fused->named_parameters()) p.value().normal_(0, 0.2);
    const auto src = fused->named_parameters();
    for (auto& p : plain->named_parameters()) p.value().copy_(src[p.key()]);
  }
  fused->to(at::kCUDA);
  plain->to(at::kCUDA);
  fused->eval();
  plain->eval();
  const at::Tensor x = at::randn({2, 48, 14, 14}, at::TensorOptions().device(at::kCUDA))
                           .contiguous(at::MemoryFormat::ChannelsLast);
  at::Tensor xf = x.clone().requires_grad_(true);
  at::Tensor xp = x.clone().requires_grad_(true);
  compat::SetAutocastDtype(c10::DeviceType::CUDA, at::kBFloat16);
  compat::SetAutocastEnabled(c10::DeviceType::CUDA, amp);
  const at::Tensor yf = fused->forward(xf);
  const at::Tensor yp = plain->forward(xp);
  compat::SetAutocastEnabled(c10::DeviceType::CUDA, false);
  const at::Tensor grad = at::randn_like(yp);
  yf.backward(grad.to(yf.scalar_type()));
  yp.backward(grad.to(yp.scalar_type()));
  const Tolerance tol = amp ? Tolerance{5e-2, 5e-2} : Tolerance{1e-4, 1e-4};
  EXPECT_TRUE(Close(yf, yp, tol)) << "block output";
  EXPECT_TRUE(Close(xf.grad(), xp.grad(), tol)) << "input gradient";
  const auto pf = fused->named_parameters();
  for (const auto& p : plain->named_parameters()) {
    EXPECT_TRUE(Close(pf[p.key()].grad(), p.value().grad(), tol)) << p.key();
  }
}

INSTANTIATE_TEST_SUITE_P(Precision, BlockCudaTest, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "bf16_autocast" : "fp32"; });

}  // namespace
}  // namespace convnextv2::models
