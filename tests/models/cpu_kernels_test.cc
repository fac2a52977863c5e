// The run-time CPU dispatch of the fused layers' kernels (cpu_kernels.h): the wide builds
// against the baseline one on the same data, through the layers (values and gradients of the
// fused GRN and the depthwise-convolution kernel), and the bfloat16 kernels against the float32
// path. The AVX2 / AVX-512 builds are compared where the CPU runs them (the test prints which);
// on a CPU with neither, those comparisons skip, saying so.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <c10/core/GradMode.h>
#include <torch/autograd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "convnextv2/models/convnextv2.h"
#include "convnextv2/models/cpu_kernels.h"
#include "convnextv2/models/layers.h"
#include "tests/models/scoped_cpu_kernels.h"

namespace convnextv2::models {
namespace {

using internal::CpuKernels;

using ScopedKernels = testing_kernels::ScopedCpuKernels;

// Values and gradients of GrnFused on x (float32 or bfloat16) with the given kernels.
std::vector<at::Tensor> GrnRun(const CpuKernels* kernels, const at::Tensor& x_in,
                               const at::Tensor& gamma_in, const at::Tensor& beta_in,
                               const at::Tensor& probe) {
  ScopedKernels scope(kernels);
  const at::Tensor x = x_in.detach().requires_grad_(true);
  const at::Tensor gamma = gamma_in.detach().requires_grad_(true);
  const at::Tensor beta = beta_in.detach().requires_grad_(true);
  const at::Tensor y = GrnFused(x, gamma, beta, 1e-6);
  auto g = torch::autograd::grad({y}, {x, gamma, beta}, {probe.to(y.scalar_type())});
  return {y.to(at::kFloat), g[0].to(at::kFloat), g[1], g[2]};
}

std::vector<at::Tensor> DwConvRun(const CpuKernels* kernels, const at::Tensor& x_in,
                                  const at::Tensor& w_in, const at::Tensor& b_in,
                                  const at::Tensor& probe) {
  ScopedKernels scope(kernels);
  const at::Tensor x = x_in.detach().requires_grad_(true);
  const at::Tensor w = w_in.detach().requires_grad_(true);
  const at::Tensor b = b_in.detach().requires_grad_(true);
  const at::Tensor y = DepthwiseConvKernel(x, w, b);
  auto g = torch::autograd::grad({y}, {x, w, b}, {probe});
  return {y, g[0], g[1], g[2]};
}

void ExpectClose(const std::vector<at::Tensor>& a, const std::vector<at::Tensor>& b, double rtol,
                 double atol, const std::string& what) {
  ASSERT_EQ(a.size(), b.size());
  const char* names[] = {"value", "grad x", "grad weight", "grad bias"};
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].sizes(), b[i].sizes()) << what << " " << names[i];
    EXPECT_TRUE(at::allclose(a[i], b[i], rtol, atol))
        << what << " " << names[i] << ": max diff " << (a[i] - b[i]).abs().max().item<float>()
        << " of max " << a[i].abs().max().item<float>();
    // A kernel that wrote nothing (or zeros) would agree with another such one.
    EXPECT_GT(a[i].abs().max().item<float>(), 1e-3) << what << " " << names[i];
  }
}

// The builds this CPU runs besides the baseline (AVX2, AVX-512).
std::vector<const CpuKernels*> WideKernels() {
  std::vector<const CpuKernels*> sets;
  for (const internal::CpuIsa isa : {internal::CpuIsa::kAvx2, internal::CpuIsa::kAvx512}) {
    if (const CpuKernels* k = internal::CpuKernelsFor(isa)) sets.push_back(k);
  }
  return sets;
}

// Every build this CPU runs, the baseline first.
std::vector<const CpuKernels*> AllKernels() {
  std::vector<const CpuKernels*> sets{&internal::kGenericCpuKernels};
  for (const CpuKernels* k : WideKernels()) sets.push_back(k);
  return sets;
}

TEST(CpuKernels, ActiveIsTheWidestSupported) {
  EXPECT_STREQ(internal::kGenericCpuKernels.name, "generic");
  EXPECT_STREQ(internal::ActiveCpuKernels().name, AllKernels().back()->name);
  for (const CpuKernels* k : WideKernels()) std::printf("this CPU runs the %s build\n", k->name);
}

TEST(CpuKernels, GrnWideEqualsGeneric) {
  if (WideKernels().empty()) GTEST_SKIP() << "this CPU has neither AVX2+FMA nor AVX-512";
  at::manual_seed(21);
  // 37 channels: full 8- and 16-lane vectors and a remainder; a zero channel (norm 0).
  at::Tensor x = at::randn({3, 5, 4, 37});
  x[1].select(2, 7).zero_();
  const at::Tensor gamma = at::randn({1, 1, 1, 37}), beta = at::randn({1, 1, 1, 37});
  const at::Tensor probe = at::randn(x.sizes());
  for (const CpuKernels* fast : WideKernels()) {
    for (const at::ScalarType dtype : {at::kFloat, at::kBFloat16}) {
      const auto a = GrnRun(&internal::kGenericCpuKernels, x.to(dtype), gamma, beta, probe);
      const auto b = GrnRun(fast, x.to(dtype), gamma, beta, probe);
      // float32: FMA contraction only; bfloat16: a rounding may land one bf16 step apart.
      const bool f32 = dtype == at::kFloat;
      ExpectClose(a, b, f32 ? 1e-5 : 1e-2, f32 ? 1e-5 : 1e-2,
                  std::string(fast->name) + (f32 ? " float32" : " bfloat16"));
    }
  }
}

TEST(CpuKernels, DepthwiseConvWideEqualsGeneric) {
  if (WideKernels().empty()) GTEST_SKIP() << "this CPU has neither AVX2+FMA nor AVX-512";
  at::manual_seed(22);
  for (const int64_t size : {1, 2, 5, 9, 14}) {
    const at::Tensor x =
        at::randn({2, 37, size, size + 1}).contiguous(at::MemoryFormat::ChannelsLast);
    const at::Tensor w = at::randn({37, 1, 7, 7}).contiguous(at::MemoryFormat::ChannelsLast);
    const at::Tensor b = at::randn({37});
    const at::Tensor probe = at::randn(x.sizes()).contiguous(at::MemoryFormat::ChannelsLast);
    for (const CpuKernels* fast : WideKernels()) {
      ExpectClose(DwConvRun(&internal::kGenericCpuKernels, x, w, b, probe),
                  DwConvRun(fast, x, w, b, probe), 1e-5, 1e-5,
                  std::string(fast->name) + " size " + std::to_string(size));
    }
  }
}

// The bfloat16 GRN (bf16 in and out, float32 sums) against the float32 one on the same values,
// with every kernel set this CPU runs: within what bf16 rounding of y and dx allows.
TEST(CpuKernels, GrnBf16MatchesFloat32) {
  at::manual_seed(23);
  const at::Tensor x = at::randn({2, 6, 6, 40}).to(at::kBFloat16).to(at::kFloat);
  const at::Tensor gamma = at::randn({1, 1, 1, 40}), beta = at::randn({1, 1, 1, 40});
  const at::Tensor probe = at::randn(x.sizes()).to(at::kBFloat16).to(at::kFloat);
  const std::vector<const CpuKernels*> sets = AllKernels();
  for (const CpuKernels* kernels : sets) {
    const auto f32 = GrnRun(kernels, x, gamma, beta, probe);
    const auto bf16 = GrnRun(kernels, x.to(at::kBFloat16), gamma, beta, probe);
    ExpectClose(f32, bf16, 1e-2, 2e-2, std::string("bf16 vs f32, ") + kernels->name);
  }
  const at::Tensor y = GrnFused(x.to(at::kBFloat16), gamma, beta, 1e-6);
  EXPECT_EQ(y.scalar_type(), at::kBFloat16);
}

// The bfloat16 LayerNorm (both formats) against the float32 module on the same values, with
// every kernel set this CPU runs; and the two sets against each other.
TEST(CpuKernels, LayerNormBf16MatchesFloat32) {
  at::manual_seed(24);
  const std::vector<const CpuKernels*> sets = AllKernels();
  for (const DataFormat format : {DataFormat::kChannelsLast, DataFormat::kChannelsFirst}) {
    LayerNorm ln(LayerNormOptions(37).data_format(format));
    {
      c10::NoGradGuard no_grad;
      ln->weight.uniform_(0.5, 1.5);
      ln->bias.uniform_(-1, 1);
    }
    at::Tensor x = at::randn({3, 5, 4, 37}) * 2 + 0.5;  // NHWC values
    if (format == DataFormat::kChannelsFirst) x = x.permute({0, 3, 1, 2});  // channels_last NCHW
    x = x.to(at::kBFloat16).to(at::kFloat);
    const at::Tensor probe = at::randn(x.sizes()).to(at::kBFloat16).to(at::kFloat);
    auto run = [&](const CpuKernels* kernels, at::ScalarType dtype) {
      ScopedKernels scope(kernels);
      const at::Tensor xi = x.to(dtype).detach().requires_grad_(true);
      const at::Tensor y = ln->forward(xi);
      EXPECT_EQ(y.scalar_type(), dtype);
      auto g = torch::autograd::grad({y}, {xi, ln->weight, ln->bias}, {probe.to(dtype)});
      return std::vector<at::Tensor>{y.to(at::kFloat), g[0].to(at::kFloat), g[1], g[2]};
    };
    const std::string what = format == DataFormat::kChannelsLast ? "channels_last" : "first";
    const auto f32 = run(&internal::kGenericCpuKernels, at::kFloat);
    std::vector<std::vector<at::Tensor>> bf16;
    for (const CpuKernels* kernels : sets) {
      bf16.push_back(run(kernels, at::kBFloat16));
      ExpectClose(f32, bf16.back(), 2e-2, 3e-2, what + " bf16 vs f32, " + kernels->name);
    }
    for (size_t i = 1; i < bf16.size(); ++i) {
      ExpectClose(bf16[0], bf16[i], 1e-2, 1e-2, what + " " + sets[i]->name + " vs generic");
    }
  }
}

// GRN(GELU(h + bias)) in one node against the ATen chain, float32 (tight) and bfloat16 (within
// bf16 rounding of u, y and dh), with every kernel set this CPU runs.
TEST(CpuKernels, GeluGrnFusedMatchesChain) {
  at::manual_seed(25);
  at::Tensor h = (at::randn({3, 4, 5, 37}) * 2).to(at::kBFloat16).to(at::kFloat);
  h[0].select(2, 5).fill_(-30);  // GELU(-30) = 0: a channel whose norm is 0
  const at::Tensor bias = at::randn({37}) * 0.1, gamma = at::randn({1, 1, 1, 37});
  const at::Tensor beta = at::randn({1, 1, 1, 37});
  const at::Tensor probe = at::randn(h.sizes()).to(at::kBFloat16).to(at::kFloat);
  auto run = [&](const CpuKernels* kernels, at::ScalarType dtype, bool fused) {
    ScopedKernels scope(kernels);
    const at::Tensor hi = h.to(dtype).detach().requires_grad_(true);
    const at::Tensor b = bias.detach().requires_grad_(true);
    const at::Tensor gm = gamma.detach().requires_grad_(true);
    const at::Tensor bt = beta.detach().requires_grad_(true);
    const at::Tensor y = fused ? GeluGrnFused(hi, b, gm, bt, 1e-6)
                               : GrnPlain(at::gelu(hi.to(at::kFloat) + b), gm, bt, 1e-6);
    if (fused) {
      EXPECT_EQ(y.scalar_type(), dtype);
    }
    auto g = torch::autograd::grad({y}, {hi, b, gm, bt}, {probe.to(y.scalar_type())});
    return std::vector<at::Tensor>{y.to(at::kFloat), g[0].to(at::kFloat), g[1], g[2], g[3]};
  };
  const auto chain = run(&internal::kGenericCpuKernels, at::kFloat, false);
  const std::vector<const CpuKernels*> sets = AllKernels();
  for (const CpuKernels* kernels : sets) {
    const std::string name = kernels->name;
    ExpectClose(chain, run(kernels, at::kFloat, true), 1e-4, 1e-4, "float32 " + name);
    ExpectClose(chain, run(kernels, at::kBFloat16, true), 3e-2, 5e-2, "bfloat16 " + name);
  }
}

// The block with the fused CPU kernels (GELU + GRN, LayerNorm path, depthwise convolution)
// against fused_grn and fused_dwconv off, same weights: values and every parameter's gradient.
TEST(CpuKernels, BlockFusedEqualsPlainValuesAndGradients) {
  at::manual_seed(26);
  Block fused(BlockOptions(16));
  Block plain(BlockOptions(16).fused_grn(false).fused_dwconv(false));
  {
    c10::NoGradGuard no_grad;
    for (auto& p : fused->named_parameters()) p.value().normal_(0, 0.3);
    const auto src = fused->named_parameters();
    for (auto& p : plain->named_parameters()) p.value().copy_(src[p.key()]);
  }
  for (const int64_t size : {2, 6}) {
    const at::Tensor x = at::randn({2, 16, size, size}).contiguous(at::MemoryFormat::ChannelsLast);
    const at::Tensor probe = at::randn(x.sizes());
    const at::Tensor yf = fused->forward(x), yp = plain->forward(x);
    EXPECT_TRUE(at::allclose(yf, yp, 1e-4, 1e-4)) << (yf - yp).abs().max().item<float>();
    const auto gf = torch::autograd::grad({yf}, fused->parameters(), {probe});
    const auto gp = torch::autograd::grad({yp}, plain->parameters(), {probe});
    ASSERT_EQ(gf.size(), gp.size());
    for (size_t i = 0; i < gf.size(); ++i) {
      EXPECT_TRUE(at::allclose(gf[i], gp[i], 1e-3, 1e-4))
          << "size " << size << " parameter " << i << " max diff "
          << (gf[i] - gp[i]).abs().max().item<float>();
    }
  }
}

}  // namespace
}  // namespace convnextv2::models
