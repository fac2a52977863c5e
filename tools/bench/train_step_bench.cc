// Prints milliseconds per training step (forward, cross-entropy, backward, AdamW) of a ConvNeXt V2
// variant on random data, the median over --steps after --warmup steps.
//
//   bazel run //tools/bench:train_step_bench -- --model=convnextv2_atto --batch=128 --size=32
//
// --grn=plain|fused picks the GRN path, so the effect of the fused one is measured side by side.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <gflags/gflags.h>
#include <torch/csrc/autograd/profiler_legacy.h>
#include <torch/optim/adamw.h>

#include <algorithm>
#include <memory>
#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

#include "convnextv2/models/registry.h"

DEFINE_string(model, "convnextv2_atto", "model name");
DEFINE_int32(batch, 128, "batch size");
DEFINE_int32(size, 32, "input size");
DEFINE_int32(classes, 10, "classes");
DEFINE_int32(steps, 10, "timed steps");
DEFINE_int32(warmup, 2, "untimed steps first");
DEFINE_int32(threads, 0, "intra-op threads (0 = all cores)");
DEFINE_string(grn, "both", "plain, fused or both (side by side)");
DEFINE_string(profile, "", "write a chrome trace of the timed steps to this file");

namespace {

double MedianStepMs(bool fused) {
  auto options = convnextv2::models::VariantOptions(FLAGS_model);
  if (!options.ok()) {
    std::fprintf(stderr, "%s\n", std::string(options.status().message()).c_str());
    std::exit(2);
  }
  at::manual_seed(0);
  convnextv2::models::ConvNeXtV2 model(options->num_classes(FLAGS_classes).fused_grn(fused));
  model->train();
  torch::optim::AdamW opt(model->parameters(), torch::optim::AdamWOptions(1e-3));
  at::Tensor x = at::randn({FLAGS_batch, 3, FLAGS_size, FLAGS_size});
  at::Tensor y = at::randint(0, FLAGS_classes, {FLAGS_batch});
  std::vector<double> times;
  std::unique_ptr<torch::autograd::profiler::RecordProfile> profile;
  for (int i = 0; i < FLAGS_warmup + FLAGS_steps; ++i) {
    if (i == FLAGS_warmup && !FLAGS_profile.empty()) {
      profile = std::make_unique<torch::autograd::profiler::RecordProfile>(
          FLAGS_profile + (fused ? ".fused.json" : ".plain.json"));
    }
    const auto t0 = std::chrono::steady_clock::now();
    at::Tensor loss = at::cross_entropy_loss(model->forward(x), y);
    opt.zero_grad();
    loss.backward();
    opt.step();
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    if (i >= FLAGS_warmup) times.push_back(ms);
    if (getenv("BENCH_VERBOSE")) std::fprintf(stderr, "step %d: %.1f ms\n", i, ms);
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  gflags::SetUsageMessage("ms per ConvNeXt V2 training step");
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  at::set_num_threads(FLAGS_threads > 0 ? FLAGS_threads
                                        : static_cast<int>(std::thread::hardware_concurrency()));
  std::printf("%s batch %d input %dx%d threads %d\n", FLAGS_model.c_str(), FLAGS_batch,
              FLAGS_size, FLAGS_size, at::get_num_threads());
  for (const char* path : {"plain", "fused"}) {
    if (FLAGS_grn != "both" && FLAGS_grn != path) continue;
    const double ms = MedianStepMs(std::string(path) == "fused");
    std::printf("grn=%s: %.1f ms/step, %.1f img/s\n", path, ms, 1000.0 * FLAGS_batch / ms);
  }
  return 0;
}
