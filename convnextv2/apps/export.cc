#include "convnextv2/apps/export.h"

#include <glog/logging.h>

#include <filesystem>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "convnextv2/checkpoint/hf_folder.h"
#include "convnextv2/checkpoint/layouts.h"
#include "convnextv2/checkpoint/pretrained.h"
#include "convnextv2/checkpoint/safetensors.h"
#include "convnextv2/checkpoint/state.h"
#include "convnextv2/onnx/onnx_export.h"
#include "convnextv2/util/status_macros.h"

namespace convnextv2::apps {
namespace {

checkpoint::TensorMap CpuState(const models::ConvNeXtV2& model) {
  checkpoint::TensorMap state;
  for (const auto& [name, t] : checkpoint::ModuleState(*model)) {
    state[name] = t.detach().to(at::kCPU);
  }
  return state;
}

absl::Status WriteOfficialSafetensors(const ExportInput& in, const std::string& out) {
  return checkpoint::WriteSafetensors(out, CpuState(in.model),
                                      {{"format", "pt"}, {"convnextv2_model", in.variant}});
}

absl::Status WriteHf(const ExportInput& in, const std::string& out) {
  const checkpoint::TensorMap state = CpuState(in.model);
  const std::optional<checkpoint::Architecture> arch = checkpoint::InferArchitecture(state);
  if (!arch) return absl::InternalError("export hf: the model has no four stages of blocks");
  return checkpoint::WriteHfFolder(
      out, *arch, checkpoint::FromOfficial(checkpoint::TransformersLayout(), state),
      in.class_names);
}

absl::Status WritePth(const ExportInput& in, const std::string& out) {
  return checkpoint::ExportForPyTorch(*in.model, out);
}

absl::Status WriteOnnxGraph(const ExportInput& in, const std::string& out) {
  onnx_export::OnnxOptions options;
  CONVNEXTV2_ASSIGN_OR_RETURN(options.precision, onnx_export::ParseOnnxPrecision(in.precision));
  options.normalize_inside = in.normalize_inside;
  return onnx_export::WriteOnnx(in.model, options, out);
}

std::vector<ExportFormat>* MakeFormats() {
  return new std::vector<ExportFormat>{
      {"safetensors", "one .safetensors file, official names (timm loads it)",
       WriteOfficialSafetensors},
      {"hf", "a Hugging Face model folder (config.json, model.safetensors) for transformers",
       WriteHf},
      {"pth", "torch.save zip {'model': state dict}, official names", WritePth},
      {"onnx", "an ONNX graph (opset 17; --precision fp16 keeps GRN's sums in fp32)",
       WriteOnnxGraph},
  };
}

}  // namespace

const std::vector<ExportFormat>& ExportFormats() {
  static const std::vector<ExportFormat>* formats = MakeFormats();
  return *formats;
}

std::string ExportFormatNames() {
  std::vector<std::string> names;
  for (const ExportFormat& f : ExportFormats()) names.push_back(f.name);
  return absl::StrJoin(names, ", ");
}

absl::Status RunExport(const ExportOptions& options) {
  const ExportFormat* format = nullptr;
  for (const ExportFormat& f : ExportFormats()) {
    if (f.name == options.format) format = &f;
  }
  if (format == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("--format: unknown format '", options.format,
                                                   "'; known: ", ExportFormatNames()));
  }
  if (options.resume.empty()) return absl::InvalidArgumentError("--resume: no weights given");
  if (options.out.empty()) return absl::InvalidArgumentError("--out: no output path given");
  if (options.weights != "model" && options.weights != "model_ema") {
    return absl::InvalidArgumentError(absl::StrCat("--weights: '", options.weights,
                                                   "' is neither model nor model_ema"));
  }
  if (format->name != "onnx" && (options.precision != "fp32" || options.normalize_inside)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--precision/--normalize_inside apply to --format onnx only, not ", format->name));
  }
  std::error_code ec;
  if (std::filesystem::exists(options.out, ec)) {
    return absl::AlreadyExistsError(absl::StrCat(
        "--out ", options.out, " exists; export never overwrites (remove it or pick another)"));
  }
  CONVNEXTV2_ASSIGN_OR_RETURN(
      checkpoint::InferenceModel loaded,
      checkpoint::LoadInferenceModel(options.resume, options.model, options.weights));
  for (const std::string& line : checkpoint::DescribeLoad(options.resume, loaded.report)) {
    LOG(INFO) << line;
  }
  loaded.model->to(at::kCPU);
  const ExportInput input{loaded.model, loaded.variant, loaded.class_names, options.precision,
                          options.normalize_inside};
  CONVNEXTV2_RETURN_IF_ERROR(format->write(input, options.out));
  LOG(INFO) << "Exported " << loaded.variant << " (" << loaded.class_names.size()
            << " class names) as " << format->name << " to " << options.out;
  return absl::OkStatus();
}

}  // namespace convnextv2::apps
