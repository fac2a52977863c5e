#include "convnextv2/models/grn_kernels.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <cmath>
#include <vector>

namespace convnextv2::models::internal {

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> GrnForwardCpu(
    const at::Tensor& x, const at::Tensor& gamma_t, const at::Tensor& beta_t, double eps) {
  const int64_t n = x.size(0), hw = x.size(1) * x.size(2), c = x.size(3);
  const at::Tensor gamma = gamma_t.contiguous(), beta = beta_t.contiguous();
  at::Tensor y = at::empty_like(x);
  at::Tensor g_norm = at::empty({n, 1, 1, c}, x.options());
  at::Tensor denom = at::empty({n, 1, 1, 1}, x.options());
  at::Tensor nx = at::empty({n, 1, 1, c}, x.options());
  at::Tensor scale = at::empty({n, 1, 1, c}, x.options());
  const float* xp = x.data_ptr<float>();
  const float* gp = gamma.data_ptr<float>();
  const float* bp = beta.data_ptr<float>();
  float* yp = y.data_ptr<float>();
  float* gn = g_norm.data_ptr<float>();
  float* dn = denom.data_ptr<float>();
  float* nxp = nx.data_ptr<float>();
  float* sp = scale.data_ptr<float>();
  at::parallel_for(0, n, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> acc(c);
    for (int64_t i = begin; i < end; ++i) {
      const float* xi = xp + i * hw * c;
      std::fill(acc.begin(), acc.end(), 0.f);
      for (int64_t p = 0; p < hw; ++p) {
        const float* row = xi + p * c;
        for (int64_t k = 0; k < c; ++k) acc[k] += row[k] * row[k];
      }
      double mean = 0;
      for (int64_t k = 0; k < c; ++k) {
        gn[i * c + k] = std::sqrt(acc[k]);
        mean += gn[i * c + k];
      }
      const float d = static_cast<float>(mean / c + eps);
      dn[i] = d;
      for (int64_t k = 0; k < c; ++k) {
        nxp[i * c + k] = gn[i * c + k] / d;
        sp[i * c + k] = 1.f + gp[k] * nxp[i * c + k];
      }
      const float* s = sp + i * c;
      float* yi = yp + i * hw * c;
      for (int64_t p = 0; p < hw; ++p) {
        const float* row = xi + p * c;
        float* out = yi + p * c;
        for (int64_t k = 0; k < c; ++k) out[k] = row[k] * s[k] + bp[k];
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
  const at::Tensor gamma = gamma_t.contiguous();
  at::Tensor dx = at::empty_like(x);
  // Per-sample partial sums, reduced over the batch at the end (no races between threads).
  at::Tensor dgamma_n = at::empty({n, c}, x.options());
  at::Tensor dbeta_n = at::empty({n, c}, x.options());
  const float* gp = g.data_ptr<float>();
  const float* xp = x.data_ptr<float>();
  const float* gam = gamma.data_ptr<float>();
  const float* gn = g_norm.data_ptr<float>();
  const float* dn = denom.data_ptr<float>();
  const float* nxp = nx.data_ptr<float>();
  const float* sp = scale.data_ptr<float>();
  float* dxp = dx.data_ptr<float>();
  float* dgp = dgamma_n.data_ptr<float>();
  float* dbp = dbeta_n.data_ptr<float>();
  at::parallel_for(0, n, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> pgx(c), t(c);
    for (int64_t i = begin; i < end; ++i) {
      const float* gi = gp + i * hw * c;
      const float* xi = xp + i * hw * c;
      float* db = dbp + i * c;
      std::fill(pgx.begin(), pgx.end(), 0.f);
      std::fill(db, db + c, 0.f);
      for (int64_t p = 0; p < hw; ++p) {
        const float* grow = gi + p * c;
        const float* xrow = xi + p * c;
        for (int64_t k = 0; k < c; ++k) {
          pgx[k] += grow[k] * xrow[k];
          db[k] += grow[k];
        }
      }
      const float d = dn[i];
      double sum_ag = 0;
      for (int64_t k = 0; k < c; ++k) {
        dgp[i * c + k] = pgx[k] * nxp[i * c + k];
        sum_ag += static_cast<double>(gam[k] * pgx[k]) * gn[i * c + k];
      }
      const float correction = static_cast<float>(sum_ag / (static_cast<double>(d) * d * c));
      for (int64_t k = 0; k < c; ++k) {
        const float dg = gam[k] * pgx[k] / d - correction;
        const float norm = gn[i * c + k];
        t[k] = norm > 0.f ? dg / norm : 0.f;
      }
      const float* s = sp + i * c;
      float* dxi = dxp + i * hw * c;
      for (int64_t p = 0; p < hw; ++p) {
        const float* grow = gi + p * c;
        const float* xrow = xi + p * c;
        float* out = dxi + p * c;
        for (int64_t k = 0; k < c; ++k) out[k] = grow[k] * s[k] + xrow[k] * t[k];
      }
    }
  });
  return {dx, dgamma_n.sum(0).view({1, 1, 1, c}), dbeta_n.sum(0).view({1, 1, 1, c})};
}

}  // namespace convnextv2::models::internal
