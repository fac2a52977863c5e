#include "tools/bench/roofline.h"

#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <functional>
#include <thread>
#include <vector>

namespace convnextv2::bench {
namespace {

constexpr int64_t kFmaIters = 20'000'000;

// 12 independent FMA chains (enough to cover the FMA latency on two pipes); returns the sum so
// that the loop is not removed. FLOPs: iters * 12 * lanes * 2. The inner loops are unrolled so
// that the 12 accumulators live in registers (rolled, GCC keeps the array in memory and the
// loop measures store-to-load forwarding, about a quarter of the FMA peak).
__attribute__((target("avx512f"))) float Sum(__m512 v) {
  float out[16];
  _mm512_storeu_ps(out, v);
  return out[0] + out[15];
}

__attribute__((target("avx512f"))) float FmaAvx512(int64_t iters) {
  __m512 a[12];
  for (int i = 0; i < 12; ++i) a[i] = _mm512_set1_ps(1.f + i * 1e-3f);
  const __m512 b = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-6f);
  for (int64_t it = 0; it < iters; ++it) {
#pragma GCC unroll 12
    for (int i = 0; i < 12; ++i) a[i] = _mm512_fmadd_ps(a[i], b, c);
  }
  __m512 s = a[0];
  for (int i = 1; i < 12; ++i) s = _mm512_add_ps(s, a[i]);
  return Sum(s);
}

__attribute__((target("avx2,fma"))) float FmaAvx2(int64_t iters) {
  __m256 a[12];
  for (int i = 0; i < 12; ++i) a[i] = _mm256_set1_ps(1.f + i * 1e-3f);
  const __m256 b = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-6f);
  for (int64_t it = 0; it < iters; ++it) {
#pragma GCC unroll 12
    for (int i = 0; i < 12; ++i) a[i] = _mm256_fmadd_ps(a[i], b, c);
  }
  float out[8];
  __m256 s = a[0];
  for (int i = 1; i < 12; ++i) s = _mm256_add_ps(s, a[i]);
  _mm256_storeu_ps(out, s);
  return out[0] + out[7];
}

// vdpbf16ps: per 32-bit lane, two bf16 products added to the float32 accumulator (4 FLOPs).
__attribute__((target("avx512f,avx512bf16"))) float DotBf16(int64_t iters) {
  __m512 a[12];
  for (int i = 0; i < 12; ++i) a[i] = _mm512_setzero_ps();
  const __m512bh x = (__m512bh)_mm512_set1_epi16(0x3f80);  // 1.0
  const __m512bh y = (__m512bh)_mm512_set1_epi16(0x3380);  // 2^-24
  for (int64_t it = 0; it < iters; ++it) {
#pragma GCC unroll 12
    for (int i = 0; i < 12; ++i) a[i] = _mm512_dpbf16_ps(a[i], x, y);
  }
  __m512 s = a[0];
  for (int i = 1; i < 12; ++i) s = _mm512_add_ps(s, a[i]);
  return Sum(s);
}

// Runs body(thread index) on `threads` threads at once; returns the wall seconds.
double OnThreads(int threads, const std::function<void(int)>& body) {
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) pool.emplace_back(body, t);
  for (std::thread& th : pool) th.join();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Best of 3 runs of `flops_per_thread` FLOPs on every thread.
double PeakFlops(int threads, double flops_per_thread, float (*loop)(int64_t)) {
  std::vector<float> sink(threads);
  double best = 1e30;
  for (int r = 0; r < 3; ++r) {
    best = std::min(best, OnThreads(threads, [&](int t) { sink[t] = loop(kFmaIters); }));
  }
  return sink[0] == 12345.f ? 0 : flops_per_thread * threads / best;
}

// a = b + s * c over `total_bytes / 12` floats split between the threads, best of 5 sweeps
// each `reps` long. Bytes counted: 3 arrays per sweep (STREAM's convention).
double TriadBytesPerSecond(int threads, int64_t total_bytes, int reps) {
  const int64_t n = total_bytes / 12 / threads;
  std::vector<std::vector<float>> a(threads), b(threads), c(threads);
  OnThreads(threads, [&](int t) {  // first touch on the thread that uses the memory
    a[t].assign(n, 0.f);
    b[t].assign(n, 1.f);
    c[t].assign(n, 2.f);
  });
  double best = 1e30;
  for (int r = 0; r < 5; ++r) {
    best = std::min(best, OnThreads(threads, [&](int t) {
                      float* __restrict pa = a[t].data();
                      const float* __restrict pb = b[t].data();
                      const float* __restrict pc = c[t].data();
                      for (int rep = 0; rep < reps; ++rep) {
                        for (int64_t i = 0; i < n; ++i) pa[i] = pb[i] + 0.5f * pc[i];
                      }
                    }));
  }
  return 12.0 * n * threads * reps / best;
}

double LastLevelCacheBytes() {
  std::ifstream in("/sys/devices/system/cpu/cpu0/cache/index3/size");
  int64_t kib = 0;
  return (in >> kib) ? kib * 1024.0 : 0.0;
}

}  // namespace

Machine MeasureMachine(int threads) {
  Machine m;
  m.threads = threads;
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) {
    m.isa = "avx512";
    m.fp32_flops = PeakFlops(threads, kFmaIters * 12.0 * 16 * 2, FmaAvx512);
  } else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    m.isa = "avx2";
    m.fp32_flops = PeakFlops(threads, kFmaIters * 12.0 * 8 * 2, FmaAvx2);
  }
  if (__builtin_cpu_supports("avx512bf16")) {
    m.bf16_flops = PeakFlops(threads, kFmaIters * 12.0 * 16 * 4, DotBf16);
  }
  m.llc_size = LastLevelCacheBytes();
  m.dram_bytes = TriadBytesPerSecond(threads, int64_t{3} << 27, 2);
  const int64_t cache_total = m.llc_size > 0 ? static_cast<int64_t>(m.llc_size / 2) : (4 << 20);
  m.cache_bytes = TriadBytesPerSecond(threads, cache_total, 20);
  return m;
}

double RooflineSeconds(const Machine& m, double flops, double bytes, bool bf16) {
  const double peak = bf16 && m.bf16_flops > 0 ? m.bf16_flops : m.fp32_flops;
  const double bandwidth = m.llc_size > 0 && bytes <= m.llc_size ? m.cache_bytes : m.dram_bytes;
  return std::max(peak > 0 ? flops / peak : 0.0, bandwidth > 0 ? bytes / bandwidth : 0.0);
}

}  // namespace convnextv2::bench
