// export: a model's weights in the formats other tools load (apps/export.h).
//
//   bazel run //convnextv2:export -- --resume /run/checkpoint-best.pth --format hf --out /out/hf
//   bazel run //convnextv2:export -- --resume timm_atto.safetensors --format pth --out atto.pth
//   bazel run //convnextv2:export -- --help
#include <gflags/gflags.h>
#include <glog/logging.h>

#include <algorithm>
#include <cstdio>
#include <string>

#include "absl/strings/str_cat.h"
#include "convnextv2/apps/export.h"

DEFINE_string(resume, "",
              "the weights to export: a convnextv2 checkpoint (checkpoint-best.pth ...), a "
              "PyTorch .pth/.bin, a .safetensors file or a Hugging Face model folder, in the "
              "official, timm or transformers layout");
DEFINE_string(format, "", "the output format (see below)");
DEFINE_string(precision, "fp32",
              "onnx: fp32, or fp16 (a half-precision graph whose GRN squares, sums and norms "
              "in fp32)");
DEFINE_bool(normalize_inside, false,
            "onnx: the graph takes RGB in [0, 1] and applies ImageNet's mean/std itself");
DEFINE_string(out, "", "the file (or folder, for hf) to create; must not exist");
DEFINE_string(model, "",
              "the variant (convnextv2_atto ...); empty: recognized from the weights' shapes");
DEFINE_string(weights, "model",
              "which weights of a convnextv2 checkpoint: model, or model_ema (its EMA)");

int main(int argc, char** argv) {
  std::string usage =
      "export --resume WEIGHTS --format FORMAT --out PATH\n\nFormats:\n";
  for (const convnextv2::apps::ExportFormat& f : convnextv2::apps::ExportFormats()) {
    absl::StrAppend(&usage, "  ", f.name, std::string(13 - std::min<size_t>(f.name.size(), 12), ' '),
                    f.help, "\n");
  }
  absl::StrAppend(&usage, "\nDetails: docs/checkpoints.md (\"Export\").");
  gflags::SetUsageMessage(usage);
  gflags::ParseCommandLineFlags(&argc, &argv, /*remove_flags=*/true);
  FLAGS_logtostderr = true;
  google::InitGoogleLogging(argv[0]);
  if (argc > 1) {
    std::fprintf(stderr, "export: unexpected argument '%s' (see --help)\n", argv[1]);
    return 2;
  }
  convnextv2::apps::ExportOptions options;
  options.resume = FLAGS_resume;
  options.model = FLAGS_model;
  options.weights = FLAGS_weights;
  options.format = FLAGS_format;
  options.out = FLAGS_out;
  options.precision = FLAGS_precision;
  options.normalize_inside = FLAGS_normalize_inside;
  const absl::Status s = convnextv2::apps::RunExport(options);
  if (!s.ok()) {
    std::fprintf(stderr, "export: %s\n", std::string(s.message()).c_str());
    return s.code() == absl::StatusCode::kInvalidArgument ||
                   s.code() == absl::StatusCode::kAlreadyExists
               ? 2
               : 1;
  }
  return 0;
}
