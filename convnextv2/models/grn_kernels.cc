#include "convnextv2/models/grn_kernels.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <cstdint>
#include <vector>

#include "convnextv2/models/cpu_kernels.h"

namespace convnextv2::models::internal {
namespace {

// The storage of a float32 tensor, and of a bfloat16 one as its bits.
template <typename T>
T* Data(const at::Tensor& t);
template <>
float* Data<float>(const at::Tensor& t) {
  return t.data_ptr<float>();
}
template <>
uint16_t* Data<uint16_t>(const at::Tensor& t) {
  return reinterpret_cast<uint16_t*>(t.data_ptr<at::BFloat16>());
}

}  // namespace

bool GrnCpuKernelApplies(const at::Tensor& x) {
  return x.device().is_cpu() && x.dim() == 4 && x.is_contiguous() &&
         (x.scalar_type() == at::kFloat || x.scalar_type() == at::kBFloat16);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> GrnForwardCpu(
    const at::Tensor& x, const at::Tensor& gamma_t, const at::Tensor& beta_t, double eps) {
  const int64_t n = x.size(0), hw = x.size(1) * x.size(2), c = x.size(3);
  const at::TensorOptions f32 = x.options().dtype(at::kFloat);
  const at::Tensor gamma = gamma_t.to(at::kFloat).contiguous();
  const at::Tensor beta = beta_t.to(at::kFloat).contiguous();
  at::Tensor y = at::empty_like(x);
  at::Tensor g_norm = at::empty({n, 1, 1, c}, f32);
  at::Tensor denom = at::empty({n, 1, 1, 1}, f32);
  at::Tensor nx = at::empty({n, 1, 1, c}, f32);
  at::Tensor scale = at::empty({n, 1, 1, c}, f32);
  const float* gp = gamma.data_ptr<float>();
  const float* bp = beta.data_ptr<float>();
  float* gn = g_norm.data_ptr<float>();
  float* dn = denom.data_ptr<float>();
  float* nxp = nx.data_ptr<float>();
  float* sp = scale.data_ptr<float>();
  const CpuKernels& kernels = ActiveCpuKernels();
  const bool bf16 = x.scalar_type() == at::kBFloat16;
  at::parallel_for(0, n, 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int64_t off = i * hw * c, ac = i * c;
      if (bf16) {
        kernels.grn_forward_bf16(Data<uint16_t>(x) + off, hw, c, gp, bp, static_cast<float>(eps),
                                 Data<uint16_t>(y) + off, gn + ac, dn + i, nxp + ac, sp + ac);
      } else {
        kernels.grn_forward_f32(Data<float>(x) + off, hw, c, gp, bp, static_cast<float>(eps),
                                Data<float>(y) + off, gn + ac, dn + i, nxp + ac, sp + ac);
      }
    }
  });
  return {y, g_norm, denom, nx, scale};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> GrnBackwardCpu(
    const at::Tensor& g, const at::Tensor& x, const at::Tensor& gamma_t,
    const at::Tensor& g_norm, const at::Tensor& denom, const at::Tensor& nx,
    const at::Tensor& scale) {
  const int64_t n = x.size(0), hw = x.size(1) * x.size(2), c = x.size(3);
  const at::Tensor gamma = gamma_t.to(at::kFloat).contiguous();
  const at::Tensor grad = g.to(x.scalar_type()).contiguous();
  at::Tensor dx = at::empty_like(x);
  // Per-sample partial sums, reduced over the batch at the end (no races between threads).
  const at::TensorOptions f32 = x.options().dtype(at::kFloat);
  at::Tensor dgamma_n = at::empty({n, c}, f32);
  at::Tensor dbeta_n = at::empty({n, c}, f32);
  const float* gam = gamma.data_ptr<float>();
  const float* gn = g_norm.data_ptr<float>();
  const float* dn = denom.data_ptr<float>();
  const float* nxp = nx.data_ptr<float>();
  const float* sp = scale.data_ptr<float>();
  float* dgp = dgamma_n.data_ptr<float>();
  float* dbp = dbeta_n.data_ptr<float>();
  const CpuKernels& kernels = ActiveCpuKernels();
  const bool bf16 = x.scalar_type() == at::kBFloat16;
  at::parallel_for(0, n, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> scratch(c);
    for (int64_t i = begin; i < end; ++i) {
      const int64_t off = i * hw * c, ac = i * c;
      if (bf16) {
        kernels.grn_backward_bf16(Data<uint16_t>(grad) + off, Data<uint16_t>(x) + off, hw, c, gam,
                                  gn + ac, dn[i], nxp + ac, sp + ac, Data<uint16_t>(dx) + off,
                                  dgp + ac, dbp + ac, scratch.data());
      } else {
        kernels.grn_backward_f32(Data<float>(grad) + off, Data<float>(x) + off, hw, c, gam,
                                 gn + ac, dn[i], nxp + ac, sp + ac, Data<float>(dx) + off,
                                 dgp + ac, dbp + ac, scratch.data());
      }
    }
  });
  return {dx, dgamma_n.sum(0).view({1, 1, 1, c}), dbeta_n.sum(0).view({1, 1, 1, c})};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>
GeluGrnForwardCpu(const at::Tensor& h, const at::Tensor& bias_t, const at::Tensor& gamma_t,
                  const at::Tensor& beta_t, double eps, bool with_y) {
  const int64_t n = h.size(0), hw = h.size(1) * h.size(2), c = h.size(3);
  const at::TensorOptions f32 = h.options().dtype(at::kFloat);
  const at::Tensor bias = bias_t.to(at::kFloat).contiguous();
  const at::Tensor gamma = gamma_t.to(at::kFloat).contiguous();
  const at::Tensor beta = beta_t.to(at::kFloat).contiguous();
  at::Tensor u = at::empty_like(h), y = with_y ? at::empty_like(h) : at::Tensor();
  at::Tensor g_norm = at::empty({n, 1, 1, c}, f32), denom = at::empty({n, 1, 1, 1}, f32);
  at::Tensor nx = at::empty({n, 1, 1, c}, f32), scale = at::empty({n, 1, 1, c}, f32);
  float* gn = g_norm.data_ptr<float>();
  float* nxp = nx.data_ptr<float>();
  float* sp = scale.data_ptr<float>();
  const CpuKernels& kernels = ActiveCpuKernels();
  const bool bf16 = h.scalar_type() == at::kBFloat16;
  at::parallel_for(0, n, 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int64_t off = i * hw * c, ac = i * c;
      const float* b = bias.data_ptr<float>();
      const float* gm = gamma.data_ptr<float>();
      const float* bt = beta.data_ptr<float>();
      float* dn = denom.data_ptr<float>() + i;
      if (bf16) {
        kernels.gelu_grn_forward_bf16(Data<uint16_t>(h) + off, hw, c, b, gm, bt,
                                      static_cast<float>(eps), Data<uint16_t>(u) + off,
                                      with_y ? Data<uint16_t>(y) + off : nullptr, gn + ac, dn,
                                      nxp + ac, sp + ac);
      } else {
        kernels.gelu_grn_forward_f32(Data<float>(h) + off, hw, c, b, gm, bt,
                                     static_cast<float>(eps), Data<float>(u) + off,
                                     with_y ? Data<float>(y) + off : nullptr, gn + ac, dn,
                                     nxp + ac, sp + ac);
      }
    }
  });
  return {y, u, g_norm, denom, nx, scale};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> GeluGrnBackwardCpu(
    const at::Tensor& g, const at::Tensor& h, const at::Tensor& u, const at::Tensor& bias_t,
    const at::Tensor& gamma_t, const at::Tensor& g_norm, const at::Tensor& denom,
    const at::Tensor& nx, const at::Tensor& scale) {
  const int64_t n = h.size(0), hw = h.size(1) * h.size(2), c = h.size(3);
  const at::Tensor bias = bias_t.to(at::kFloat).contiguous();
  const at::Tensor gamma = gamma_t.to(at::kFloat).contiguous();
  const at::Tensor grad = g.to(h.scalar_type()).contiguous();
  at::Tensor dh = at::empty_like(h);
  const at::TensorOptions f32 = h.options().dtype(at::kFloat);
  // Per-sample partial sums, reduced over the batch at the end (no races between threads).
  at::Tensor dgamma_n = at::empty({n, c}, f32), dbeta_n = at::empty({n, c}, f32);
  at::Tensor dbias_n = at::empty({n, c}, f32);
  const CpuKernels& kernels = ActiveCpuKernels();
  const bool bf16 = h.scalar_type() == at::kBFloat16;
  at::parallel_for(0, n, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> scratch(c);
    for (int64_t i = begin; i < end; ++i) {
      const int64_t off = i * hw * c, ac = i * c;
      const float* b = bias.data_ptr<float>();
      const float* gm = gamma.data_ptr<float>();
      const float* gn = g_norm.data_ptr<float>() + ac;
      const float dn = denom.data_ptr<float>()[i];
      const float* nxp = nx.data_ptr<float>() + ac;
      const float* sp = scale.data_ptr<float>() + ac;
      float* dg = dgamma_n.data_ptr<float>() + ac;
      float* db = dbeta_n.data_ptr<float>() + ac;
      float* dbi = dbias_n.data_ptr<float>() + ac;
      if (bf16) {
        kernels.gelu_grn_backward_bf16(Data<uint16_t>(grad) + off, Data<uint16_t>(h) + off,
                                       Data<uint16_t>(u) + off, hw, c, b, gm, gn, dn, nxp, sp,
                                       Data<uint16_t>(dh) + off, dg, db, dbi, scratch.data());
      } else {
        kernels.gelu_grn_backward_f32(Data<float>(grad) + off, Data<float>(h) + off,
                                      Data<float>(u) + off, hw, c, b, gm, gn, dn, nxp, sp,
                                      Data<float>(dh) + off, dg, db, dbi, scratch.data());
      }
    }
  });
  return {dh, dbias_n.sum(0), dgamma_n.sum(0).view({1, 1, 1, c}),
          dbeta_n.sum(0).view({1, 1, 1, c})};
}

}  // namespace convnextv2::models::internal
