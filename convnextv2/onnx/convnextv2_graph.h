// The ONNX graph of a ConvNeXtV2 model and its check, before serializing (onnx_export.h is
// the front door).
//
//   absl::StatusOr<onnx::ModelProto> proto = BuildOnnxModel(model, OnnxOptions());
//
// Per block: Conv (group = C, the depthwise 7x7) -> Transpose to NHWC -> LayerNormalization
// (axis -1) -> MatMul + Add -> GELU from Erf -> GRN (ReduceSumSquare over H, W -> Sqrt ->
// ReduceMean over C -> Add eps -> Div, then Mul, Mul, Add, Add) -> MatMul + Add -> Transpose
// to NCHW -> Add (residual). The channels-first LayerNorms of the stem and the downsampling
// layers are Transpose -> LayerNormalization -> Transpose; the head is ReduceMean over H, W ->
// LayerNormalization -> Gemm.
#ifndef CONVNEXTV2_ONNX_CONVNEXTV2_GRAPH_H_
#define CONVNEXTV2_ONNX_CONVNEXTV2_GRAPH_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "convnextv2/models/convnextv2.h"
#include "convnextv2/onnx/onnx_export.h"
#include "onnx/onnx_pb.h"

namespace convnextv2::onnx_export {

inline constexpr int kOnnxOpset = 17;
inline constexpr int kOnnxIrVersion = 8;
inline constexpr char kInputName[] = "pixel_values";
inline constexpr char kOutputName[] = "logits";

// InvalidArgument for options this model cannot take (an opset other than 17,
// normalize_inside without 3 input channels, naive_fp16_grn without fp16, fp16 with a weight
// beyond fp16's range).
absl::StatusOr<onnx::ModelProto> BuildOnnxModel(const models::ConvNeXtV2& model,
                                                const OnnxOptions& options);

// The full check of onnx.checker.check_model(full_check=True): the model's structure and
// operator schemas (opset 17, IR version 8 at the most), then shape inference with type checks
// in strict mode, which also leaves the inferred types and shapes of the intermediate values in
// the graph (value_info). Internal (naming what the checker said) on a refusal. In
// onnx_export.cc.
absl::Status CheckOnnxModel(onnx::ModelProto& proto);

}  // namespace convnextv2::onnx_export

#endif  // CONVNEXTV2_ONNX_CONVNEXTV2_GRAPH_H_
