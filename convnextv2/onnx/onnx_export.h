// ConvNeXt V2 as an ONNX model file, built in C++ with Debian's libonnx 1.12 (no Python).
//
//   OnnxOptions options;
//   options.precision = OnnxPrecision::kFloat16;   // GRN's squares, sums and norm stay fp32
//   absl::Status s = WriteOnnx(model, options, "/out/convnextv2_atto.onnx");
//
// The graph: opset 17, IR version 8 (the newest the library's checker knows); input
// "pixel_values" (batch, in_chans, height, width), NCHW, normalized as timm's preprocessing
// expects (or raw [0, 1] pixels with normalize_inside); output "logits" (batch, num_classes);
// batch, height and width are symbolic. Weights are initializers named by their state-dict keys.
// docs/checkpoints.md ("ONNX") describes the graph.
#ifndef CONVNEXTV2_ONNX_ONNX_EXPORT_H_
#define CONVNEXTV2_ONNX_ONNX_EXPORT_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "convnextv2/models/convnextv2.h"

namespace convnextv2::onnx_export {

enum class OnnxPrecision {
  kFloat32,
  // Half-precision input, weights, activations and output. GRN casts its input to fp32 for the
  // squares, the sums over H x W and the norms (a sum of squares over 56 x 56 positions passes
  // fp16's 65504), then casts the normalizing factor back; LayerNormalization keeps its
  // statistics in fp32 (stash_type 1).
  kFloat16,
};

// "fp32" or "fp16" (what --precision takes); an error names the value and the allowed ones.
absl::StatusOr<OnnxPrecision> ParseOnnxPrecision(absl::string_view text);

struct OnnxOptions {
  OnnxPrecision precision = OnnxPrecision::kFloat32;
  // The input is RGB in [0, 1]; the graph subtracts ImageNet's mean and divides by its std
  // (0.485, 0.456, 0.406 / 0.229, 0.224, 0.225) first. Needs in_chans == 3.
  bool normalize_inside = false;
  // Only 17 is accepted: LayerNormalization needs 17, and libonnx 1.12 checks nothing newer.
  int opset = 17;
  // For tests only: with kFloat16, GRN without its fp32 casts (the graph that overflows).
  bool naive_fp16_grn = false;
};

// The model (in eval mode semantics: no drop path) as a serialized onnx.ModelProto, after the
// checker (full check: types and shapes, strict shape inference) accepted it. Errors:
// InvalidArgument for options the model cannot take (fp16 with a weight fp16 cannot hold
// among them), Internal when the checker refuses the graph (a bug here), ResourceExhausted
// when the weights pass protobuf's 2 GiB limit.
absl::StatusOr<std::string> OnnxModelBytes(const models::ConvNeXtV2& model,
                                           const OnnxOptions& options);

// OnnxModelBytes written atomically to `path`. An existing `path` is refused (nothing is
// overwritten), as the other export formats do; errors name the path.
absl::Status WriteOnnx(const models::ConvNeXtV2& model, const OnnxOptions& options,
                       const std::string& path);

}  // namespace convnextv2::onnx_export

#endif  // CONVNEXTV2_ONNX_ONNX_EXPORT_H_
