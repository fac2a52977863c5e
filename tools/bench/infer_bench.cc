// Images per second of a ConvNeXt V2 forward pass for inference (what `predict` runs:
// apps/inference.h, eval mode under InferenceMode), float32 or bfloat16 autocast, on random
// data: the median over --steps batches after --warmup.
//
//   bazel run -c opt //tools/bench:infer_bench -- --model=convnextv2_tiny --batch=64 --size=224
//   bazel run -c opt //tools/bench:infer_bench -- --precision=both
//
// tools/bench/peer_compare.py runs it beside PyTorch's eager, torch.compile and onnxruntime.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <gflags/gflags.h>

#include <cstdio>
#include <string>
#include <thread>

#include "convnextv2/apps/inference.h"
#include "convnextv2/models/registry.h"
#include "convnextv2/util/malloc_tuning.h"
#include "tools/bench/median_time.h"

DEFINE_string(model, "convnextv2_atto", "model name");
DEFINE_int32(batch, 64, "batch size");
DEFINE_int32(size, 224, "input size");
DEFINE_int32(classes, 1000, "classes of the head");
DEFINE_int32(steps, 5, "timed batches");
DEFINE_int32(warmup, 2, "untimed batches first");
DEFINE_int32(threads, 0, "intra-op threads (0 = all cores)");
DEFINE_string(precision, "float32", "float32, bfloat16 or both");
DEFINE_string(malloc, "retain", "retain (glibc keeps freed memory, as the binaries) or default");

namespace {

double MedianBatchMs(convnextv2::models::ConvNeXtV2& model, const at::Tensor& x, bool bf16) {
  return convnextv2::bench::MedianMs(FLAGS_warmup, FLAGS_steps, [&] {
    const at::Tensor logits = convnextv2::apps::InferenceLogits(model, x, bf16);
  });
}

}  // namespace

int main(int argc, char** argv) {
  gflags::SetUsageMessage("images/s of a ConvNeXt V2 inference forward pass");
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  if (FLAGS_steps < 1 || FLAGS_warmup < 0 || FLAGS_batch < 1 || FLAGS_size < 32 ||
      (FLAGS_precision != "float32" && FLAGS_precision != "bfloat16" &&
       FLAGS_precision != "both") ||
      (FLAGS_malloc != "retain" && FLAGS_malloc != "default")) {
    std::fprintf(stderr, "need --steps >= 1, --warmup >= 0, --batch >= 1, --size >= 32, "
                         "--precision float32|bfloat16|both, --malloc retain|default\n");
    return 2;
  }
  std::printf("%s\n", convnextv2::util::RetainFreedMemory(FLAGS_malloc == "retain").c_str());
  at::set_num_threads(FLAGS_threads > 0 ? FLAGS_threads
                                        : static_cast<int>(std::thread::hardware_concurrency()));
  absl::StatusOr<convnextv2::models::ConvNeXtV2> model =
      convnextv2::models::CreateConvNeXtV2(FLAGS_model, FLAGS_classes);
  if (!model.ok()) {
    std::fprintf(stderr, "%s\n", std::string(model.status().message()).c_str());
    return 2;
  }
  at::manual_seed(0);
  const at::Tensor x = at::randn({FLAGS_batch, 3, FLAGS_size, FLAGS_size});
  for (const char* precision : {"float32", "bfloat16"}) {
    if (FLAGS_precision != "both" && FLAGS_precision != precision) continue;
    const double ms = MedianBatchMs(*model, x, std::string(precision) == "bfloat16");
    std::printf("%s b%d %dx%d %s threads %d: %.1f ms/batch, %.1f img/s\n", FLAGS_model.c_str(),
                FLAGS_batch, FLAGS_size, FLAGS_size, precision, at::get_num_threads(), ms,
                1000.0 * FLAGS_batch / ms);
    std::fflush(stdout);
  }
  return 0;
}
