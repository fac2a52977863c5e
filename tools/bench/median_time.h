// The benchmarks' timing: the median wall-clock milliseconds of `steps` calls after `warmup`
// untimed ones (a median, not a mean: the machines are shared and a slow outlier is load).
//
//   const double ms = MedianMs(/*warmup=*/2, /*steps=*/10, [&] { step(); });
#ifndef CONVNEXTV2_TOOLS_BENCH_MEDIAN_TIME_H_
#define CONVNEXTV2_TOOLS_BENCH_MEDIAN_TIME_H_

#include <algorithm>
#include <chrono>
#include <vector>

namespace convnextv2::bench {

template <typename F>
double MedianMs(int warmup, int steps, F&& call) {
  std::vector<double> times;
  for (int i = 0; i < warmup + steps; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    call();
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    if (i >= warmup) times.push_back(ms);
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

}  // namespace convnextv2::bench

#endif  // CONVNEXTV2_TOOLS_BENCH_MEDIAN_TIME_H_
