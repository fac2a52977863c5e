#include "convnextv2/onnx/onnx_export.h"

#include <cstdint>
#include <exception>
#include <filesystem>
#include <limits>
#include <string>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "convnextv2/onnx/convnextv2_graph.h"
#include "convnextv2/util/files.h"
#include "convnextv2/util/status_macros.h"
#include "onnx/checker.h"
#include "onnx/shape_inference/implementation.h"

namespace convnextv2::onnx_export {

absl::StatusOr<OnnxPrecision> ParseOnnxPrecision(absl::string_view text) {
  if (text == "fp32") return OnnxPrecision::kFloat32;
  if (text == "fp16") return OnnxPrecision::kFloat16;
  return absl::InvalidArgumentError(
      absl::StrCat("ONNX precision '", text, "' is not one of: fp32, fp16"));
}

absl::Status CheckOnnxModel(onnx::ModelProto& proto) {
  try {
    onnx::checker::check_model(proto);
    onnx::shape_inference::InferShapes(
        proto, onnx::OpSchemaRegistry::Instance(),
        onnx::ShapeInferenceOptions(/*check_type_val=*/true, /*strict_mode_val=*/1));
    onnx::checker::check_model(proto);
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat(
        "the ONNX checker refused the exported graph (a bug of the export): ", e.what()));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> OnnxModelBytes(const models::ConvNeXtV2& model,
                                           const OnnxOptions& options) {
  CONVNEXTV2_ASSIGN_OR_RETURN(onnx::ModelProto proto, BuildOnnxModel(model, options));
  // A protobuf message cannot pass 2 GiB (fp32 convnextv2_huge does); ONNX's external data
  // files would be needed, which this export does not write.
  const size_t bytes = proto.ByteSizeLong();
  if (bytes > static_cast<size_t>(std::numeric_limits<int32_t>::max())) {
    return absl::ResourceExhaustedError(
        absl::StrCat("the ONNX model would be ", bytes,
                     " bytes, over protobuf's 2 GiB limit; export with "
                     "precision fp16 (half the size)"));
  }
  CONVNEXTV2_RETURN_IF_ERROR(CheckOnnxModel(proto));
  std::string out;
  if (!proto.SerializeToString(&out)) {
    return absl::InternalError("could not serialize the ONNX model");
  }
  return out;
}

absl::Status WriteOnnx(const models::ConvNeXtV2& model, const OnnxOptions& options,
                       const std::string& path) {
  std::error_code ec;
  // (A path that cannot be examined is left to the write, whose error names the reason.)
  if (std::filesystem::exists(std::filesystem::symlink_status(path, ec))) {
    return absl::AlreadyExistsError(
        absl::StrCat(path, ": exists; the export writes a new file and overwrites nothing"));
  }
  CONVNEXTV2_ASSIGN_OR_RETURN(const std::string bytes, OnnxModelBytes(model, options));
  return util::WriteFileAtomically(path, bytes);
}

}  // namespace convnextv2::onnx_export
