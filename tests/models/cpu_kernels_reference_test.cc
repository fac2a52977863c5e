// Every build of the layers' CPU kernels this CPU runs (cpu_kernels.h: generic, AVX2,
// AVX-512), forced one at a time, against plain libtorch (the ATen ops of GrnPlain, at::gelu,
// at::layer_norm, at::conv2d) on the same values: forward values and the gradients of the input
// and of every parameter, in float32 and bfloat16. The float32 bounds are a few float32
// roundings; the bfloat16 ones a few bfloat16 roundings of the output (2^-8 relative), both far
// below what a kernel with a wrong term, index or scale gives (tens of percent of the output's
// scale; ReferenceTolerancesCatchAWrongResult checks that the bound would see one). Builds this
// CPU lacks are named as skipped.
#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <gtest/gtest.h>
#include <torch/autograd.h>

#include <string>
#include <vector>

#include "convnextv2/models/cpu_kernels.h"
#include "convnextv2/models/layers.h"
#include "tests/models/scoped_cpu_kernels.h"

namespace convnextv2::models {
namespace {

using internal::CpuKernels;

using testing_kernels::RunnableCpuKernels;
using ScopedKernels = testing_kernels::ScopedCpuKernels;

// |actual - expected| <= rel_elem * |expected| + rel_scale * max |expected|, element by
// element: rel_elem for a result rounded to bfloat16 once (2^-9 at most; 0 for float32 ones),
// rel_scale for the float32 arithmetic around it (and near-zero elements).
void ExpectNear(const at::Tensor& actual, const at::Tensor& expected, double rel_elem,
                double rel_scale, const std::string& what) {
  ASSERT_EQ(actual.sizes(), expected.sizes()) << what;
  const at::Tensor a = actual.to(at::kDouble), e = expected.to(at::kDouble);
  const double scale = e.abs().max().item<double>();
  ASSERT_GT(scale, 1e-3) << what << ": a reference of zeros proves nothing";
  const at::Tensor excess = (a - e).abs() - (rel_elem * e.abs() + rel_scale * scale);
  EXPECT_LE(excess.max().item<double>(), 0.0)
      << what << ": max diff " << (a - e).abs().max().item<double>() << " of scale " << scale;
}

// Forward value and the gradients of `inputs` for the output gradient `probe`.
std::vector<at::Tensor> ValueAndGrads(const at::Tensor& y, const std::vector<at::Tensor>& inputs,
                                      const at::Tensor& probe) {
  std::vector<at::Tensor> out{y.detach()};
  for (const at::Tensor& g : torch::autograd::grad({y}, inputs, {probe.to(y.scalar_type())})) {
    out.push_back(g);
  }
  return out;
}

std::vector<at::Tensor> Leaves(const std::vector<at::Tensor>& values) {
  std::vector<at::Tensor> out;
  for (const at::Tensor& v : values) out.push_back(v.detach().clone().requires_grad_(true));
  return out;
}

struct Bound {
  double rel_elem, rel_scale;
};

void ExpectAllNear(const std::vector<at::Tensor>& got, const std::vector<at::Tensor>& want,
                   Bound bound, const std::string& what) {
  const char* names[] = {"value", "grad input", "grad 1", "grad 2", "grad 3"};
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) ExpectNear(got[i], want[i], bound.rel_elem, bound.rel_scale, what + " " + names[i]);
}

// bfloat16-representable float32 values, so both sides start from the same numbers.
at::Tensor Bf16Values(const at::Tensor& t) { return t.to(at::kBFloat16).to(at::kFloat); }

// float32 kernels against ATen float32: float32 rounding only.
constexpr Bound kF32{0, 1e-4};
// bf16 in and out, the output rounded once from float32 arithmetic on the same bf16 values.
constexpr Bound kBf16Rounded{1.0 / 256, 2e-4};
// GELU + GRN in bf16: u = GELU(h + bias) is stored in bf16 and y and dh are computed from the
// rounded u (as the float32 kernels do from theirs), so roundings add up: a few 2^-8 of the scale.
constexpr Bound kBf16Chained{0, 3e-2};

TEST(CpuKernelsReference, GrnMatchesAten) {
  at::manual_seed(31);
  // 37 channels: full 8- and 16-lane vectors and a remainder; a channel of zeros (norm 0).
  at::Tensor x = Bf16Values(at::randn({3, 5, 4, 37}) * 1.5);
  x[1].select(2, 7).zero_();
  const at::Tensor gamma = Bf16Values(at::randn({1, 1, 1, 37}));
  const at::Tensor beta = Bf16Values(at::randn({1, 1, 1, 37}));
  const at::Tensor probe = Bf16Values(at::randn(x.sizes()));
  auto ref_in = Leaves({x, gamma, beta});
  const auto ref = ValueAndGrads(GrnPlain(ref_in[0], ref_in[1], ref_in[2], 1e-6), ref_in, probe);
  for (const CpuKernels* k : RunnableCpuKernels()) {
    ScopedKernels scope(k);
    for (const at::ScalarType dtype : {at::kFloat, at::kBFloat16}) {
      auto in = Leaves({x.to(dtype), gamma, beta});
      const at::Tensor y = GrnFused(in[0], in[1], in[2], 1e-6);
      EXPECT_EQ(y.scalar_type(), dtype);
      ExpectAllNear(ValueAndGrads(y, in, probe), ref, dtype == at::kFloat ? kF32 : kBf16Rounded,
                    std::string("GRN ") + k->name + (dtype == at::kFloat ? " f32" : " bf16"));
    }
  }
}

TEST(CpuKernelsReference, GeluGrnMatchesAten) {
  at::manual_seed(32);
  at::Tensor h = Bf16Values(at::randn({3, 4, 5, 37}) * 2);
  h[0].select(2, 5).fill_(-30);  // GELU(-30) = 0: a channel whose norm is 0
  const at::Tensor bias = Bf16Values(at::randn({37}) * 0.3);
  const at::Tensor gamma = Bf16Values(at::randn({1, 1, 1, 37}));
  const at::Tensor beta = Bf16Values(at::randn({1, 1, 1, 37}));
  const at::Tensor probe = Bf16Values(at::randn(h.sizes()));
  auto ref_in = Leaves({h, bias, gamma, beta});
  const auto ref = ValueAndGrads(
      GrnPlain(at::gelu(ref_in[0] + ref_in[1]), ref_in[2], ref_in[3], 1e-6), ref_in, probe);
  for (const CpuKernels* k : RunnableCpuKernels()) {
    ScopedKernels scope(k);
    for (const at::ScalarType dtype : {at::kFloat, at::kBFloat16}) {
      auto in = Leaves({h.to(dtype), bias, gamma, beta});
      const at::Tensor y = GeluGrnFused(in[0], in[1], in[2], in[3], 1e-6);
      EXPECT_EQ(y.scalar_type(), dtype);
      ExpectAllNear(ValueAndGrads(y, in, probe), ref, dtype == at::kFloat ? kF32 : kBf16Chained,
                    std::string("GELU+GRN ") + k->name + (dtype == at::kFloat ? " f32" : " bf16"));
    }
  }
}

// bfloat16 LayerNorm (its own kernels; float32 input runs at::layer_norm itself) against
// at::layer_norm in float32, channels-last rows and the channels_first module's permuted view.
TEST(CpuKernelsReference, LayerNormBf16MatchesAten) {
  at::manual_seed(33);
  const at::Tensor x = Bf16Values(at::randn({3, 5, 4, 37}) * 2 + 0.5);
  const at::Tensor w = Bf16Values(at::rand({37}) + 0.5), b = Bf16Values(at::randn({37}));
  const at::Tensor probe = Bf16Values(at::randn(x.sizes()));
  auto ref_in = Leaves({x, w, b});
  const auto ref = ValueAndGrads(at::layer_norm(ref_in[0], {37}, ref_in[1], ref_in[2], 1e-6),
                                 ref_in, probe);
  for (const CpuKernels* k : RunnableCpuKernels()) {
    ScopedKernels scope(k);
    for (const DataFormat format : {DataFormat::kChannelsLast, DataFormat::kChannelsFirst}) {
      LayerNorm ln(LayerNormOptions(37).data_format(format));
      {
        c10::NoGradGuard no_grad;
        ln->weight.copy_(w);
        ln->bias.copy_(b);
      }
      const bool last = format == DataFormat::kChannelsLast;
      at::Tensor xi = x.to(at::kBFloat16);
      if (!last) xi = xi.permute({0, 3, 1, 2});  // channels_last NCHW
      xi = xi.detach().requires_grad_(true);
      at::Tensor y = ln->forward(xi);
      EXPECT_EQ(y.scalar_type(), at::kBFloat16);
      at::Tensor p = last ? probe : probe.permute({0, 3, 1, 2});
      auto got = ValueAndGrads(y, {xi, ln->weight, ln->bias}, p);
      if (!last) {
        got[0] = got[0].permute({0, 2, 3, 1});
        got[1] = got[1].permute({0, 2, 3, 1});
      }
      ExpectAllNear(got, ref, kBf16Rounded,
                    std::string("LayerNorm bf16 ") + k->name + (last ? " last" : " first"));
    }
  }
}

// The depthwise kernel (float32 only: under autocast the block takes at::conv2d) against
// at::conv2d with groups = C, on maps from 1x2 (most taps outside) to 14x15 (interior tiles, 5 channels past the vector lanes).
TEST(CpuKernelsReference, DepthwiseConvMatchesAten) {
  at::manual_seed(34);
  for (const int64_t size : {1, 2, 5, 9, 14}) {
    const at::Tensor x =
        at::randn({2, 37, size, size + 1}).contiguous(at::MemoryFormat::ChannelsLast);
    const at::Tensor w = at::randn({37, 1, 7, 7}) * 0.2, b = at::randn({37});
    const at::Tensor probe = at::randn(x.sizes()).contiguous(at::MemoryFormat::ChannelsLast);
    auto ref_in = Leaves({x, w, b});
    const auto ref = ValueAndGrads(
        at::conv2d(ref_in[0], ref_in[1], ref_in[2], 1, 3, 1, 37), ref_in, probe);
    for (const CpuKernels* k : RunnableCpuKernels()) {
      ScopedKernels scope(k);
      auto in = Leaves({x, w, b});  // clone() keeps x channels-last
      ExpectAllNear(ValueAndGrads(DepthwiseConvKernel(in[0], in[1], in[2]), in, probe), ref, kF32,
                    std::string("depthwise ") + k->name + " size " + std::to_string(size));
    }
  }
}

// The bounds above would see a wrong kernel: GRN with gamma 3% off (a small error as kernel
// bugs go) exceeds the bfloat16 bounds, and a float32 GRN that rounded its input to bfloat16
// (a kernel that loses precision) exceeds the float32 one.
TEST(CpuKernelsReference, ReferenceTolerancesCatchAWrongResult) {
  at::manual_seed(35);
  const at::Tensor x = at::randn({2, 4, 4, 37}) * 1.5;
  const at::Tensor gamma = at::randn({1, 1, 1, 37}), beta = at::randn({1, 1, 1, 37});
  const at::Tensor right = GrnPlain(x, gamma, beta, 1e-6);
  const at::Tensor scale = right.abs().max();
  const auto exceeds = [&](const at::Tensor& wrong, Bound b) {
    return ((wrong - right).abs() > b.rel_elem * right.abs() + b.rel_scale * scale)
        .any()
        .item<bool>();
  };
  EXPECT_TRUE(exceeds(GrnPlain(x, gamma * 1.03, beta, 1e-6), kBf16Rounded));
  EXPECT_TRUE(exceeds(GrnPlain(x, gamma * 1.1, beta, 1e-6), kBf16Chained));
  EXPECT_TRUE(exceeds(GrnPlain(Bf16Values(x), gamma, beta, 1e-6), kF32));
}

}  // namespace
}  // namespace convnextv2::models
