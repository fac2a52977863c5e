// Compiled under --config=cuda only (see BUILD.bazel): the tensor plumbing around grn_cuda.cu.
#include "convnextv2/models/cuda_ops.h"

#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/util/Optional.h>
#include <torch/csrc/autograd/custom_function.h>

#include "convnextv2/models/grn_cuda.h"

namespace convnextv2::models::internal {
namespace {

bool KernelDtype(at::ScalarType t, cuda::Dtype* out) {
  switch (t) {
    case at::kFloat:
      *out = cuda::Dtype::kFloat32;
      return true;
    case at::kHalf:
      *out = cuda::Dtype::kFloat16;
      return true;
    case at::kBFloat16:
      *out = cuda::Dtype::kBFloat16;
      return true;
    default:
      return false;
  }
}

cuda::Dtype KernelDtypeOrDie(at::ScalarType t) {
  cuda::Dtype d;
  TORCH_CHECK(KernelDtype(t, &d), "CUDA GRN kernels: unsupported dtype ", t);
  return d;
}

// The kernels' device: CUDA, or the CPU under the emulation that tests this file without a GPU
// (//tests/models:cuda_ops_emulated_test).
bool OnKernelDevice(const at::Tensor& t) {
#ifdef CONVNEXTV2_CUDA_EMULATION
  return t.is_cpu();
#else
  return t.is_cuda();
#endif
}

const float* FloatPtrOrNull(const at::Tensor& t) {
  return t.defined() ? t.data_ptr<float>() : nullptr;
}

// Parameters enter the kernels as contiguous float32 (autocast keeps them float32 already).
at::Tensor AsFloat(const at::Tensor& t) {
  return t.defined() ? t.to(at::kFloat).contiguous() : t;
}

// An input that may be undefined goes to Function::apply as an optional: apply() describes every
// at::Tensor argument by its device and layout, which an undefined tensor does not have ("tensor
// does not have a device"), in libtorch 1.13 and 2.11 alike.
c10::optional<at::Tensor> Optional(const at::Tensor& t) {
  return t.defined() ? c10::optional<at::Tensor>(t) : c10::nullopt;
}

class GeluGrnFunction : public torch::autograd::Function<GeluGrnFunction> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& h_in,
                            const c10::optional<at::Tensor>& bias_opt, const at::Tensor& gamma_in,
                            const at::Tensor& beta_in, double eps) {
    const c10::cuda::CUDAGuard guard(h_in.device());
    const at::Tensor h = h_in.contiguous();
    const at::Tensor bias_in = bias_opt.value_or(at::Tensor());
    const at::Tensor bias = AsFloat(bias_in);
    const at::Tensor gamma = AsFloat(gamma_in);
    const at::Tensor beta = AsFloat(beta_in);
    const int64_t c = h.size(3);
    const cuda::GrnShape shape{h.size(0), h.size(1) * h.size(2), c};
    const at::TensorOptions f32 = h.options().dtype(at::kFloat);
    at::Tensor sumsq = at::zeros({shape.n, c}, f32);
    at::Tensor g_norm = at::empty({shape.n, c}, f32);
    at::Tensor denom = at::empty({shape.n}, f32);
    at::Tensor nx = at::empty({shape.n, c}, f32);
    at::Tensor scale = at::empty({shape.n, c}, f32);
    at::Tensor y = at::empty_like(h, at::MemoryFormat::Contiguous);
    C10_CUDA_CHECK(cuda::GrnForward(KernelDtypeOrDie(h.scalar_type()), h.data_ptr(),
                                    FloatPtrOrNull(bias), gamma.data_ptr<float>(),
                                    beta.data_ptr<float>(), static_cast<float>(eps), shape,
                                    y.data_ptr(), sumsq.data_ptr<float>(),
                                    g_norm.data_ptr<float>(), denom.data_ptr<float>(),
                                    nx.data_ptr<float>(), scale.data_ptr<float>(),
                                    at::cuda::getCurrentCUDAStream()));
    ctx->save_for_backward({h, bias, gamma, g_norm, denom, nx, scale});
    ctx->saved_data["bias_dtype"] =
        static_cast<int64_t>(bias_in.defined() ? bias_in.scalar_type() : at::kFloat);
    ctx->saved_data["gamma_dtype"] = static_cast<int64_t>(gamma_in.scalar_type());
    ctx->saved_data["beta_dtype"] = static_cast<int64_t>(beta_in.scalar_type());
    return y;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor& h = saved[0];
    const at::Tensor& bias = saved[1];
    const at::Tensor& gamma = saved[2];
    const at::Tensor& g_norm = saved[3];
    const at::Tensor& denom = saved[4];
    const at::Tensor& nx = saved[5];
    const at::Tensor& scale = saved[6];
    const c10::cuda::CUDAGuard guard(h.device());
    const at::Tensor g = grads[0].to(h.scalar_type()).contiguous();
    const int64_t c = h.size(3);
    const cuda::GrnShape shape{h.size(0), h.size(1) * h.size(2), c};
    const at::TensorOptions f32 = h.options().dtype(at::kFloat);
    at::Tensor p = at::zeros({shape.n, c}, f32);
    at::Tensor dbeta = at::zeros({c}, f32);
    at::Tensor dgamma_n = at::empty({shape.n, c}, f32);
    at::Tensor t = at::empty({shape.n, c}, f32);
    at::Tensor dbias = bias.defined() ? at::zeros({c}, f32) : at::Tensor();
    at::Tensor dh = at::empty_like(h, at::MemoryFormat::Contiguous);
    C10_CUDA_CHECK(cuda::GrnBackward(
        KernelDtypeOrDie(h.scalar_type()), g.data_ptr(), h.data_ptr(), FloatPtrOrNull(bias),
        gamma.data_ptr<float>(), g_norm.data_ptr<float>(), denom.data_ptr<float>(),
        nx.data_ptr<float>(), scale.data_ptr<float>(), shape, dh.data_ptr(), p.data_ptr<float>(),
        dbeta.data_ptr<float>(), dgamma_n.data_ptr<float>(), t.data_ptr<float>(),
        bias.defined() ? dbias.data_ptr<float>() : nullptr, at::cuda::getCurrentCUDAStream()));
    const auto dtype = [&](const char* key) {
      return static_cast<at::ScalarType>(ctx->saved_data[key].toInt());
    };
    at::Tensor dgamma = dgamma_n.sum(0).view({1, 1, 1, c}).to(dtype("gamma_dtype"));
    at::Tensor dbeta_out = dbeta.view({1, 1, 1, c}).to(dtype("beta_dtype"));
    if (dbias.defined()) dbias = dbias.to(dtype("bias_dtype"));
    return {dh, dbias, dgamma, dbeta_out, at::Tensor()};
  }
};

class ResidualFunction : public torch::autograd::Function<ResidualFunction> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& residual,
                            const at::Tensor& z_in, const at::Tensor& bias_in,
                            const c10::optional<at::Tensor>& keep_opt) {
    const c10::cuda::CUDAGuard guard(residual.device());
    const at::Tensor z = z_in.contiguous();
    const at::Tensor bias = AsFloat(bias_in);
    const at::Tensor keep = AsFloat(keep_opt.value_or(at::Tensor()));
    const cuda::GrnShape shape{z.size(0), z.size(1) * z.size(2), z.size(3)};
    // Same layout as residual: (N, C, H, W) sizes, NHWC memory, like z's elements.
    at::Tensor out = at::empty_like(residual, at::MemoryFormat::ChannelsLast);
    C10_CUDA_CHECK(cuda::BiasDropPathResidual(
        KernelDtypeOrDie(residual.scalar_type()), KernelDtypeOrDie(z.scalar_type()),
        residual.data_ptr(), z.data_ptr(), bias.data_ptr<float>(), FloatPtrOrNull(keep), shape,
        out.data_ptr(), at::cuda::getCurrentCUDAStream()));
    ctx->save_for_backward({keep});
    ctx->saved_data["z_dtype"] = static_cast<int64_t>(z_in.scalar_type());
    ctx->saved_data["bias_dtype"] = static_cast<int64_t>(bias_in.scalar_type());
    return out;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const at::Tensor keep = ctx->get_saved_variables()[0];
    const at::Tensor& g = grads[0];  // (N, C, H, W)
    // dz = keep[n] * g in z's (N, H, W, C) layout; dbias = sum dz in float32.
    at::Tensor dz_f = g.permute({0, 2, 3, 1}).to(at::kFloat);
    if (keep.defined()) dz_f = dz_f * keep.view({-1, 1, 1, 1});
    const auto z_dtype = static_cast<at::ScalarType>(ctx->saved_data["z_dtype"].toInt());
    const auto bias_dtype = static_cast<at::ScalarType>(ctx->saved_data["bias_dtype"].toInt());
    at::Tensor dbias = dz_f.sum({0, 1, 2}).to(bias_dtype);
    return {g, dz_f.to(z_dtype).contiguous(), dbias, at::Tensor()};
  }
};

}  // namespace

bool GrnCudaApplies(const at::Tensor& h) {
  cuda::Dtype d;
  return h.defined() && OnKernelDevice(h) && h.dim() == 4 && KernelDtype(h.scalar_type(), &d);
}

at::Tensor GeluGrnCuda(const at::Tensor& h, const at::Tensor& bias, const at::Tensor& gamma,
                       const at::Tensor& beta, double eps) {
  TORCH_CHECK(GrnCudaApplies(h), "GeluGrnCuda: needs a CUDA float32/float16/bfloat16 (N, H, W, C) "
              "tensor, got ", h.sizes(), " ", h.scalar_type(), " on ", h.device());
  const int64_t c = h.size(3);
  TORCH_CHECK(gamma.numel() == c && beta.numel() == c && (!bias.defined() || bias.numel() == c),
              "GeluGrnCuda: gamma, beta and bias need ", c, " elements");
  return GeluGrnFunction::apply(h, Optional(bias), gamma, beta, eps);
}

bool ResidualCudaApplies(const at::Tensor& residual, const at::Tensor& z) {
  cuda::Dtype r, zd;
  if (!residual.defined() || !z.defined() || !OnKernelDevice(residual) || !OnKernelDevice(z) ||
      residual.dim() != 4 || z.dim() != 4 || !KernelDtype(residual.scalar_type(), &r) ||
      !KernelDtype(z.scalar_type(), &zd)) {
    return false;
  }
  // The output keeps residual's dtype: float32, or z's.
  const bool dtypes = residual.scalar_type() == at::kFloat ||
                      residual.scalar_type() == z.scalar_type();
  return dtypes && residual.is_contiguous(at::MemoryFormat::ChannelsLast) &&
         residual.size(0) == z.size(0) && residual.size(1) == z.size(3) &&
         residual.size(2) == z.size(1) && residual.size(3) == z.size(2);
}

at::Tensor BiasDropPathResidualCuda(const at::Tensor& residual, const at::Tensor& z,
                                    const at::Tensor& bias, const at::Tensor& keep) {
  TORCH_CHECK(ResidualCudaApplies(residual, z),
              "BiasDropPathResidualCuda: needs a channels-last CUDA residual (N, C, H, W) and z "
              "(N, H, W, C) of float32/float16/bfloat16, got ", residual.sizes(), " ",
              residual.scalar_type(), " and ", z.sizes(), " ", z.scalar_type());
  TORCH_CHECK(bias.numel() == z.size(3) && (!keep.defined() || keep.numel() == z.size(0)),
              "BiasDropPathResidualCuda: bias needs ", z.size(3), " elements and keep ",
              z.size(0));
  return ResidualFunction::apply(residual, z, bias, Optional(keep));
}

}  // namespace convnextv2::models::internal
