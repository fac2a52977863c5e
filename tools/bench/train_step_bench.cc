// Prints milliseconds per training step (forward, cross-entropy, backward, AdamW) of a ConvNeXt V2
// variant on random data, the median over --steps after --warmup steps.
//
//   bazel run //tools/bench:train_step_bench -- --model=convnextv2_atto --batch=128 --size=32
//
// --grn=plain|fused picks the GRN path, so the effect of the fused one is measured side by side;
// --dwconv=plain|fused the depthwise convolution's.
// --amp runs the forward pass and the loss under bfloat16 autocast (what use_amp does on the CPU).
// --malloc=retain|default|both: glibc keeping freed memory (what the binaries do) or glibc's
// defaults; `both` (the default) runs each in a child process of its own, alternating, and prints
// the ratio.
// --op_table (or --profile): after the step time, the machine's measured peaks and a markdown
// table of each op kind's forward and backward time, FLOPs, bytes and share of the roofline
// bound (op_table.h), for the fused model (--grn=plain: the plain one), glibc retaining memory.
//
//   bazel run //tools/bench:train_step_bench -- --op_table --batch=128 --size=32
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

#include <unistd.h>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "convnextv2/models/cpu_kernels.h"
#include "convnextv2/models/registry.h"
#include "convnextv2/train/amp.h"
#include "convnextv2/util/malloc_tuning.h"
#include "tools/bench/op_table.h"
#include "tools/bench/roofline.h"

DEFINE_string(model, "convnextv2_atto", "model name");
DEFINE_int32(batch, 128, "batch size");
DEFINE_int32(size, 32, "input size");
DEFINE_int32(classes, 10, "classes");
DEFINE_int32(steps, 10, "timed steps");
DEFINE_int32(warmup, 2, "untimed steps first");
DEFINE_int32(threads, 0, "intra-op threads (0 = all cores)");
DEFINE_string(grn, "both", "plain, fused or both (side by side)");
DEFINE_string(dwconv, "fused", "depthwise convolution: fused (the model's default) or plain");
DEFINE_string(malloc, "both", "retain (as the binaries), default (glibc's) or both");
DEFINE_int32(rounds, 3, "with --malloc=both: alternating rounds of each setting");
DEFINE_bool(amp, false, "forward pass and loss under bfloat16 autocast (use_amp on the CPU)");
DEFINE_string(profile, "",
              "write a chrome trace of the timed steps to this file (+.fused.json/.plain.json) "
              "and print the per-op table");
DEFINE_bool(op_table, false, "print the machine's peaks and the per-op roofline table");
DEFINE_int32(op_reps, 5, "with --op_table: timed repetitions of each op (median)");

namespace {

convnextv2::models::ConvNeXtV2 MakeModel(bool fused) {
  auto options = convnextv2::models::VariantOptions(FLAGS_model);
  if (!options.ok()) {
    std::fprintf(stderr, "%s\n", std::string(options.status().message()).c_str());
    std::exit(2);
  }
  at::manual_seed(0);
  convnextv2::models::ConvNeXtV2 model(
      options->num_classes(FLAGS_classes).fused_grn(fused).fused_dwconv(FLAGS_dwconv == "fused"));
  model->train();
  return model;
}

double MedianStepMs(bool fused) {
  convnextv2::models::ConvNeXtV2 model = MakeModel(fused);
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
    at::Tensor loss;
    {
      convnextv2::train::AutocastGuard autocast(c10::DeviceType::CPU, at::kBFloat16, FLAGS_amp);
      loss = at::cross_entropy_loss(model->forward(x), y);
    }
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

// Runs this program again with --malloc=MODE and returns its fused-GRN ms/step (or -1).
double ChildMs(const std::vector<std::string>& args, const std::string& mode) {
  // popen runs a shell, whose /proc/self/exe is the shell: resolve ours first.
  char self[4096];
  const ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
  if (len <= 0) return -1;
  std::string cmd = absl::StrCat("'", std::string(self, len), "'");
  for (const std::string& a : args) absl::StrAppend(&cmd, " '", a, "'");
  absl::StrAppend(&cmd, " --malloc=", mode, " --grn=fused");
  FILE* pipe = popen(cmd.c_str(), "r");
  if (pipe == nullptr) return -1;
  char line[512];
  double ms = -1;
  while (std::fgets(line, sizeof line, pipe) != nullptr) {
    std::sscanf(line, "grn=fused: %lf ms/step", &ms);
  }
  return pclose(pipe) == 0 ? ms : -1;
}

int main(int argc, char** argv) {
  gflags::SetUsageMessage("ms per ConvNeXt V2 training step");
  const std::vector<std::string> args(argv + 1, argv + argc);
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  if (FLAGS_steps < 1 || FLAGS_warmup < 0 || FLAGS_rounds < 1 || FLAGS_batch < 1 ||
      FLAGS_size < 32) {
    std::fprintf(stderr,
                 "need --steps >= 1, --warmup >= 0, --rounds >= 1, --batch >= 1 and --size >= 32; "
                 "got %d, %d, %d, %d, %d\n",
                 FLAGS_steps, FLAGS_warmup, FLAGS_rounds, FLAGS_batch, FLAGS_size);
    return 2;
  }
  const bool op_table = FLAGS_op_table || !FLAGS_profile.empty();
  if (FLAGS_malloc == "both" && !op_table) {
    std::vector<double> retain, plain;
    for (int r = 0; r < FLAGS_rounds; ++r) {
      retain.push_back(ChildMs(args, "retain"));
      plain.push_back(ChildMs(args, "default"));
      std::printf("round %d: retain %.1f ms/step, glibc default %.1f ms/step\n", r + 1,
                  retain.back(), plain.back());
      if (retain.back() <= 0 || plain.back() <= 0) return 1;
    }
    std::sort(retain.begin(), retain.end());
    std::sort(plain.begin(), plain.end());
    const double a = retain[retain.size() / 2], b = plain[plain.size() / 2];
    std::printf("%s batch %d input %dx%d (fused GRN): retain %.1f ms/step (%.1f img/s), glibc "
                "default %.1f ms/step (%.1f img/s): %.2fx\n",
                FLAGS_model.c_str(), FLAGS_batch, FLAGS_size, FLAGS_size, a,
                1000.0 * FLAGS_batch / a, b, 1000.0 * FLAGS_batch / b, b / a);
    return 0;
  }
  if (FLAGS_dwconv != "fused" && FLAGS_dwconv != "plain") {
    std::fprintf(stderr, "--dwconv must be fused or plain, got '%s'\n", FLAGS_dwconv.c_str());
    return 2;
  }
  if (FLAGS_malloc != "retain" && FLAGS_malloc != "default" && !op_table) {
    std::fprintf(stderr, "--malloc must be retain, default or both, got '%s'\n",
                 FLAGS_malloc.c_str());
    return 2;
  }
  std::printf("%s\n", convnextv2::util::RetainFreedMemory(FLAGS_malloc != "default").c_str());
  at::set_num_threads(FLAGS_threads > 0 ? FLAGS_threads
                                        : static_cast<int>(std::thread::hardware_concurrency()));
  std::printf("%s batch %d input %dx%d threads %d %s, own CPU kernels: %s\n",
              FLAGS_model.c_str(), FLAGS_batch, FLAGS_size, FLAGS_size, at::get_num_threads(),
              FLAGS_amp ? "bf16 AMP" : "float32",
              convnextv2::models::internal::ActiveCpuKernels().name);
  for (const char* path : {"plain", "fused"}) {
    if (FLAGS_grn != "both" && FLAGS_grn != path) continue;
    const double ms = MedianStepMs(std::string(path) == "fused");
    std::printf("grn=%s: %.1f ms/step, %.1f img/s\n", path, ms, 1000.0 * FLAGS_batch / ms);
    if (op_table && (FLAGS_grn == path || (FLAGS_grn == "both" && path[0] == 'f'))) {
      const convnextv2::bench::Machine machine =
          convnextv2::bench::MeasureMachine(at::get_num_threads());
      convnextv2::models::ConvNeXtV2 model = MakeModel(path[0] == 'f');
      convnextv2::bench::OpTableOptions options;
      options.batch = FLAGS_batch;
      options.size = FLAGS_size;
      options.amp = FLAGS_amp;
      options.reps = FLAGS_op_reps;
      convnextv2::bench::PrintOpTable(model, options, machine, ms);
    }
  }
  return 0;
}
