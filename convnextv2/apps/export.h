// `export`: a trained model in the formats other tools load, from any weights file
// checkpoint/pretrained.h reads (a convnextv2 checkpoint, timm or Hugging Face files ...).
//
//   ExportOptions options;
//   options.resume = "/run/checkpoint-best.pth";
//   options.format = "hf";
//   options.out = "/out/atto-hf";
//   absl::Status s = RunExport(options);
//
// Formats (ExportFormats(), one row each):
//   safetensors  one .safetensors file, official names (timm's filter loads it:
//                timm.create_model(name, pretrained=True,
//                                  pretrained_cfg_overlay=dict(file=PATH, num_classes=N)))
//   hf           a Hugging Face model folder: config.json, preprocessor_config.json,
//                model.safetensors in transformers' names
//                (ConvNextV2ForImageClassification.from_pretrained(DIR))
//   pth          torch.save zip {'model': state dict}, official names (ExportForPyTorch)
// Nothing is overwritten: an existing --out is an error, and every file or folder appears
// whole or not at all (written under a temporary name and renamed).
#ifndef CONVNEXTV2_APPS_EXPORT_H_
#define CONVNEXTV2_APPS_EXPORT_H_

#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "convnextv2/models/convnextv2.h"

namespace convnextv2::apps {

struct ExportOptions {
  std::string resume;              // the weights: a checkpoint, file or model folder
  std::string model;               // the variant; empty: from the weights' shapes
  std::string weights = "model";   // a convnextv2 checkpoint's "model" or "model_ema"
  std::string format;              // a name of ExportFormats()
  std::string out;                 // the file or folder to create
  std::string precision = "fp32";  // onnx only: fp32 or fp16 (GRN's sums stay fp32)
  bool normalize_inside = false;   // onnx only: the graph takes [0, 1] RGB and normalizes
};

// What a format writes from.
struct ExportInput {
  const models::ConvNeXtV2& model;  // loaded, CPU, eval()
  std::string variant;              // "convnextv2_atto"
  std::vector<std::string> class_names;  // by class index; may be empty
  std::string precision = "fp32";         // ExportOptions::precision
  bool normalize_inside = false;          // ExportOptions::normalize_inside
};

struct ExportFormat {
  std::string name;  // the --format value
  std::string help;  // one line for --help
  std::function<absl::Status(const ExportInput& input, const std::string& out)> write;
};

const std::vector<ExportFormat>& ExportFormats();
// "safetensors, hf, pth"
std::string ExportFormatNames();

// Errors name the flag or file: an unknown format (listing the known ones), an --out that
// exists, weights that do not load.
absl::Status RunExport(const ExportOptions& options);

}  // namespace convnextv2::apps

#endif  // CONVNEXTV2_APPS_EXPORT_H_
