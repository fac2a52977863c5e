// A small builder of ONNX graphs (onnx::GraphProto from Debian's libonnx 1.12), used by the
// ConvNeXt V2 export: nodes whose name is also their output's name (so a graph reads as the
// model's module paths: "stages.1.0.grn.sumsq"), attributes, and initializers from raw
// little-endian bytes. Free of libtorch.
//
//   onnx::GraphProto graph;
//   GraphBuilder g(&graph);
//   g.Input("pixel_values", onnx::TensorProto::FLOAT, {"batch", "3", "height", "width"});
//   std::string w = g.Initializer("head.weight", onnx::TensorProto::FLOAT, {10, 64}, bytes);
//   std::string y = g.Node("Gemm", "head", {x, w, b}, {AttrInt("transB", 1)});
//   g.Output(y, onnx::TensorProto::FLOAT, {"batch", "10"});
#ifndef CONVNEXTV2_ONNX_ONNX_GRAPH_H_
#define CONVNEXTV2_ONNX_ONNX_GRAPH_H_

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "onnx/onnx_pb.h"

namespace convnextv2::onnx_export {

onnx::AttributeProto AttrInt(const std::string& name, int64_t value);
onnx::AttributeProto AttrInts(const std::string& name, const std::vector<int64_t>& values);
onnx::AttributeProto AttrFloat(const std::string& name, float value);

// Bytes per element of FLOAT and FLOAT16 (the two element types this export writes).
int ElementSize(onnx::TensorProto::DataType type);

class GraphBuilder {
 public:
  explicit GraphBuilder(onnx::GraphProto* graph) : graph_(graph) {}

  // A graph input or output of element type `type`; a dimension that is all digits is fixed,
  // any other (e.g. "batch") is symbolic.
  void Input(const std::string& name, onnx::TensorProto::DataType type,
             const std::vector<std::string>& dims);
  void Output(const std::string& name, onnx::TensorProto::DataType type,
              const std::vector<std::string>& dims);

  // A tensor stored in the graph; `raw` holds product(dims) elements of `type`, little-endian.
  // Returns `name`.
  std::string Initializer(const std::string& name, onnx::TensorProto::DataType type,
                          const std::vector<int64_t>& dims, absl::string_view raw);
  bool Has(const std::string& name) const { return names_.count(name) > 0; }

  // Appends node `op` named `name`, whose one output is also called `name`; returns `name`.
  std::string Node(const std::string& op, const std::string& name,
                   const std::vector<std::string>& inputs,
                   const std::vector<onnx::AttributeProto>& attributes = {});

  // Sum of the initializers' data sizes, in bytes.
  int64_t InitializerBytes() const { return initializer_bytes_; }

 private:
  // Each name (value or initializer) is defined once; a second definition is a programmer error.
  void Claim(const std::string& name);

  onnx::GraphProto* graph_;
  std::set<std::string> names_;
  int64_t initializer_bytes_ = 0;
};

}  // namespace convnextv2::onnx_export

#endif  // CONVNEXTV2_ONNX_ONNX_GRAPH_H_
