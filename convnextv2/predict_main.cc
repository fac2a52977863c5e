// predict: the top-5 classes, with their names, of images under a classifier's weights.
//
//   bazel run //convnextv2:predict -- --resume out/checkpoint-best.pth cat.jpg photos/
//   bazel run //convnextv2:predict -- --resume convnextv2_tiny_1k_224_ema.pt
//       --model convnextv2_tiny --output predictions.jsonl photos/     (one command line)
//
// Exit status: 0 done, 2 bad command line, 1 an input could not be used (the message says which).
#include <ATen/Parallel.h>
#include <gflags/gflags.h>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "convnextv2/apps/predict.h"

DEFINE_string(resume, "",
              "the weights: a convnextv2 checkpoint (its header names the model, the input "
              "size and the classes) or a PyTorch state dict file (then --model is needed)");
DEFINE_string(model, "", "the variant, e.g. convnextv2_tiny; checked against a checkpoint's");
DEFINE_string(model_key, "model|module",
              "which state dict of the file: the first of these '|'-separated keys present");
DEFINE_int32(batch_size, 32, "images per forward pass");
DEFINE_int32(topk, 5, "classes printed per image");
DEFINE_string(output, "", "also write one JSON object per image to this file (JSON lines)");
DEFINE_bool(bf16, false, "run the forward pass under bfloat16 autocast");
DEFINE_int32(threads, 0, "intra-op threads (0: all cores)");

int main(int argc, char** argv) {
  gflags::SetUsageMessage(
      "predict --resume CKPT [--model M] [--output F.jsonl] IMAGE_OR_FOLDER...\n"
      "Prints the top-5 classes with their names for every image (folders: recursively). Class "
      "names come from the checkpoint (recorded by finetune), or ImageNet-1k's for a 1000-class "
      "head without them. Images get the run's evaluation transform (official: resize to "
      "224/0.875, center crop 224).");
  gflags::ParseCommandLineFlags(&argc, &argv, /*remove_flags=*/true);
  if (FLAGS_resume.empty() || argc < 2) {
    std::fprintf(stderr, "predict: need --resume CKPT and at least one image or folder "
                         "(see --help)\n");
    return 2;
  }
  // Paths are the user's: under `bazel run` resolve them where the command was typed (nothing
  // is read from the runfiles; the ImageNet-1k names are compiled in).
  if (const char* dir = std::getenv("BUILD_WORKING_DIRECTORY"); dir != nullptr && *dir) {
    if (chdir(dir) != 0) {
      std::fprintf(stderr, "predict: cannot enter BUILD_WORKING_DIRECTORY %s\n", dir);
      return 2;
    }
  }
  if (FLAGS_threads > 0) at::set_num_threads(FLAGS_threads);
  convnextv2::apps::PredictOptions options;
  options.resume = FLAGS_resume;
  options.inputs.assign(argv + 1, argv + argc);
  options.model = FLAGS_model;
  options.model_key = FLAGS_model_key;
  options.batch_size = FLAGS_batch_size;
  options.top_k = FLAGS_topk;
  options.output = FLAGS_output;
  options.bf16 = FLAGS_bf16;
  absl::StatusOr<std::vector<convnextv2::apps::Prediction>> result =
      convnextv2::apps::Predict(options, &std::cout);
  if (!result.ok()) {
    std::fprintf(stderr, "predict: %s\n", std::string(result.status().message()).c_str());
    return 1;
  }
  return 0;
}
