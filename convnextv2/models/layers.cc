#include "convnextv2/models/layers.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <c10/util/Exception.h>
#include <torch/csrc/autograd/custom_function.h>

#include <tuple>

#include "convnextv2/models/cuda_ops.h"
#include "convnextv2/models/dwconv_kernels.h"
#include "convnextv2/models/grn_kernels.h"
#include "convnextv2/models/layer_norm_kernels.h"
#include "convnextv2/util/torch_compat.h"

namespace convnextv2::models {

LayerNormImpl::LayerNormImpl(LayerNormOptions options) : options(std::move(options)) { reset(); }

void LayerNormImpl::reset() {
  TORCH_CHECK(options.dim() > 0, "LayerNorm: dim must be positive, got ", options.dim());
  TORCH_CHECK(options.eps() > 0, "LayerNorm: eps must be positive, got ", options.eps());
  weight = register_parameter("weight", at::ones({options.dim()}));
  bias = register_parameter("bias", at::zeros({options.dim()}));
}

namespace {

// LayerNorm of bfloat16 input (autocast's conv2d output) with the float32 weights: bf16 out,
// float32 statistics (layer_norm_kernels.h).
class LayerNormBf16Function : public torch::autograd::Function<LayerNormBf16Function> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x,
                            const at::Tensor& weight, const at::Tensor& bias, double eps) {
    auto [y, mean, rstd] = internal::LayerNormBf16ForwardCpu(x, weight, bias, eps);
    ctx->save_for_backward({x, weight, mean, rstd});
    return y;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    auto [dx, dweight, dbias] =
        internal::LayerNormBf16BackwardCpu(grads[0], saved[0], saved[1], saved[2], saved[3]);
    return {dx, dweight, dbias, at::Tensor()};
  }
};

// LayerNorm over the last dimension of x: the bf16 kernels where they apply, else layer_norm
// in the weights' dtype (CPU layer_norm in libtorch 1.13 rejects mixed dtypes).
at::Tensor LayerNormLastDim(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                            double eps) {
  if (internal::LayerNormBf16Applies(x, weight)) {
    return LayerNormBf16Function::apply(x, weight, bias, eps);
  }
  const at::Tensor xw = x.scalar_type() == weight.scalar_type() ? x : x.to(weight.scalar_type());
  return at::layer_norm(xw, {weight.size(0)}, weight, bias, eps);
}

}  // namespace

at::Tensor LayerNormImpl::forward(const at::Tensor& x) {
  const int64_t c = options.dim();
  if (options.data_format() == DataFormat::kChannelsLast) {
    return LayerNormLastDim(x, weight, bias, options.eps());
  }
  TORCH_CHECK(x.dim() == 4 && x.size(1) == c, "LayerNorm(channels_first): expected (N, ", c,
              ", H, W), got ", x.sizes());
  return LayerNormLastDim(x.permute({0, 2, 3, 1}), weight, bias, options.eps())
      .permute({0, 3, 1, 2});
}

GRNImpl::GRNImpl(GRNOptions options) : options(std::move(options)) { reset(); }

void GRNImpl::reset() {
  TORCH_CHECK(options.dim() > 0, "GRN: dim must be positive, got ", options.dim());
  gamma = register_parameter("gamma", at::zeros({1, 1, 1, options.dim()}));
  beta = register_parameter("beta", at::zeros({1, 1, 1, options.dim()}));
}

at::Tensor GRNImpl::forward(const at::Tensor& x) {
  TORCH_CHECK(x.dim() == 4 && x.size(3) == options.dim(), "GRN: expected (N, H, W, ",
              options.dim(), "), got ", x.sizes());
  return options.fused() ? GrnFused(x, gamma, beta, options.eps())
                         : GrnPlain(x, gamma, beta, options.eps());
}

at::Tensor GrnPlain(const at::Tensor& x, const at::Tensor& gamma, const at::Tensor& beta,
                    double eps) {
  at::Tensor gx = at::linalg_vector_norm(x, 2, at::IntArrayRef{1, 2}, /*keepdim=*/true);
  at::Tensor nx = gx / (gx.mean(-1, /*keepdim=*/true) + eps);
  return gamma * (x * nx) + beta + x;
}

namespace {

// y = x * s + beta with s = 1 + gamma * Nx, Nx = G / (m + eps), G = ||x||_{H,W}, m = mean_C G.
// Backward, with g = dL/dy and P = sum_{H,W} g * x:
//   dbeta = sum_{N,H,W} g;  dgamma = sum_N P * Nx;  a = gamma * P = dL/dNx
//   dL/dG[n,k] = a[n,k] / (m + eps) - sum_c a[n,c] G[n,c] / (C (m + eps)^2)
//   dx = g * s + x * dL/dG / G      (0 where G == 0, as the norm's subgradient)
// On CPU float32 and bfloat16 contiguous NHWC tensors both directions are two streaming passes
// each over the activation (grn_kernels.cc; bfloat16 in and out, float32 sums and statistics);
// on CUDA (float32/16, bfloat16) grn_cuda.cu's kernels (cuda_ops.h); elsewhere the same formulas
// run as ATen ops.
class GrnFunction : public torch::autograd::Function<GrnFunction> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x,
                            const at::Tensor& gamma, const at::Tensor& beta, double eps) {
    at::Tensor y, g_norm, denom, nx, scale;
    if (internal::GrnCpuKernelApplies(x)) {
      std::tie(y, g_norm, denom, nx, scale) = internal::GrnForwardCpu(x, gamma, beta, eps);
    } else {
      g_norm = at::linalg_vector_norm(x, 2, at::IntArrayRef{1, 2}, /*keepdim=*/true);
      denom = g_norm.mean(-1, /*keepdim=*/true) + eps;
      nx = g_norm / denom;
      scale = at::addcmul(at::ones_like(nx), gamma, nx);
      y = at::addcmul(beta, x, scale);
    }
    ctx->save_for_backward({x, gamma, g_norm, denom, nx, scale});
    return y;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor& x = saved[0];
    const at::Tensor& gamma = saved[1];
    const at::Tensor& g_norm = saved[2];
    const at::Tensor& denom = saved[3];
    const at::Tensor& nx = saved[4];
    const at::Tensor& scale = saved[5];
    const at::Tensor g = grads[0].contiguous(x.suggest_memory_format());
    if (internal::GrnCpuKernelApplies(x)) {
      auto [dx, dgamma, dbeta] = internal::GrnBackwardCpu(g, x, gamma, g_norm, denom, nx, scale);
      return {dx, dgamma, dbeta, at::Tensor()};
    }
    const int64_t channels = x.size(3);
    at::Tensor p = (g * x).sum({1, 2}, /*keepdim=*/true);
    at::Tensor dbeta = g.sum({0, 1, 2}, /*keepdim=*/true);
    at::Tensor dgamma = (p * nx).sum(0, /*keepdim=*/true);
    at::Tensor a = gamma * p;
    at::Tensor d_g = a / denom - (a * g_norm).sum(-1, /*keepdim=*/true) /
                                     (denom * denom * static_cast<double>(channels));
    at::Tensor inv = at::where(g_norm > 0, g_norm.reciprocal(), at::zeros_like(g_norm));
    at::Tensor dx = at::addcmul(g * scale, x, d_g * inv);
    return {dx, dgamma, dbeta, at::Tensor()};
  }
};

}  // namespace

namespace {

class GeluGrnFunction : public torch::autograd::Function<GeluGrnFunction> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& h,
                            const at::Tensor& bias, const at::Tensor& gamma,
                            const at::Tensor& beta, double eps) {
    auto [y, u, g_norm, denom, nx, scale] =
        internal::GeluGrnForwardCpu(h, bias, gamma, beta, eps);
    ctx->save_for_backward({h, u, bias, gamma, g_norm, denom, nx, scale});
    return y;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto s = ctx->get_saved_variables();
    auto [dh, dbias, dgamma, dbeta] =
        internal::GeluGrnBackwardCpu(grads[0], s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]);
    return {dh, dbias, dgamma, dbeta, at::Tensor()};
  }
};

}  // namespace

at::Tensor GeluGrnFused(const at::Tensor& h, const at::Tensor& bias, const at::Tensor& gamma,
                        const at::Tensor& beta, double eps) {
  if (internal::GrnCpuKernelApplies(h) && bias.dim() == 1 && bias.size(0) == h.size(3)) {
    return GeluGrnFunction::apply(h, bias, gamma, beta, eps);
  }
  return GrnFused(at::gelu(h + bias), gamma, beta, eps);
}

bool GeluGrnLinearFolds(const at::Tensor& h, const at::Tensor& bias1, const at::Tensor& weight2,
                        const at::Tensor& bias2) {
  return !c10::GradMode::is_enabled() && internal::GrnCpuKernelApplies(h) &&
         h.scalar_type() == at::kFloat && !compat::AutocastEnabled(c10::DeviceType::CPU) &&
         bias1.dim() == 1 && bias1.size(0) == h.size(3) && weight2.dim() == 2 &&
         weight2.size(1) == h.size(3) && weight2.scalar_type() == at::kFloat &&
         bias2.defined() && bias2.scalar_type() == at::kFloat && bias2.dim() == 1 &&
         bias2.size(0) == weight2.size(0) &&
         h.size(1) * h.size(2) >= kGeluGrnLinearFoldMinPixelsPerChannel * weight2.size(0);
}

at::Tensor GeluGrnLinear(const at::Tensor& h, const at::Tensor& bias1, const at::Tensor& gamma,
                         const at::Tensor& beta, double eps, const at::Tensor& weight2,
                         const at::Tensor& bias2) {
  if (!GeluGrnLinearFolds(h, bias1, weight2, bias2)) {
    return at::linear(GeluGrnFused(h, bias1, gamma, beta, eps), weight2, bias2);
  }
  const int64_t n = h.size(0), hh = h.size(1), ww = h.size(2), c4 = h.size(3);
  const int64_t c = weight2.size(0);
  // u and scale (N, 1, 1, 4C); pass 2 of the kernel (y) skipped.
  const auto stats = internal::GeluGrnForwardCpu(h, bias1, gamma, beta, eps, /*with_y=*/false);
  const at::Tensor& u = std::get<1>(stats);
  const at::Tensor& scale = std::get<5>(stats);
  const at::Tensor per_sample = weight2.unsqueeze(0) * scale.view({n, 1, c4});  // (N, C, 4C)
  const at::Tensor bias = at::addmv(bias2, weight2, beta.reshape({c4}).to(at::kFloat));
  return at::baddbmm(bias.view({1, 1, c}), u.view({n, hh * ww, c4}), per_sample.transpose(1, 2))
      .view({n, hh, ww, c});
}

at::Tensor GrnFused(const at::Tensor& x, const at::Tensor& gamma, const at::Tensor& beta,
                    double eps) {
  if (internal::kCudaKernels && internal::GrnCudaApplies(x)) {
    return internal::GeluGrnCuda(x, at::Tensor(), gamma, beta, eps);
  }
  return GrnFunction::apply(x, gamma, beta, eps);
}

at::Tensor DepthwiseConvPlain(const at::Tensor& x, const at::Tensor& weight,
                              const at::Tensor& bias) {
  return at::conv2d(x, weight, bias, /*stride=*/1, /*padding=*/weight.size(2) / 2,
                    /*dilation=*/1, /*groups=*/weight.size(0));
}

bool DepthwiseConvKernelApplies(const at::Tensor& x, const at::Tensor& weight,
                                const at::Tensor& bias) {
  return x.device().is_cpu() && x.scalar_type() == at::kFloat && x.dim() == 4 &&
         x.is_contiguous(at::MemoryFormat::ChannelsLast) &&
         !compat::AutocastEnabled(c10::DeviceType::CPU) &&
         weight.scalar_type() == at::kFloat && bias.defined() &&
         bias.scalar_type() == at::kFloat && weight.dim() == 4 &&
         weight.size(0) == x.size(1) && weight.size(1) == 1 && weight.size(2) == weight.size(3) &&
         weight.size(2) % 2 == 1 && weight.size(2) <= 7 && bias.numel() == x.size(1);
}

namespace {

class DwConvFunction : public torch::autograd::Function<DwConvFunction> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x,
                            const at::Tensor& weight, const at::Tensor& bias) {
    const int64_t c = weight.size(0), k = weight.size(2);
    // (C, 1, k, k) -> (k, k, C): one tap's filter values are contiguous over channels.
    const at::Tensor taps = weight.reshape({c, k * k}).t().contiguous().view({k, k, c});
    ctx->save_for_backward({x, taps, weight});
    return internal::DwConvForwardCpu(x, weight, taps, bias.contiguous());
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor& x = saved[0];
    const at::Tensor& taps = saved[1];
    const at::Tensor& weight = saved[2];
    const at::Tensor g = grads[0].contiguous(at::MemoryFormat::ChannelsLast);
    auto [dx, dtaps, dbias] = internal::DwConvBackwardCpu(g, x, weight, taps);
    const at::Tensor dweight = dtaps.permute({2, 0, 1})
                                   .unsqueeze(1)
                                   .contiguous(weight.suggest_memory_format());
    return {dx, dweight, dbias};
  }
};

}  // namespace

at::Tensor DepthwiseConvKernel(const at::Tensor& x, const at::Tensor& weight,
                               const at::Tensor& bias) {
  TORCH_CHECK(DepthwiseConvKernelApplies(x, weight, bias),
              "DepthwiseConvKernel: needs float32 channels-last CPU input (N, C, H, W), weight "
              "(C, 1, k, k) with k odd and a bias (C), outside autocast; got x ",
              x.sizes(), " ", x.scalar_type(), ", weight ", weight.sizes());
  return DwConvFunction::apply(x, weight, bias);
}

at::Tensor DepthwiseConvFused(const at::Tensor& x, const at::Tensor& weight,
                              const at::Tensor& bias) {
  if (DepthwiseConvKernelApplies(x, weight, bias)) {
    return DwConvFunction::apply(x, weight, bias);
  }
  return DepthwiseConvPlain(x, weight, bias);
}

at::Tensor DropPathImpl::forward(const at::Tensor& x) {
  if (drop_prob == 0.0 || !is_training()) return x;
  const double keep = 1.0 - drop_prob;
  std::vector<int64_t> shape(x.dim(), 1);
  shape[0] = x.size(0);
  at::Tensor mask = at::empty(shape, x.options()).bernoulli_(keep);
  if (keep > 0.0) mask.div_(keep);
  return x * mask;
}

}  // namespace convnextv2::models
