// Forward + backward time of the block's depthwise 7x7 convolution, DepthwiseConvKernel vs
// at::conv2d, per feature-map size (channels-last float32), side by side:
//
//   bazel run //tools/bench:dwconv_bench -- --batch=32 --channels=40 --threads=2
//
// DepthwiseConvFused takes the kernel on every map size; this prints the figures that choice
// rests on.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>
#include <gflags/gflags.h>
#include <torch/autograd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

#include "convnextv2/models/layers.h"
#include "convnextv2/util/malloc_tuning.h"

DEFINE_int32(batch, 32, "batch size");
DEFINE_int32(channels, 40, "channels");
DEFINE_int32(threads, 2, "intra-op threads");
DEFINE_int32(reps, 5, "timed repetitions (median)");
DEFINE_bool(forward_only, false, "time the forward pass alone, without autograd (inference)");

namespace {

double MedianMs(bool fused, const at::Tensor& x, const at::Tensor& w, const at::Tensor& b) {
  std::vector<double> times;
  for (int i = 0; i < FLAGS_reps + 1; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    auto conv = [&] {
      return fused ? convnextv2::models::DepthwiseConvKernel(x, w, b)
                   : convnextv2::models::DepthwiseConvPlain(x, w, b);
    };
    if (FLAGS_forward_only) {
      c10::InferenceMode no_autograd;
      conv();
    } else {
      torch::autograd::grad({conv().sum()}, {x, w, b});
    }
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    if (i > 0) times.push_back(ms);
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  if (FLAGS_reps < 1 || FLAGS_batch < 1 || FLAGS_channels < 1 || FLAGS_threads < 1) {
    std::fprintf(stderr,
                 "need --reps, --batch, --channels and --threads >= 1; got %d, %d, %d, %d\n",
                 FLAGS_reps, FLAGS_batch, FLAGS_channels, FLAGS_threads);
    return 2;
  }
  convnextv2::util::RetainFreedMemory(true);
  at::set_num_threads(FLAGS_threads);
  std::printf("depthwise 7x7, batch %d, %d channels, %d threads: %s ms\n", FLAGS_batch,
              FLAGS_channels, FLAGS_threads, FLAGS_forward_only ? "fwd" : "fwd+bwd");
  for (int size : {1, 2, 4, 7, 8, 14, 16, 28, 56}) {
    const at::Tensor x = at::randn({FLAGS_batch, FLAGS_channels, size, size})
                             .contiguous(at::MemoryFormat::ChannelsLast)
                             .requires_grad_(true);
    const at::Tensor w = at::randn({FLAGS_channels, 1, 7, 7})
                             .contiguous(at::MemoryFormat::ChannelsLast)
                             .requires_grad_(true);
    const at::Tensor b = at::randn({FLAGS_channels}).requires_grad_(true);
    const double fused = MedianMs(true, x, w, b), plain = MedianMs(false, x, w, b);
    std::printf("%2dx%-2d  kernel %8.3f  conv2d %8.3f  conv2d/kernel %.2f\n", size, size, fused,
                plain, plain / fused);
  }
  return 0;
}
