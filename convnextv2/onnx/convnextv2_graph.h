// The ONNX graph of a ConvNeXtV2 model, before checking and serializing (onnx_export.h is the
// front door; tests read the graph through it).
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
// normalize_inside without 3 input channels, naive_fp16_grn without fp16).
absl::StatusOr<onnx::ModelProto> BuildOnnxModel(const models::ConvNeXtV2& model,
                                                const OnnxOptions& options);

}  // namespace convnextv2::onnx_export

#endif  // CONVNEXTV2_ONNX_CONVNEXTV2_GRAPH_H_
