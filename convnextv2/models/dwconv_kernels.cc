#include "convnextv2/models/dwconv_kernels.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/core/grad_mode.h>

#include <algorithm>

#include "convnextv2/models/cpu_kernels.h"

namespace convnextv2::models::internal {

// Rows of output in parallel; cpu_kernels_impl.inc has the loops.
at::Tensor DwConvForwardCpu(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& taps,
                            const at::Tensor& bias) {
  const int64_t n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3), k = taps.size(0);
  if (h * w > kDwOwnLoopsMaxPixels) {
    at::NoGradGuard no_grad;  // inside the autograd node: no graph of its own
    return at::conv2d(x, weight, bias, 1, k / 2, 1, c).contiguous(at::MemoryFormat::ChannelsLast);
  }
  at::Tensor y = at::empty_like(x, at::MemoryFormat::ChannelsLast);
  const float* xp = x.data_ptr<float>();
  const float* tp = taps.data_ptr<float>();
  const float* bp = bias.data_ptr<float>();
  float* yp = y.data_ptr<float>();
  const CpuKernels& kernels = ActiveCpuKernels();
  at::parallel_for(0, n * h, 1, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const int64_t b = row / h;
      kernels.dwconv_forward_row(xp + b * h * w * c, tp, bp, h, w, c, k, row % h,
                                 yp + row * w * c);
    }
  });
  return y;
}

// Samples in parallel, each with its own partial sums of dtaps and dbias, added up in sample
// order afterwards.
std::tuple<at::Tensor, at::Tensor, at::Tensor> DwConvBackwardCpu(const at::Tensor& g,
                                                                 const at::Tensor& x,
                                                                 const at::Tensor& weight,
                                                                 const at::Tensor& taps) {
  const int64_t n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3), k = taps.size(0);
  const int64_t p = k / 2;
  // Only the taps some output pixel reads through (all of them unless the map is smaller than
  // the kernel: the centre 3x3 on a 2x2 map, the centre tap on 1x1) get per-sample partial sums.
  const int64_t ri0 = std::max<int64_t>(0, p - (h - 1)), ri1 = std::min<int64_t>(k, p + h);
  const int64_t rj0 = std::max<int64_t>(0, p - (w - 1)), rj1 = std::min<int64_t>(k, p + w);
  const int64_t rh = ri1 - ri0, rw = rj1 - rj0;
  at::NoGradGuard no_grad;  // at::conv2d for dx records nothing, even under create_graph
  const bool own_dx = h * w <= kDwOwnLoopsMaxPixels;
  at::Tensor dx = own_dx ? at::empty_like(x, at::MemoryFormat::ChannelsLast)
                         : at::conv2d(g, weight.flip({2, 3}), {}, 1, p, 1, c)
                               .contiguous(at::MemoryFormat::ChannelsLast);
  at::Tensor dtaps_n = at::empty({n, rh, rw, c}, x.options());  // per-sample partial sums
  at::Tensor dbias_n = at::empty({n, c}, x.options());
  const float* gp = g.data_ptr<float>();
  const float* xp = x.data_ptr<float>();
  // The own dx is the forward convolution of g with the taps mirrored in both directions.
  const at::Tensor mirrored = own_dx ? taps.flip({0, 1}).contiguous() : at::Tensor();
  const float* tp = own_dx ? mirrored.data_ptr<float>() : nullptr;
  float* dxp = own_dx ? dx.data_ptr<float>() : nullptr;
  float* dtp = dtaps_n.data_ptr<float>();
  float* dbp = dbias_n.data_ptr<float>();
  const CpuKernels& kernels = ActiveCpuKernels();
  at::parallel_for(0, n, 1, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) {
      const int64_t off = b * h * w * c;
      kernels.dwconv_backward_sample(gp + off, xp + off, tp, h, w, c, k, ri0, rj0, rh, rw,
                                     own_dx ? dxp + off : nullptr, dtp + b * rh * rw * c,
                                     dbp + b * c);
    }
  });
  at::Tensor dtaps = at::zeros({k, k, c}, x.options());
  dtaps.narrow(0, ri0, rh).narrow(1, rj0, rw).copy_(dtaps_n.sum(0));
  return {dx, dtaps, dbias_n.sum(0)};
}

}  // namespace convnextv2::models::internal
