// Prints milliseconds per fine-tuning step in float32 and with AMP (autocast + loss scaler, as
// use_amp runs it), side by side on the same model and data, and their ratio.
//
//   bazel run -c opt //tools/bench:amp_step_bench -- --model=convnextv2_atto --batch=32 --size=32
//
// On CPU the autocast dtype is bfloat16; on CPUs without native bf16 instructions it is slower
// than float32, which is what this measures before anyone turns use_amp on for a CPU run.
#include <ATen/ATen.h>
#include <gflags/gflags.h>
#include <torch/optim/adamw.h>

#include <cstdio>
#include <thread>
#include <vector>

#include "convnextv2/models/registry.h"
#include "convnextv2/train/amp.h"
#include "convnextv2/train/losses.h"
#include "convnextv2/train/train_step.h"
#include "convnextv2/util/malloc_tuning.h"
#include "tools/bench/median_time.h"

DEFINE_string(model, "convnextv2_atto", "model name");
DEFINE_int32(batch, 32, "batch size");
DEFINE_int32(size, 32, "input size");
DEFINE_int32(steps, 6, "timed steps");
DEFINE_int32(warmup, 1, "untimed steps first");
DEFINE_int32(threads, 0, "intra-op threads (0 = all cores)");
DEFINE_string(device, "cpu", "cpu or cuda");

namespace {

using convnextv2::train::AutocastGuard;

double MedianStepMs(bool amp, c10::Device device) {
  at::manual_seed(0);
  convnextv2::models::ConvNeXtV2 model =
      *convnextv2::models::CreateConvNeXtV2(FLAGS_model, /*num_classes=*/10);
  model->to(device);
  model->train();
  torch::optim::AdamW opt(model->parameters(), torch::optim::AdamWOptions(1e-4));
  convnextv2::train::OptimizerStepper stepper(&opt, model->parameters(),
                                               {.update_freq = 1, .use_scaler = amp});
  const at::Tensor x = at::randn({FLAGS_batch, 3, FLAGS_size, FLAGS_size}).to(device);
  const at::Tensor y = at::randint(0, 10, {FLAGS_batch}).to(device);
  const c10::ScalarType dtype = device.is_cpu() ? at::kBFloat16 : at::kHalf;
  int64_t step = 0;
  return convnextv2::bench::MedianMs(FLAGS_warmup, FLAGS_steps, [&] {
    at::Tensor loss;
    {
      AutocastGuard autocast(device.type(), dtype, amp);
      loss = convnextv2::train::CrossEntropy(model->forward(x), y, 0.1);
    }
    stepper.Backward(loss, step++);
    if (device.is_cuda()) loss.item<double>();  // wait for the device
  });
}

}  // namespace

int main(int argc, char** argv) {
  gflags::SetUsageMessage("ms per training step, float32 vs AMP");
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  convnextv2::util::RetainFreedMemory(true);  // as the training binaries
  at::set_num_threads(FLAGS_threads > 0 ? FLAGS_threads
                                        : static_cast<int>(std::thread::hardware_concurrency()));
  const c10::Device device(FLAGS_device);
  std::printf("%s batch %d input %dx%d threads %d device %s\n", FLAGS_model.c_str(), FLAGS_batch,
              FLAGS_size, FLAGS_size, at::get_num_threads(), device.str().c_str());
  const double fp32 = MedianStepMs(false, device);
  const double amp = MedianStepMs(true, device);
  std::printf("float32: %.1f ms/step, %.1f img/s\n", fp32, 1000.0 * FLAGS_batch / fp32);
  std::printf("amp:     %.1f ms/step, %.1f img/s\n", amp, 1000.0 * FLAGS_batch / amp);
  std::printf("amp / float32 time: %.2f\n", amp / fp32);
  return 0;
}
