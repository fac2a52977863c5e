#include "convnextv2/models/dwconv_kernels.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>

namespace convnextv2::models::internal {
namespace {

// out[c] += a[c] * b[c] over one pixel's channels (contiguous: the compiler vectorizes it).
inline void MulAdd(float* __restrict out, const float* __restrict a, const float* __restrict b,
                   int64_t c) {
  for (int64_t k = 0; k < c; ++k) out[k] += a[k] * b[k];
}

}  // namespace

// y[n, h, w, :] = bias + sum over the taps (i, j) that land inside the image of
//                 x[n, h+i-p, w+j-p, :] * W[i, j, :].
// Taps that fall outside the image are skipped, not multiplied by padding: on the 2x2 and 1x1
// maps of the last stages at small inputs most of a 7x7 kernel is never read.
at::Tensor DwConvForwardCpu(const at::Tensor& x, const at::Tensor& taps, const at::Tensor& bias) {
  const int64_t n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3), k = taps.size(0);
  const int64_t p = k / 2;
  at::Tensor y = at::empty_like(x, at::MemoryFormat::ChannelsLast);
  const float* xp = x.data_ptr<float>();
  const float* tp = taps.data_ptr<float>();
  const float* bp = bias.data_ptr<float>();
  float* yp = y.data_ptr<float>();
  at::parallel_for(0, n * h, 1, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const int64_t b = row / h, hh = row % h;
      const int64_t i0 = std::max<int64_t>(0, p - hh), i1 = std::min<int64_t>(k, h + p - hh);
      for (int64_t ww = 0; ww < w; ++ww) {
        float* out = yp + (row * w + ww) * c;
        std::copy(bp, bp + c, out);
        const int64_t j0 = std::max<int64_t>(0, p - ww), j1 = std::min<int64_t>(k, w + p - ww);
        for (int64_t i = i0; i < i1; ++i) {
          const float* xrow = xp + ((b * h + hh + i - p) * w) * c;
          for (int64_t j = j0; j < j1; ++j) {
            MulAdd(out, xrow + (ww + j - p) * c, tp + (i * k + j) * c, c);
          }
        }
      }
    }
  });
  return y;
}

// dx[n, h', w', :] = sum over taps of g[n, h'+p-i, w'+p-j, :] * W[i, j, :] (inside the image);
// dW[i, j, :] = sum over n, h, w of g[n, h, w, :] * x[n, h+i-p, w+j-p, :]; dbias = sum of g.
std::tuple<at::Tensor, at::Tensor, at::Tensor> DwConvBackwardCpu(const at::Tensor& g,
                                                                 const at::Tensor& x,
                                                                 const at::Tensor& taps) {
  const int64_t n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3), k = taps.size(0);
  const int64_t p = k / 2;
  // Only the taps some output pixel reads through (all of them unless the map is smaller than
  // the kernel: the centre 3x3 on a 2x2 map, the centre tap on 1x1) get per-sample partial sums.
  const int64_t ri0 = std::max<int64_t>(0, p - (h - 1)), ri1 = std::min<int64_t>(k, p + h);
  const int64_t rj0 = std::max<int64_t>(0, p - (w - 1)), rj1 = std::min<int64_t>(k, p + w);
  const int64_t rh = ri1 - ri0, rw = rj1 - rj0;
  at::Tensor dx = at::empty_like(x, at::MemoryFormat::ChannelsLast);
  at::Tensor dtaps_n = at::empty({n, rh, rw, c}, x.options());  // per-sample partial sums
  at::Tensor dbias_n = at::empty({n, c}, x.options());
  const float* gp = g.data_ptr<float>();
  const float* xp = x.data_ptr<float>();
  const float* tp = taps.data_ptr<float>();
  float* dxp = dx.data_ptr<float>();
  float* dtp = dtaps_n.data_ptr<float>();
  float* dbp = dbias_n.data_ptr<float>();
  at::parallel_for(0, n, 1, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) {
      float* dt = dtp + b * rh * rw * c;
      float* db = dbp + b * c;
      std::fill(dt, dt + rh * rw * c, 0.f);
      std::fill(db, db + c, 0.f);
      for (int64_t hh = 0; hh < h; ++hh) {
        const int64_t i0 = std::max<int64_t>(0, p - hh), i1 = std::min<int64_t>(k, h + p - hh);
        for (int64_t ww = 0; ww < w; ++ww) {
          const int64_t j0 = std::max<int64_t>(0, p - ww), j1 = std::min<int64_t>(k, w + p - ww);
          const float* grow = gp + ((b * h + hh) * w + ww) * c;
          for (int64_t q = 0; q < c; ++q) db[q] += grow[q];
          // Output pixel (hh, ww) read input pixel (hh+i-p, ww+j-p) through tap (i, j).
          for (int64_t i = i0; i < i1; ++i) {
            const float* xrow = xp + ((b * h + hh + i - p) * w) * c;
            for (int64_t j = j0; j < j1; ++j) {
              MulAdd(dt + ((i - ri0) * rw + (j - rj0)) * c, grow, xrow + (ww + j - p) * c, c);
            }
          }
          // Input pixel (hh, ww) fed output pixel (hh+p-i, ww+p-j) through tap (i, j); the
          // taps in range are the mirror image of the forward ones.
          float* out = dxp + ((b * h + hh) * w + ww) * c;
          std::fill(out, out + c, 0.f);
          for (int64_t i = k - i1; i < k - i0; ++i) {
            const float* gsrc = gp + ((b * h + hh + p - i) * w) * c;
            for (int64_t j = k - j1; j < k - j0; ++j) {
              MulAdd(out, gsrc + (ww + p - j) * c, tp + (i * k + j) * c, c);
            }
          }
        }
      }
    }
  });
  at::Tensor dtaps = at::zeros({k, k, c}, x.options());
  dtaps.narrow(0, ri0, rh).narrow(1, rj0, rw).copy_(dtaps_n.sum(0));
  return {dx, dtaps, dbias_n.sum(0)};
}

}  // namespace convnextv2::models::internal
