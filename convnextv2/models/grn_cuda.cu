// CUDA kernels declared in grn_cuda.h. Memory-bound: each pass streams the (N, HW, C) activation
// once; the per-(sample, channel) statistics are tiny and live in float32.
//
// Passes over the activation: forward 2 reads + 1 write (sums of squares; apply), backward
// 2 x (read g and h) + 1 write (dot products; apply with the bias gradient), where eager ATen
// needs bias + GELU (read, write), the norm (read), the normalization chain (several reads and
// writes) and the same again backward.
//
// //tests/models:grn_cuda_emulated_test also compiles this file with g++ against a CPU
// emulation of the CUDA headers it includes (cuda_emulation/, which defines Launch() too) and
// runs every kernel there; hence launches go through Launch().
#include "convnextv2/models/grn_cuda.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>

namespace convnextv2::models::cuda {

#ifndef CONVNEXTV2_CUDA_EMULATION
template <typename... Params, typename... Args>
cudaError_t Launch(void (*kernel)(Params...), dim3 grid, dim3 block, cudaStream_t stream,
                   Args... args) {
  kernel<<<grid, block, 0, stream>>>(args...);
  return cudaGetLastError();
}
#endif

namespace {

constexpr int kChannelsPerBlock = 32;  // threadIdx.x: consecutive channels (coalesced)
constexpr int kRowsPerPass = 8;        // threadIdx.y: positions read in parallel
constexpr int kMinRowsPerBlock = 64;   // positions one block walks
constexpr int kStatsThreads = 256;

__device__ __forceinline__ float ToFloat(float v) { return v; }
__device__ __forceinline__ float ToFloat(__half v) { return __half2float(v); }
__device__ __forceinline__ float ToFloat(__nv_bfloat16 v) { return __bfloat162float(v); }

template <typename T>
__device__ __forceinline__ T FromFloat(float v);
template <>
__device__ __forceinline__ float FromFloat<float>(float v) {
  return v;
}
template <>
__device__ __forceinline__ __half FromFloat<__half>(float v) {
  return __float2half_rn(v);
}
template <>
__device__ __forceinline__ __nv_bfloat16 FromFloat<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}

// nn.GELU() (erf form) and its derivative.
__device__ __forceinline__ float Gelu(float v) {
  return 0.5f * v * (1.f + erff(v * 0.70710678118654752f));
}
__device__ __forceinline__ float GeluGrad(float v) {
  const float cdf = 0.5f * (1.f + erff(v * 0.70710678118654752f));
  const float pdf = 0.39894228040143268f * expf(-0.5f * v * v);
  return cdf + v * pdf;
}

template <typename T, bool kGelu>
__device__ __forceinline__ float Activation(const T* h, int64_t i, float bias) {
  const float v = ToFloat(h[i]);
  return kGelu ? Gelu(v + bias) : v;
}

// Sum over threadIdx.y of a (kRowsPerPass x kChannelsPerBlock) block; the result is valid in
// the threads with threadIdx.y == 0.
__device__ __forceinline__ float ColumnSum(float v, float (*shared)[kChannelsPerBlock + 1]) {
  shared[threadIdx.y][threadIdx.x] = v;
  __syncthreads();
  float s = 0.f;
  if (threadIdx.y == 0) {
    for (int r = 0; r < kRowsPerPass; ++r) s += shared[r][threadIdx.x];
  }
  __syncthreads();
  return s;
}

// Sum over a block of kStatsThreads threads; valid in every thread.
__device__ __forceinline__ float BlockSum(float v) {
  __shared__ float warp_sums[kStatsThreads / 32];
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
  if (threadIdx.x % 32 == 0) warp_sums[threadIdx.x / 32] = v;
  __syncthreads();
  float total = 0.f;
  for (int w = 0; w < kStatsThreads / 32; ++w) total += warp_sums[w];
  __syncthreads();
  return total;
}

struct Tiling {
  dim3 grid;
  dim3 block;
  int64_t rows_per_block;
};

// Grid over (channel tiles, position chunks, samples).
Tiling TileChannelsRows(GrnShape s) {
  int64_t rows = kMinRowsPerBlock;
  // gridDim.y is at most 65535.
  rows = std::max<int64_t>(rows, (s.hw + 65534) / 65535);
  Tiling t;
  t.rows_per_block = rows;
  t.block = dim3(kChannelsPerBlock, kRowsPerPass);
  t.grid = dim3(static_cast<unsigned>((s.c + kChannelsPerBlock - 1) / kChannelsPerBlock),
                static_cast<unsigned>((s.hw + rows - 1) / rows), static_cast<unsigned>(s.n));
  return t;
}

// sumsq[n, c] += sum over this block's positions of a^2.
template <typename T, bool kGelu>
__global__ void SumSquaresKernel(const T* __restrict__ h, const float* __restrict__ bias,
                                 GrnShape s, int64_t rows_per_block, float* __restrict__ sumsq) {
  __shared__ float shared[kRowsPerPass][kChannelsPerBlock + 1];
  const int64_t ch = static_cast<int64_t>(blockIdx.x) * kChannelsPerBlock + threadIdx.x;
  const int64_t n = blockIdx.z;
  const int64_t p0 = static_cast<int64_t>(blockIdx.y) * rows_per_block;
  const int64_t p1 = min(s.hw, p0 + rows_per_block);
  float acc = 0.f;
  if (ch < s.c) {
    const float b = kGelu ? bias[ch] : 0.f;
    const int64_t base = n * s.hw * s.c + ch;
    for (int64_t p = p0 + threadIdx.y; p < p1; p += kRowsPerPass) {
      const float a = Activation<T, kGelu>(h, base + p * s.c, b);
      acc = fmaf(a, a, acc);
    }
  }
  const float total = ColumnSum(acc, shared);
  if (threadIdx.y == 0 && ch < s.c) atomicAdd(&sumsq[n * s.c + ch], total);
}

// One block per sample: G, d, Nx, s from the sums of squares.
__global__ void ForwardStatsKernel(const float* __restrict__ sumsq,
                                   const float* __restrict__ gamma, int64_t c, float eps,
                                   float* __restrict__ g_norm, float* __restrict__ denom,
                                   float* __restrict__ nx, float* __restrict__ scale) {
  const int64_t n = blockIdx.x;
  float local = 0.f;
  for (int64_t k = threadIdx.x; k < c; k += kStatsThreads) {
    const float g = sqrtf(sumsq[n * c + k]);
    g_norm[n * c + k] = g;
    local += g;
  }
  const float d = BlockSum(local) / static_cast<float>(c) + eps;
  if (threadIdx.x == 0) denom[n] = d;
  for (int64_t k = threadIdx.x; k < c; k += kStatsThreads) {
    const float v = g_norm[n * c + k] / d;
    nx[n * c + k] = v;
    scale[n * c + k] = fmaf(gamma[k], v, 1.f);
  }
}

// y = a * s[n, c] + beta[c].
template <typename T, bool kGelu>
__global__ void ForwardApplyKernel(const T* __restrict__ h, const float* __restrict__ bias,
                                   const float* __restrict__ beta,
                                   const float* __restrict__ scale, GrnShape s,
                                   T* __restrict__ y) {
  const int64_t total = s.n * s.hw * s.c;
  const int64_t per_sample = s.hw * s.c;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t ch = i % s.c;
    const int64_t n = i / per_sample;
    const float a = Activation<T, kGelu>(h, i, kGelu ? bias[ch] : 0.f);
    y[i] = FromFloat<T>(fmaf(a, scale[n * s.c + ch], beta[ch]));
  }
}

// p[n, c] += sum g * a; dbeta[c] += sum g.
template <typename T, bool kGelu>
__global__ void BackwardSumsKernel(const T* __restrict__ grad, const T* __restrict__ h,
                                   const float* __restrict__ bias, GrnShape s,
                                   int64_t rows_per_block, float* __restrict__ p,
                                   float* __restrict__ dbeta) {
  __shared__ float shared[kRowsPerPass][kChannelsPerBlock + 1];
  const int64_t ch = static_cast<int64_t>(blockIdx.x) * kChannelsPerBlock + threadIdx.x;
  const int64_t n = blockIdx.z;
  const int64_t p0 = static_cast<int64_t>(blockIdx.y) * rows_per_block;
  const int64_t p1 = min(s.hw, p0 + rows_per_block);
  float ga = 0.f, gs = 0.f;
  if (ch < s.c) {
    const float b = kGelu ? bias[ch] : 0.f;
    const int64_t base = n * s.hw * s.c + ch;
    for (int64_t q = p0 + threadIdx.y; q < p1; q += kRowsPerPass) {
      const int64_t i = base + q * s.c;
      const float g = ToFloat(grad[i]);
      ga = fmaf(g, Activation<T, kGelu>(h, i, b), ga);
      gs += g;
    }
  }
  const float ga_total = ColumnSum(ga, shared);
  const float gs_total = ColumnSum(gs, shared);
  if (threadIdx.y == 0 && ch < s.c) {
    atomicAdd(&p[n * s.c + ch], ga_total);
    atomicAdd(&dbeta[ch], gs_total);
  }
}

// One block per sample: dgamma terms and t.
__global__ void BackwardStatsKernel(const float* __restrict__ p, const float* __restrict__ gamma,
                                    const float* __restrict__ g_norm,
                                    const float* __restrict__ denom,
                                    const float* __restrict__ nx, int64_t c,
                                    float* __restrict__ dgamma_n, float* __restrict__ t) {
  const int64_t n = blockIdx.x;
  float local = 0.f;
  for (int64_t k = threadIdx.x; k < c; k += kStatsThreads) {
    const float pk = p[n * c + k];
    dgamma_n[n * c + k] = pk * nx[n * c + k];
    local = fmaf(gamma[k] * pk, g_norm[n * c + k], local);
  }
  const float d = denom[n];
  const float correction = BlockSum(local) / (d * d * static_cast<float>(c));
  for (int64_t k = threadIdx.x; k < c; k += kStatsThreads) {
    const float g = g_norm[n * c + k];
    const float dg = gamma[k] * p[n * c + k] / d - correction;
    t[n * c + k] = g > 0.f ? dg / g : 0.f;  // the norm's subgradient at 0
  }
}

// dh = (g * s + a * t) * gelu'(h + b); dbias[c] += sum dh.
template <typename T, bool kGelu>
__global__ void BackwardApplyKernel(const T* __restrict__ grad, const T* __restrict__ h,
                                    const float* __restrict__ bias,
                                    const float* __restrict__ scale,
                                    const float* __restrict__ t, GrnShape s,
                                    int64_t rows_per_block, T* __restrict__ dh,
                                    float* __restrict__ dbias) {
  __shared__ float shared[kRowsPerPass][kChannelsPerBlock + 1];
  const int64_t ch = static_cast<int64_t>(blockIdx.x) * kChannelsPerBlock + threadIdx.x;
  const int64_t n = blockIdx.z;
  const int64_t p0 = static_cast<int64_t>(blockIdx.y) * rows_per_block;
  const int64_t p1 = min(s.hw, p0 + rows_per_block);
  float db = 0.f;
  if (ch < s.c) {
    const float b = kGelu ? bias[ch] : 0.f;
    const float sc = scale[n * s.c + ch];
    const float tt = t[n * s.c + ch];
    const int64_t base = n * s.hw * s.c + ch;
    for (int64_t q = p0 + threadIdx.y; q < p1; q += kRowsPerPass) {
      const int64_t i = base + q * s.c;
      const float g = ToFloat(grad[i]);
      const float v = ToFloat(h[i]);
      if (kGelu) {
        const float pre = v + b;
        const float da = fmaf(g, sc, Gelu(pre) * tt);
        const float d = da * GeluGrad(pre);
        dh[i] = FromFloat<T>(d);
        db += d;
      } else {
        dh[i] = FromFloat<T>(fmaf(g, sc, v * tt));
      }
    }
  }
  if (kGelu) {
    const float total = ColumnSum(db, shared);
    if (threadIdx.y == 0 && ch < s.c) atomicAdd(&dbias[ch], total);
  }
}

template <typename R, typename T>
__global__ void BiasDropPathResidualKernel(const R* __restrict__ residual,
                                           const T* __restrict__ z,
                                           const float* __restrict__ bias,
                                           const float* __restrict__ keep, GrnShape s,
                                           R* __restrict__ out) {
  const int64_t total = s.n * s.hw * s.c;
  const int64_t per_sample = s.hw * s.c;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const float k = keep == nullptr ? 1.f : keep[i / per_sample];
    const float branch = ToFloat(z[i]) + bias[i % s.c];
    out[i] = FromFloat<R>(fmaf(k, branch, ToFloat(residual[i])));
  }
}

unsigned ElementwiseBlocks(int64_t total, int threads) {
  // A grid-stride loop: enough blocks to fill an H200 (132 SMs) many times over.
  const int64_t blocks = (total + threads - 1) / threads;
  return static_cast<unsigned>(std::min<int64_t>(std::max<int64_t>(blocks, 1), 132 * 32));
}

template <typename T, bool kGelu>
cudaError_t Forward(const T* h, const float* bias, const float* gamma, const float* beta,
                    float eps, GrnShape s, T* y, float* sumsq, float* g_norm, float* denom,
                    float* nx, float* scale, cudaStream_t stream) {
  const Tiling tiling = TileChannelsRows(s);
  cudaError_t e = Launch(SumSquaresKernel<T, kGelu>, tiling.grid, tiling.block, stream, h, bias,
                         s, tiling.rows_per_block, sumsq);
  if (e != cudaSuccess) return e;
  e = Launch(ForwardStatsKernel, dim3(static_cast<unsigned>(s.n)), dim3(kStatsThreads), stream,
             sumsq, gamma, s.c, eps, g_norm, denom, nx, scale);
  if (e != cudaSuccess) return e;
  const int threads = 256;
  return Launch(ForwardApplyKernel<T, kGelu>, dim3(ElementwiseBlocks(s.n * s.hw * s.c, threads)),
                dim3(threads), stream, h, bias, beta, scale, s, y);
}

template <typename T, bool kGelu>
cudaError_t Backward(const T* grad, const T* h, const float* bias, const float* gamma,
                     const float* g_norm, const float* denom, const float* nx,
                     const float* scale, GrnShape s, T* dh, float* p, float* dbeta,
                     float* dgamma_n, float* t, float* dbias, cudaStream_t stream) {
  const Tiling tiling = TileChannelsRows(s);
  cudaError_t e = Launch(BackwardSumsKernel<T, kGelu>, tiling.grid, tiling.block, stream, grad, h,
                         bias, s, tiling.rows_per_block, p, dbeta);
  if (e != cudaSuccess) return e;
  e = Launch(BackwardStatsKernel, dim3(static_cast<unsigned>(s.n)), dim3(kStatsThreads), stream,
             p, gamma, g_norm, denom, nx, s.c, dgamma_n, t);
  if (e != cudaSuccess) return e;
  return Launch(BackwardApplyKernel<T, kGelu>, tiling.grid, tiling.block, stream, grad, h, bias,
                scale, t, s, tiling.rows_per_block, dh, dbias);
}

template <typename T>
cudaError_t ForwardTyped(const void* h, const float* bias, const float* gamma,
                         const float* beta, float eps, GrnShape s, void* y, float* sumsq,
                         float* g_norm, float* denom, float* nx, float* scale,
                         cudaStream_t stream) {
  const T* hh = static_cast<const T*>(h);
  T* yy = static_cast<T*>(y);
  return bias != nullptr ? Forward<T, true>(hh, bias, gamma, beta, eps, s, yy, sumsq, g_norm,
                                            denom, nx, scale, stream)
                         : Forward<T, false>(hh, bias, gamma, beta, eps, s, yy, sumsq, g_norm,
                                             denom, nx, scale, stream);
}

template <typename T>
cudaError_t BackwardTyped(const void* grad, const void* h, const float* bias,
                          const float* gamma, const float* g_norm, const float* denom,
                          const float* nx, const float* scale, GrnShape s, void* dh, float* p,
                          float* dbeta, float* dgamma_n, float* t, float* dbias,
                          cudaStream_t stream) {
  const T* gg = static_cast<const T*>(grad);
  const T* hh = static_cast<const T*>(h);
  T* dd = static_cast<T*>(dh);
  return bias != nullptr ? Backward<T, true>(gg, hh, bias, gamma, g_norm, denom, nx, scale, s,
                                             dd, p, dbeta, dgamma_n, t, dbias, stream)
                         : Backward<T, false>(gg, hh, bias, gamma, g_norm, denom, nx, scale, s,
                                              dd, p, dbeta, dgamma_n, t, dbias, stream);
}

template <typename R, typename T>
cudaError_t ResidualTyped(const void* residual, const void* z, const float* bias,
                          const float* keep, GrnShape s, void* out, cudaStream_t stream) {
  const int threads = 256;
  return Launch(BiasDropPathResidualKernel<R, T>,
                dim3(ElementwiseBlocks(s.n * s.hw * s.c, threads)), dim3(threads), stream,
                static_cast<const R*>(residual), static_cast<const T*>(z), bias, keep, s,
                static_cast<R*>(out));
}

}  // namespace

cudaError_t GrnForward(Dtype dtype, const void* h, const float* bias, const float* gamma,
                       const float* beta, float eps, GrnShape shape, void* y, float* sumsq,
                       float* g_norm, float* denom, float* nx, float* scale,
                       cudaStream_t stream) {
  if (shape.n == 0 || shape.hw == 0 || shape.c == 0) return cudaSuccess;
  switch (dtype) {
    case Dtype::kFloat32:
      return ForwardTyped<float>(h, bias, gamma, beta, eps, shape, y, sumsq, g_norm, denom, nx,
                                 scale, stream);
    case Dtype::kFloat16:
      return ForwardTyped<__half>(h, bias, gamma, beta, eps, shape, y, sumsq, g_norm, denom,
                                  nx, scale, stream);
    case Dtype::kBFloat16:
      return ForwardTyped<__nv_bfloat16>(h, bias, gamma, beta, eps, shape, y, sumsq, g_norm,
                                         denom, nx, scale, stream);
  }
  return cudaErrorInvalidValue;
}

cudaError_t GrnBackward(Dtype dtype, const void* grad, const void* h, const float* bias,
                        const float* gamma, const float* g_norm, const float* denom,
                        const float* nx, const float* scale, GrnShape shape, void* dh, float* p,
                        float* dbeta, float* dgamma_n, float* t, float* dbias,
                        cudaStream_t stream) {
  if (shape.n == 0 || shape.hw == 0 || shape.c == 0) return cudaSuccess;
  switch (dtype) {
    case Dtype::kFloat32:
      return BackwardTyped<float>(grad, h, bias, gamma, g_norm, denom, nx, scale, shape, dh, p,
                                  dbeta, dgamma_n, t, dbias, stream);
    case Dtype::kFloat16:
      return BackwardTyped<__half>(grad, h, bias, gamma, g_norm, denom, nx, scale, shape, dh, p,
                                   dbeta, dgamma_n, t, dbias, stream);
    case Dtype::kBFloat16:
      return BackwardTyped<__nv_bfloat16>(grad, h, bias, gamma, g_norm, denom, nx, scale, shape,
                                          dh, p, dbeta, dgamma_n, t, dbias, stream);
  }
  return cudaErrorInvalidValue;
}

cudaError_t BiasDropPathResidual(Dtype residual_dtype, Dtype z_dtype, const void* residual,
                                 const void* z, const float* bias, const float* keep,
                                 GrnShape shape, void* out, cudaStream_t stream) {
  if (shape.n == 0 || shape.hw == 0 || shape.c == 0) return cudaSuccess;
  if (residual_dtype == Dtype::kFloat32) {
    switch (z_dtype) {
      case Dtype::kFloat32:
        return ResidualTyped<float, float>(residual, z, bias, keep, shape, out, stream);
      case Dtype::kFloat16:
        return ResidualTyped<float, __half>(residual, z, bias, keep, shape, out, stream);
      case Dtype::kBFloat16:
        return ResidualTyped<float, __nv_bfloat16>(residual, z, bias, keep, shape, out, stream);
    }
  }
  if (residual_dtype == z_dtype && z_dtype == Dtype::kFloat16) {
    return ResidualTyped<__half, __half>(residual, z, bias, keep, shape, out, stream);
  }
  if (residual_dtype == z_dtype && z_dtype == Dtype::kBFloat16) {
    return ResidualTyped<__nv_bfloat16, __nv_bfloat16>(residual, z, bias, keep, shape, out,
                                                       stream);
  }
  return cudaErrorInvalidValue;
}

}  // namespace convnextv2::models::cuda
