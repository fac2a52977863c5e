// The project's own CPU kernels (fused GRN and GELU + GRN, depthwise convolution,
// bfloat16 LayerNorm) as
// raw-pointer functions, compiled three times: for the build's baseline (-march=x86-64-v2),
// with AVX2 + FMA (x86-64-v3) and with AVX-512 (F, BW, VL, DQ, BF16), and picked once at run time
// by what the CPU supports, so one binary runs everywhere and uses the widest vectors it has.
//
//   const CpuKernels& k = ActiveCpuKernels();    // AVX-512, else AVX2, else the baseline
//   k.grn_forward_f32(x, hw, c, gamma, beta, eps, y, g_norm, &denom, nx, scale);
//
// CONVNEXTV2_CPU_KERNELS=generic, avx2 or avx512 in the environment forces that build (read
// once, at the first call; a build this CPU cannot run, or another name, ends the program with
// a message saying so). The kernels do one sample (or one output row); the callers (grn_kernels.cc,
// dwconv_kernels.cc) allocate tensors and split the batch over threads. bfloat16 tensors are
// passed as their bits (uint16_t); all sums run in float32. Internal to the models package.
//
// This header includes only <cstdint>: it is compiled into the AVX2 and AVX-512 translation
// units, which must not instantiate any inline function shared with the rest of the program
// (the linker would keep one copy, possibly the AVX-512 one, for every caller).
#ifndef CONVNEXTV2_MODELS_CPU_KERNELS_H_
#define CONVNEXTV2_MODELS_CPU_KERNELS_H_

#include <cstdint>

namespace convnextv2::models::internal {

struct CpuKernels {
  const char* name;  // "generic", "avx2" or "avx512"

  // GRN forward over one sample x (hw, c): g_norm = ||x||_hw (c), *denom = mean(g_norm) + eps,
  // nx = g_norm / *denom, scale = 1 + gamma * nx, y = x * scale + beta.
  void (*grn_forward_f32)(const float* x, int64_t hw, int64_t c, const float* gamma,
                          const float* beta, float eps, float* y, float* g_norm, float* denom,
                          float* nx, float* scale);
  void (*grn_forward_bf16)(const uint16_t* x, int64_t hw, int64_t c, const float* gamma,
                           const float* beta, float eps, uint16_t* y, float* g_norm,
                           float* denom, float* nx, float* scale);
  // GRN backward over one sample (layers.cc has the formulas): dx (hw, c); dgamma and dbeta are
  // this sample's partial sums (c); scratch holds c floats.
  void (*grn_backward_f32)(const float* g, const float* x, int64_t hw, int64_t c,
                           const float* gamma, const float* g_norm, float denom, const float* nx,
                           const float* scale, float* dx, float* dgamma, float* dbeta,
                           float* scratch);
  void (*grn_backward_bf16)(const uint16_t* g, const uint16_t* x, int64_t hw, int64_t c,
                            const float* gamma, const float* g_norm, float denom,
                            const float* nx, const float* scale, uint16_t* dx, float* dgamma,
                            float* dbeta, float* scratch);

  // Depthwise k x k convolution (k odd, at most 7; stride 1, padding k / 2) of one sample x
  // (h, w, c) channels last, taps (k, k, c): output row hh (w, c) = bias (none if null) + the
  // taps inside the image.
  void (*dwconv_forward_row)(const float* x, const float* taps, const float* bias, int64_t h,
                             int64_t w, int64_t c, int64_t k, int64_t hh, float* y_row);
  // Its backward over one sample, given the taps mirrored (taps_mirrored[i, j] =
  // taps[k-1-i, k-1-j]; read only for dx): dx (h, w, c; not computed if null); dtaps (rh, rw, c)
  // for the taps rows [ri0, ri0 + rh) and columns [rj0, rj0 + rw) that any pixel reads; dbias (c).
  void (*dwconv_backward_sample)(const float* g, const float* x, const float* taps_mirrored,
                                 int64_t h, int64_t w, int64_t c, int64_t k, int64_t ri0,
                                 int64_t rj0, int64_t rh, int64_t rw, float* dx, float* dtaps,
                                 float* dbias);

  // LayerNorm over the c channels of each of `rows` contiguous bfloat16 rows, float32 weight,
  // bias and statistics: y, and per row the mean and rstd = 1 / sqrt(biased var + eps).
  void (*layer_norm_forward_bf16)(const uint16_t* x, int64_t rows, int64_t c,
                                  const float* weight, const float* bias, float eps, uint16_t* y,
                                  float* mean, float* rstd);
  // Its backward over the same rows: dx; dweight and dbias (c) get these rows' sums added.
  void (*layer_norm_backward_bf16)(const uint16_t* g, const uint16_t* x, int64_t rows,
                                   int64_t c, const float* weight, const float* mean,
                                   const float* rstd, uint16_t* dx, float* dweight,
                                   float* dbias);

  // GRN of u = GELU(h + bias) (erf form) over one sample h (hw, c), u written (the backward reads
  // it) as well as y (unless y is null) and the GRN statistics (as grn_forward_*, of u).
  void (*gelu_grn_forward_f32)(const float* h, int64_t hw, int64_t c, const float* bias,
                               const float* gamma, const float* beta, float eps, float* u,
                               float* y, float* g_norm, float* denom, float* nx, float* scale);
  void (*gelu_grn_forward_bf16)(const uint16_t* h, int64_t hw, int64_t c, const float* bias,
                                const float* gamma, const float* beta, float eps, uint16_t* u,
                                uint16_t* y, float* g_norm, float* denom, float* nx,
                                float* scale);
  // Its backward over one sample: dh; this sample's dgamma, dbeta and dbias (c each); scratch
  // holds c floats.
  void (*gelu_grn_backward_f32)(const float* g, const float* h, const float* u, int64_t hw,
                                int64_t c, const float* bias, const float* gamma,
                                const float* g_norm, float denom, const float* nx,
                                const float* scale, float* dh, float* dgamma, float* dbeta,
                                float* dbias, float* scratch);
  void (*gelu_grn_backward_bf16)(const uint16_t* g, const uint16_t* h, const uint16_t* u,
                                 int64_t hw, int64_t c, const float* bias, const float* gamma,
                                 const float* g_norm, float denom, const float* nx,
                                 const float* scale, uint16_t* dh, float* dgamma, float* dbeta,
                                 float* dbias, float* scratch);
};

enum class CpuIsa { kGeneric, kAvx2, kAvx512 };

// The baseline build, always there.
extern const CpuKernels kGenericCpuKernels;
// The build for `isa`, or nullptr when this CPU lacks it: kAvx2 needs AVX2, FMA, F16C and BMI2
// (x86-64-v3), kAvx512 those and AVX512F/BW/VL/DQ/BF16.
const CpuKernels* CpuKernelsFor(CpuIsa isa);
// What the layers call: the widest supported build unless CONVNEXTV2_CPU_KERNELS names another
// ("generic", "avx2", "avx512"; one this CPU lacks, or an unknown name, exits with status 2 and
// a message on stderr).
const CpuKernels& ActiveCpuKernels();
// Tests: make `kernels` the active set until the returned previous one is set back.
const CpuKernels* SetActiveCpuKernelsForTesting(const CpuKernels* kernels);

}  // namespace convnextv2::models::internal

#endif  // CONVNEXTV2_MODELS_CPU_KERNELS_H_
