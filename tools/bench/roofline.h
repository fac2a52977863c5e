// What this machine can do, measured by short microbenchmarks on all of the given threads: peak
// float32 FMA and bfloat16 dot-product FLOP/s (AVX-512 where the CPU has it, else AVX2/FMA, else
// SSE) and memory bandwidth (a STREAM triad, counted as 3 arrays of traffic), over arrays far
// larger than the last-level cache and over arrays that fit in it. train_step_bench's per-op
// table divides each op's FLOPs and bytes by these.
//
//   const Machine m = MeasureMachine(/*threads=*/2);
//   std::printf("%.0f GFLOP/s\n", m.fp32_flops / 1e9);
#ifndef TOOLS_BENCH_ROOFLINE_H_
#define TOOLS_BENCH_ROOFLINE_H_

#include <string>

namespace convnextv2::bench {

struct Machine {
  int threads = 1;
  std::string isa;           // the instructions the FLOP loops used
  double fp32_flops = 0;     // FLOP/s, FMA counted as 2
  double bf16_flops = 0;     // FLOP/s of vdpbf16ps (2 products + 2 adds per lane pair); 0 if none
  double dram_bytes = 0;     // bytes/s, triad over 3 x 128 MiB
  double cache_bytes = 0;    // bytes/s, triad over arrays totalling about half the LLC
  double llc_size = 0;       // bytes of last-level cache (sysfs), 0 if unknown
};

Machine MeasureMachine(int threads);

// Seconds an op needs at the machine's limit: max(flops / peak, bytes / bandwidth), with the
// cache bandwidth when `bytes` fits in the last-level cache.
double RooflineSeconds(const Machine& m, double flops, double bytes, bool bf16);

}  // namespace convnextv2::bench

#endif  // TOOLS_BENCH_ROOFLINE_H_
