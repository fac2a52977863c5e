// Training images per second of ConvNeXt V2 on a CUDA GPU: bfloat16 autocast, channels-last,
// AdamW, cross-entropy, random 224x224 inputs; the block's fused CUDA kernels (cuda_ops.h)
// against the plain ATen chain (fused_grn = false) in the same run. tools/cuda/device_check.sh
// prints it beside the official PyTorch model (tools/bench/official_cuda_bench.py).
//
//   cuda_train_bench --model=convnextv2_tiny --batch=128 --steps=20
//
// Output lines: "toolkit <model> b<batch> <kernels> <img/s> img/s <ms> ms/step".
#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>
#include <gflags/gflags.h>
#include <torch/cuda.h>
#include <torch/optim/adamw.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "convnextv2/models/registry.h"
#include "convnextv2/util/torch_compat.h"

DEFINE_string(model, "convnextv2_atto", "model name");
DEFINE_int32(batch, 256, "batch size");
DEFINE_int32(size, 224, "input size");
DEFINE_int32(classes, 1000, "classes");
DEFINE_int32(steps, 20, "timed steps");
DEFINE_int32(warmup, 5, "untimed steps first");
DEFINE_string(kernels, "both", "fused (CUDA kernels), plain (ATen) or both");
DEFINE_string(amp_dtype, "bfloat16", "autocast dtype: bfloat16, float16 or none");

namespace {

double MedianStepMs(bool fused, c10::ScalarType amp_dtype, bool amp) {
  at::manual_seed(0);
  absl::StatusOr<convnextv2::models::ConvNeXtV2Options> options =
      convnextv2::models::VariantOptions(FLAGS_model);
  if (!options.ok()) {
    std::fprintf(stderr, "%s\n", std::string(options.status().message()).c_str());
    std::exit(2);
  }
  options->num_classes(FLAGS_classes).fused_grn(fused).drop_path_rate(0.1);
  convnextv2::models::ConvNeXtV2 model(*options);
  model->to(at::kCUDA);
  model->train();
  torch::optim::AdamW opt(model->parameters(), torch::optim::AdamWOptions(1e-4));
  const auto cuda = at::TensorOptions().device(at::kCUDA);
  const at::Tensor x = at::randn({FLAGS_batch, 3, FLAGS_size, FLAGS_size}, cuda)
                           .contiguous(at::MemoryFormat::ChannelsLast);
  const at::Tensor y = at::randint(0, FLAGS_classes, {FLAGS_batch}, cuda.dtype(at::kLong));
  std::vector<double> times;
  for (int i = 0; i < FLAGS_warmup + FLAGS_steps; ++i) {
    torch::cuda::synchronize();
    const auto t0 = std::chrono::steady_clock::now();
    opt.zero_grad();
    convnextv2::compat::SetAutocastDtype(c10::DeviceType::CUDA, amp_dtype);
    convnextv2::compat::SetAutocastEnabled(c10::DeviceType::CUDA, amp);
    const at::Tensor logits = model->forward(x);
    convnextv2::compat::SetAutocastEnabled(c10::DeviceType::CUDA, false);
    at::autocast::clear_cache();
    const at::Tensor loss = at::cross_entropy_loss(logits.to(at::kFloat), y,
                                                   /*weight=*/{}, at::Reduction::Mean,
                                                   /*ignore_index=*/-100,
                                                   /*label_smoothing=*/0.1);
    loss.backward();
    opt.step();
    torch::cuda::synchronize();
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    if (i >= FLAGS_warmup) times.push_back(ms);
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  gflags::SetUsageMessage("training img/s on CUDA: fused kernels vs plain ATen");
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  if (!torch::cuda::is_available()) {
    std::fprintf(stderr, "cuda_train_bench: no CUDA device (torch::cuda::is_available())\n");
    return 2;
  }
  if (FLAGS_steps <= 0 || FLAGS_warmup < 0 || FLAGS_batch <= 0 || FLAGS_size <= 0) {
    std::fprintf(stderr, "cuda_train_bench: --steps, --batch and --size must be positive\n");
    return 2;
  }
  const bool amp = FLAGS_amp_dtype != "none";
  c10::ScalarType dtype = at::kBFloat16;
  if (FLAGS_amp_dtype == "float16") {
    dtype = at::kHalf;
  } else if (amp && FLAGS_amp_dtype != "bfloat16") {
    std::fprintf(stderr, "cuda_train_bench: --amp_dtype must be bfloat16, float16 or none\n");
    return 2;
  }
  std::vector<std::pair<std::string, bool>> runs;
  if (FLAGS_kernels == "fused" || FLAGS_kernels == "both") runs.push_back({"fused", true});
  if (FLAGS_kernels == "plain" || FLAGS_kernels == "both") runs.push_back({"plain", false});
  if (runs.empty()) {
    std::fprintf(stderr, "cuda_train_bench: --kernels must be fused, plain or both\n");
    return 2;
  }
  for (const auto& [name, fused] : runs) {
    const double ms = MedianStepMs(fused, dtype, amp);
    std::printf("toolkit %s b%d %s %.0f img/s %.1f ms/step (%s, channels-last, %dx%d)\n",
                FLAGS_model.c_str(), FLAGS_batch, name.c_str(), 1000.0 * FLAGS_batch / ms, ms,
                FLAGS_amp_dtype.c_str(), FLAGS_size, FLAGS_size);
    std::fflush(stdout);
  }
  return 0;
}
