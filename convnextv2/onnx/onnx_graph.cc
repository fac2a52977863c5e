#include "convnextv2/onnx/onnx_graph.h"

#include <glog/logging.h>

#include <algorithm>
#include <string>

#include "absl/strings/ascii.h"

namespace convnextv2::onnx_export {

namespace {

onnx::AttributeProto NamedAttribute(const std::string& name,
                                    onnx::AttributeProto::AttributeType type) {
  onnx::AttributeProto a;
  a.set_name(name);
  a.set_type(type);
  return a;
}

}  // namespace

onnx::AttributeProto AttrInt(const std::string& name, int64_t value) {
  onnx::AttributeProto a = NamedAttribute(name, onnx::AttributeProto::INT);
  a.set_i(value);
  return a;
}

onnx::AttributeProto AttrInts(const std::string& name, const std::vector<int64_t>& values) {
  onnx::AttributeProto a = NamedAttribute(name, onnx::AttributeProto::INTS);
  for (int64_t v : values) a.add_ints(v);
  return a;
}

onnx::AttributeProto AttrFloat(const std::string& name, float value) {
  onnx::AttributeProto a = NamedAttribute(name, onnx::AttributeProto::FLOAT);
  a.set_f(value);
  return a;
}

int ElementSize(onnx::TensorProto::DataType type) {
  switch (type) {
    case onnx::TensorProto::FLOAT:
      return 4;
    case onnx::TensorProto::FLOAT16:
      return 2;
    default:
      LOG(FATAL) << "ElementSize: element type " << type << " is not written by this export";
  }
  return 0;
}

namespace {

void SetValueInfo(onnx::ValueInfoProto* info, const std::string& name,
                  onnx::TensorProto::DataType type, const std::vector<std::string>& dims) {
  info->set_name(name);
  onnx::TypeProto_Tensor* tensor = info->mutable_type()->mutable_tensor_type();
  tensor->set_elem_type(type);
  onnx::TensorShapeProto* shape = tensor->mutable_shape();
  for (const std::string& d : dims) {
    CHECK(!d.empty()) << "value " << name << ": empty dimension";
    const bool fixed = std::all_of(d.begin(), d.end(), absl::ascii_isdigit);
    if (fixed) {
      shape->add_dim()->set_dim_value(std::stoll(d));
    } else {
      shape->add_dim()->set_dim_param(d);
    }
  }
}

}  // namespace

void GraphBuilder::Claim(const std::string& name) {
  CHECK(!name.empty()) << "GraphBuilder: empty value name";
  CHECK(names_.insert(name).second) << "GraphBuilder: value " << name << " defined twice";
}

void GraphBuilder::Input(const std::string& name, onnx::TensorProto::DataType type,
                         const std::vector<std::string>& dims) {
  Claim(name);
  SetValueInfo(graph_->add_input(), name, type, dims);
}

void GraphBuilder::Output(const std::string& name, onnx::TensorProto::DataType type,
                          const std::vector<std::string>& dims) {
  CHECK(Has(name)) << "GraphBuilder: output " << name << " is not a value of the graph";
  SetValueInfo(graph_->add_output(), name, type, dims);
}

std::string GraphBuilder::Initializer(const std::string& name, onnx::TensorProto::DataType type,
                                      const std::vector<int64_t>& dims, absl::string_view raw) {
  int64_t elements = 1;
  for (int64_t d : dims) elements *= d;
  CHECK_EQ(static_cast<int64_t>(raw.size()), elements * ElementSize(type))
      << "initializer " << name << ": data size does not match its shape";
  Claim(name);
  onnx::TensorProto* t = graph_->add_initializer();
  t->set_name(name);
  t->set_data_type(type);
  for (int64_t d : dims) t->add_dims(d);
  t->set_raw_data(raw.data(), raw.size());
  initializer_bytes_ += static_cast<int64_t>(raw.size());
  return name;
}

std::string GraphBuilder::Node(const std::string& op, const std::string& name,
                               const std::vector<std::string>& inputs,
                               const std::vector<onnx::AttributeProto>& attributes) {
  for (const std::string& input : inputs) {
    CHECK(Has(input)) << "node " << name << " (" << op << "): input " << input
                      << " is not defined yet";
  }
  Claim(name);
  onnx::NodeProto* node = graph_->add_node();
  node->set_op_type(op);
  node->set_name(name);
  for (const std::string& input : inputs) node->add_input(input);
  node->add_output(name);
  for (const onnx::AttributeProto& a : attributes) *node->add_attribute() = a;
  return name;
}

}  // namespace convnextv2::onnx_export
