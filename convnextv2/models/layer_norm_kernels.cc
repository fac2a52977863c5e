#include "convnextv2/models/layer_norm_kernels.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdint>

#include "convnextv2/models/cpu_kernels.h"

namespace convnextv2::models::internal {
namespace {

constexpr int64_t kRowBlock = 64;  // rows per partial sum of dweight / dbias

uint16_t* Bits(const at::Tensor& t) {
  return reinterpret_cast<uint16_t*>(t.data_ptr<at::BFloat16>());
}

}  // namespace

bool LayerNormBf16Applies(const at::Tensor& x, const at::Tensor& weight) {
  return x.device().is_cpu() && x.scalar_type() == at::kBFloat16 && x.dim() >= 1 &&
         x.is_contiguous() && weight.scalar_type() == at::kFloat && weight.dim() == 1 &&
         weight.size(0) == x.size(-1);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> LayerNormBf16ForwardCpu(const at::Tensor& x,
                                                                       const at::Tensor& weight,
                                                                       const at::Tensor& bias,
                                                                       double eps) {
  const int64_t c = x.size(-1), rows = x.numel() / c;
  const at::Tensor w = weight.contiguous(), b = bias.to(at::kFloat).contiguous();
  at::Tensor y = at::empty_like(x);
  at::Tensor mean = at::empty({rows}, x.options().dtype(at::kFloat));
  at::Tensor rstd = at::empty({rows}, x.options().dtype(at::kFloat));
  const CpuKernels& kernels = ActiveCpuKernels();
  const uint16_t* xp = Bits(x);
  uint16_t* yp = Bits(y);
  float* mp = mean.data_ptr<float>();
  float* rp = rstd.data_ptr<float>();
  at::parallel_for(0, rows, kRowBlock, [&](int64_t begin, int64_t end) {
    kernels.layer_norm_forward_bf16(xp + begin * c, end - begin, c, w.data_ptr<float>(),
                                    b.data_ptr<float>(), static_cast<float>(eps),
                                    yp + begin * c, mp + begin, rp + begin);
  });
  return {y, mean, rstd};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> LayerNormBf16BackwardCpu(
    const at::Tensor& g_in, const at::Tensor& x, const at::Tensor& weight,
    const at::Tensor& mean, const at::Tensor& rstd) {
  const int64_t c = x.size(-1), rows = x.numel() / c;
  const int64_t blocks = (rows + kRowBlock - 1) / kRowBlock;
  const at::Tensor g = g_in.to(at::kBFloat16).contiguous();
  const at::Tensor w = weight.contiguous();
  at::Tensor dx = at::empty_like(x);
  at::Tensor dw_n = at::zeros({blocks, c}, x.options().dtype(at::kFloat));
  at::Tensor db_n = at::zeros({blocks, c}, x.options().dtype(at::kFloat));
  const CpuKernels& kernels = ActiveCpuKernels();
  const uint16_t* gp = Bits(g);
  const uint16_t* xp = Bits(x);
  uint16_t* dxp = Bits(dx);
  float* dwp = dw_n.data_ptr<float>();
  float* dbp = db_n.data_ptr<float>();
  at::parallel_for(0, blocks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t blk = begin; blk < end; ++blk) {
      const int64_t r0 = blk * kRowBlock, n = std::min(kRowBlock, rows - r0);
      kernels.layer_norm_backward_bf16(gp + r0 * c, xp + r0 * c, n, c, w.data_ptr<float>(),
                                       mean.data_ptr<float>() + r0, rstd.data_ptr<float>() + r0,
                                       dxp + r0 * c, dwp + blk * c, dbp + blk * c);
    }
  });
  return {dx, dw_n.sum(0), db_n.sum(0)};
}

}  // namespace convnextv2::models::internal
